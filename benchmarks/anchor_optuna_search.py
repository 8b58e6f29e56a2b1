"""Anchor of part 4: a search written by hand with Optuna's defaults, without pruning.

What a user writes instead of hpsearch, shaped like optuna/optuna-examples
keras/keras_simple.py: ``optuna.create_study()`` (TPE, Optuna's default sampler, seeded),
an objective that clears the Keras session, seeds Keras, builds a model from
``trial.suggest_*`` calls, fits it on the arrays with ``validation_data``, ``shuffle=True``,
``EarlyStopping(patience, restore_best_weights=True)`` and ``TerminateOnNaN``, and returns
the best ``val_loss``; ``study.optimize(objective, n_trials=N, timeout=T)`` on an in-memory
study (no database, nothing stored per epoch). No pruner: every trial runs until early
stopping.

So that only the way of searching and training differs from hpsearch, the space, data and
models are hpsearch's: the ``suggest_*`` calls are ``spaces.sample_optuna`` over the same
space (the same names, ranges and conditions), the model is ``spaces.build_model`` of the
point (the same compiled network), the arrays are ``search.load_dataset``'s with the same
split seed, and trial ``n`` seeds Keras with ``seed + n`` as hpsearch does.

Prints one JSON line at the end: per trial its state, value, epochs run, and start and end
in seconds since the first trial started (``benchmarks/run.py`` reads them as it reads a
study).

    .venv/bin/python benchmarks/anchor_optuna_search.py --data digits --space mlp --trials 20
"""

from __future__ import annotations

import argparse
import json
import math

import optuna
from keras.backend import clear_session
from keras.callbacks import EarlyStopping, TerminateOnNaN
from keras.utils import set_random_seed

import search
from spaces import build_model, load_space, sample_optuna


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--space", default="mlp")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, help="stop starting trials after SECONDS")
    args = parser.parse_args()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = search.load_dataset(args.data, seed=args.seed)
    space = load_space(args.space)
    epochs_run: dict[int, int] = {}

    def objective(trial: optuna.Trial) -> float:
        clear_session()
        set_random_seed(args.seed + trial.number)
        params = sample_optuna(space, trial)
        model = build_model(params, data.spec)
        history = model.fit(
            data.x_train,
            data.y_train,
            validation_data=(data.x_val, data.y_val),
            shuffle=True,
            batch_size=int(params.get("batch_size", 32)),
            epochs=args.epochs,
            callbacks=[
                EarlyStopping(patience=args.patience, restore_best_weights=True),
                TerminateOnNaN(),
            ],
            verbose=False,
        )
        losses = [v for v in history.history["val_loss"] if math.isfinite(v)]
        epochs_run[trial.number] = len(history.history["loss"])
        return min(losses) if losses else math.nan

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=args.seed))
    study.optimize(objective, n_trials=args.trials, timeout=args.timeout)

    trials = study.get_trials(deepcopy=False)
    first = min(t.datetime_start for t in trials if t.datetime_start)
    print(
        json.dumps(
            {
                "anchor": "optuna-search",
                "trials": [
                    {
                        "number": t.number,
                        "state": t.state.name,
                        "value": t.value,
                        "epochs_run": epochs_run.get(t.number, 0),
                        "start": (t.datetime_start - first).total_seconds(),
                        "end": (t.datetime_complete - first).total_seconds(),
                    }
                    for t in trials
                    if t.datetime_start and t.datetime_complete
                ],
            }
        )
    )


if __name__ == "__main__":
    main()
