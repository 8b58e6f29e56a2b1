"""hpsearch against the hand-written anchor, in one process, reported as ratios.

The anchor is what a user writes by hand: an in-memory Optuna study whose objective builds
the same Keras model and fits it with EarlyStopping and Optuna's pruning callback. Both
sides draw the same points (RandomSampler with the same seed over the same space), so the
models, epochs and data are identical and the ratio is hpsearch's own per-trial overhead:
per-epoch writes of the history to a SQLite file, heartbeats, the trial record.

It also reports the process's resident memory after each hpsearch trial, to show that it
levels off (the Keras session is cleared between trials).

    make bench                      # or: .venv/bin/python benchmarks/run.py --trials 12
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import optuna

import search
from search._keras import import_keras
from search._progress import NullProgress
from spaces import build_model, load_space, resolve_params, sample_optuna


def rss_mib() -> float:
    """Current resident set size (Linux), in MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def anchor(
    data: str, space_name: str, trials: int, epochs: int, patience: int
) -> tuple[float, list[float]]:
    """The hand-written Optuna + Keras loop; returns seconds and RSS after each trial."""
    keras = import_keras()
    from optuna_integration import TFKerasPruningCallback

    dataset = search.load_dataset(data)
    space = load_space(space_name)

    def objective(trial: optuna.Trial) -> float:
        params = resolve_params(sample_optuna(space, trial))
        keras.utils.set_random_seed(trial.number)
        model = build_model(params, dataset.spec)
        history = model.fit(
            dataset.x_train,
            dataset.y_train,
            validation_data=(dataset.x_val, dataset.y_val),
            epochs=epochs,
            batch_size=params["batch_size"],
            callbacks=[
                keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True),
                TFKerasPruningCallback(trial, "val_loss"),
            ],
            verbose=0,
        )
        keras.backend.clear_session()  # also collects garbage
        return float(min(history.history["val_loss"]))

    study = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=0), pruner=optuna.pruners.NopPruner()
    )
    memory: list[float] = []
    start = time.perf_counter()
    study.optimize(objective, n_trials=trials, callbacks=[lambda *_: memory.append(rss_mib())])
    return time.perf_counter() - start, memory


def hpsearch(
    data: str, space_name: str, trials: int, epochs: int, patience: int, folder: Path
) -> tuple[float, list[float]]:
    """The same search through hpsearch on a SQLite file; returns seconds and RSS per trial."""
    memory: list[float] = []

    class Memory(NullProgress):
        def trial_ended(self, *args: object) -> None:
            memory.append(rss_mib())

    start = time.perf_counter()
    search.run(
        data,
        space_name,
        trials=trials,
        epochs=epochs,
        patience=patience,
        sampler="random",
        pruner="none",
        seed=0,
        storage=f"sqlite:///{folder / 'bench.db'}",
        write_report=False,
        progress=Memory(),
    )
    return time.perf_counter() - start, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--space", default="small")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--patience", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)

    # Warm-up: import TensorFlow and trace once, so neither side pays it in its timing.
    anchor(args.data, args.space, 1, 1, args.patience)
    base, base_memory = anchor(args.data, args.space, args.trials, args.epochs, args.patience)
    with tempfile.TemporaryDirectory() as tmp:
        ours, memory = hpsearch(
            args.data, args.space, args.trials, args.epochs, args.patience, Path(tmp)
        )
    print(f"{args.trials} trials of {args.space!r} on {args.data!r}, up to {args.epochs} epochs")
    print(f"anchor (hand-written Optuna + Keras, in memory): {base:7.2f} s")
    print(f"hpsearch (SQLite, per-epoch history, heartbeat): {ours:7.2f} s")
    print(f"ratio hpsearch / anchor: {ours / base:.2f}")
    for label, series in (("anchor", base_memory), ("hpsearch", memory)):
        half = len(series) // 2
        if half:
            print(
                f"{label} RSS growth: trials 1-{half} {series[half - 1] - series[0]:+.0f} MiB, "
                f"trials {half}-{len(series)} {series[-1] - series[half - 1]:+.0f} MiB "
                f"(per trial {(series[-1] - series[0]) / max(len(series) - 1, 1):+.1f} MiB)"
            )


if __name__ == "__main__":
    main()
