"""Anchor (b): the search written by hand with Optuna and Keras, as Optuna's own example does.

Modelled on optuna/optuna-examples keras/keras_simple.py: an objective that clears the Keras
session, builds a ``Sequential`` model from ``trial.suggest_*`` calls, fits it with
``validation_data``, ``shuffle=True`` and ``verbose=False``, and returns the result;
``study.optimize(objective, n_trials=N)`` on an in-memory study. Differences from the example,
all to make it train exactly what hpsearch trains for ``benchmarks/fixed.yaml``:

- the data is scikit-learn's digits split and standardised by ``search.load_dataset`` (the
  same arrays hpsearch trains on; importing ``search`` does not import TensorFlow);
- the model is hpsearch's builder output for the fixed space (64-64 ReLU, softmax, Adam at
  the sampled learning rate, batch 32), fitted with
  ``EarlyStopping(patience, restore_best_weights=True)``, as hpsearch does;
- each trial seeds Keras with its number (hpsearch seeds ``seed + trial.number``) and the
  sampler is ``RandomSampler(seed=0)``, so both draw the same learning rates and the same
  initial weights, and stop after the same epochs;
- the value is the best ``val_loss`` (hpsearch's objective) rather than an evaluation.

Prints one JSON line at the end: trials, the model's parameter count, epochs run and best
``val_loss`` per trial (``benchmarks/run.py`` checks them against hpsearch's record).

    .venv/bin/python benchmarks/anchor_optuna.py --trials 12 --epochs 15 --patience 3
"""

from __future__ import annotations

import argparse
import json

import optuna
from keras.backend import clear_session
from keras.callbacks import EarlyStopping
from keras.layers import Dense, Input
from keras.models import Sequential
from keras.optimizers import Adam
from keras.utils import set_random_seed

import search

UNITS = 64
DEPTH = 2
BATCHSIZE = 32
LEARNING_RATE = (1.0e-3, 1.00001e-3)  # benchmarks/fixed.yaml: the only free parameter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--summary", action="store_true", help="print the model's summary")
    args = parser.parse_args()

    data = search.load_dataset("digits")
    x_train, y_train, x_valid, y_valid = data.x_train, data.y_train, data.x_val, data.y_val
    classes = int(data.classes or 0)
    epochs_run: list[int] = []
    param_count: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        # Clear clutter from previous Keras session graphs.
        clear_session()
        set_random_seed(trial.number)

        model = Sequential()
        model.add(Input(shape=x_train.shape[1:]))
        for _ in range(DEPTH):
            model.add(Dense(UNITS, activation="relu"))
        model.add(Dense(classes, activation="softmax"))

        learning_rate = trial.suggest_float("learning_rate", *LEARNING_RATE)
        model.compile(
            loss="sparse_categorical_crossentropy",
            optimizer=Adam(learning_rate=learning_rate),
            metrics=["accuracy"],
        )
        if args.summary and not param_count:
            model.summary()
        param_count.append(model.count_params())

        history = model.fit(
            x_train,
            y_train,
            validation_data=(x_valid, y_valid),
            shuffle=True,
            batch_size=BATCHSIZE,
            epochs=args.epochs,
            callbacks=[EarlyStopping(patience=args.patience, restore_best_weights=True)],
            verbose=False,
        )
        epochs_run.append(len(history.history["loss"]))
        return min(history.history["val_loss"])

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=args.trials)

    print(
        json.dumps(
            {
                "anchor": "optuna",
                "trials": len(study.trials),
                "param_count": param_count[0],
                "epochs_run": epochs_run,
                "values": [t.value for t in study.trials],
                "learning_rates": [t.params["learning_rate"] for t in study.trials],
            }
        )
    )


if __name__ == "__main__":
    main()
