"""Anchor (c): the same search written with KerasTuner's RandomSearch, as its guide does.

A ``build_model(hp)`` that returns the compiled model, ``keras_tuner.RandomSearch(...,
max_trials=N, overwrite=True, directory=TMP)`` and ``tuner.search(x_train, y_train,
validation_data=..., epochs=E, callbacks=[EarlyStopping(patience=P)])``. What makes it train
exactly what hpsearch trains for ``benchmarks/fixed.yaml``:

- the data is scikit-learn's digits split and standardised by ``search.load_dataset`` (the
  same arrays hpsearch trains on; importing ``search`` does not import TensorFlow);
- the model is hpsearch's builder output for the fixed space (64-64 ReLU, softmax, Adam at
  the sampled learning rate, batch 32), fitted with
  ``EarlyStopping(patience, restore_best_weights=True)``, as hpsearch does;
- each trial seeds Keras with its number before KerasTuner builds the model (hpsearch seeds
  ``seed + trial.number``), so the initial weights and shuffles are hpsearch's; KerasTuner's
  own draws of the learning rate differ from Optuna's by less than 1e-5 relative;
- ``verbose=0``: hpsearch and the Optuna anchor print no Keras progress bars either.

KerasTuner keeps its own per-trial files in TMP (trial.json, the best epoch's weights): that
is part of what it costs, as the SQLite record is part of what hpsearch costs.

Prints one JSON line at the end: trials, the model's parameter count, epochs run (best epoch
+ patience + 1, capped at E: KerasTuner records the best epoch only) and best ``val_loss``
per trial (``benchmarks/run.py`` checks them against hpsearch's record).

    .venv/bin/python benchmarks/anchor_kerastuner.py --trials 12 --epochs 15 --patience 3 \
        --directory /tmp/kt
"""

from __future__ import annotations

import argparse
import json
import tempfile
from typing import Any

import keras
import keras_tuner

import search

UNITS = 64
DEPTH = 2
BATCHSIZE = 32
LEARNING_RATE = (1.0e-3, 1.00001e-3)  # benchmarks/fixed.yaml: the only free parameter


class SeededRandomSearch(keras_tuner.RandomSearch):
    """RandomSearch that seeds Keras with the trial's number, as hpsearch does."""

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        keras.utils.set_random_seed(int(trial.trial_id))
        return super().run_trial(trial, *args, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--directory", help="KerasTuner's folder [a temporary one]")
    parser.add_argument("--summary", action="store_true", help="print the model's summary")
    args = parser.parse_args()

    data = search.load_dataset("digits")
    x_train, y_train, x_val, y_val = data.x_train, data.y_train, data.x_val, data.y_val
    classes = int(data.classes or 0)

    def build_model(hp: keras_tuner.HyperParameters) -> keras.Model:
        model = keras.Sequential()
        model.add(keras.Input(shape=x_train.shape[1:]))
        for _ in range(DEPTH):
            model.add(keras.layers.Dense(UNITS, activation="relu"))
        model.add(keras.layers.Dense(classes, activation="softmax"))
        learning_rate = hp.Float("learning_rate", *LEARNING_RATE)
        model.compile(
            loss="sparse_categorical_crossentropy",
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            metrics=["accuracy"],
        )
        return model

    with tempfile.TemporaryDirectory() as tmp:
        tuner = SeededRandomSearch(
            build_model,
            objective="val_loss",
            max_trials=args.trials,
            seed=0,
            overwrite=True,
            directory=args.directory or tmp,
            project_name="bench",
        )
        if args.summary:
            tuner.search_space_summary()
            build_model(keras_tuner.HyperParameters()).summary()
        tuner.search(
            x_train,
            y_train,
            validation_data=(x_val, y_val),
            epochs=args.epochs,
            batch_size=BATCHSIZE,
            callbacks=[
                keras.callbacks.EarlyStopping(patience=args.patience, restore_best_weights=True)
            ],
            verbose=0,
        )
        trials = sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id))
        param_count = build_model(trials[0].hyperparameters).count_params()

    print(
        json.dumps(
            {
                "anchor": "kerastuner",
                "trials": len(trials),
                "param_count": param_count,
                "epochs_run": [
                    min(int(t.best_step) + args.patience + 1, args.epochs) for t in trials
                ],
                "values": [t.score for t in trials],
                "learning_rates": [t.hyperparameters.get("learning_rate") for t in trials],
            }
        )
    )


if __name__ == "__main__":
    main()
