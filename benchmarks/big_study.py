"""A large study as hpsearch stores it, written fast, for the report's scale benchmark.

``make_big_study(url, name, trials=10_000, epochs=20)`` creates a study with hpsearch's
settings (the ``mlp`` space on digits) through Optuna, then writes its trials straight into
Optuna's tables in a few bulk inserts: each trial's params (sampled from the space by
Optuna's RandomSampler, conditionals respected), its value, one intermediate value per
epoch and hpsearch's trial record (``TrialRecord.to_attrs``: history, best epoch, metrics,
duration, ...). 80% complete, 15% pruned (after 2 to 8 epochs), 5% failed. Optuna's
``load_study`` reads the result like any other study (the benchmark checks a few trials).

Training 10,000 trials would take days; what the report reads is the same either way.

    python benchmarks/big_study.py sqlite:////tmp/big.db --trials 10000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
from typing import Any

import optuna
import sqlalchemy

from search._records import TrialRecord
from search._settings import DataRef, StudySettings
from spaces import load_space
from spaces._optuna import sample_optuna

DESCRIPTION = {
    "source": "digits",
    "kind": "builtin",
    "target": None,
    "task": "multiclass",
    "classes": 10,
    "input_shape": [64],
    "val_split": 0.2,
    "test_split": 0.0,
    "n_train": 1437,
    "n_val": 360,
    "n_test": 0,
    "fingerprint": "sha256:big",
}


def _curves(rnd: random.Random, value: float, epochs: int, best: int) -> dict[str, list[float]]:
    """Train/val loss and accuracy: val falls to ``value`` at ``best``, then drifts up."""
    start = value * (3 + 5 * rnd.random())
    val = []
    for epoch in range(epochs):
        if epoch <= best:
            share = epoch / max(best, 1)
            val.append(start + (value - start) * (1 - (1 - share) ** 2))
        else:
            val.append(value * (1 + 0.02 * (epoch - best) * rnd.random()))
    train = [v * (0.6 + 0.6 * rnd.random()) for v in val]
    return {
        "loss": train,
        "val_loss": val,
        "accuracy": [max(0.0, 1 - t / 3) for t in train],
        "val_accuracy": [max(0.0, 1 - v / 3) for v in val],
    }


def make_big_study(url: str, name: str, trials: int = 10_000, epochs: int = 20) -> None:
    """Create study ``name`` in ``url`` holding ``trials`` finished trials (see the module)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space("mlp")
    settings = StudySettings(
        study=name, data=DataRef(source="digits"), space=space, trials=trials, epochs=epochs
    )
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(storage=storage, study_name=name)
    study.set_user_attr("hpsearch", settings.to_attrs(DESCRIPTION))
    study_id = storage.get_study_id_from_name(name)

    sampler = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    rnd = random.Random(0)
    start = dt.datetime(2026, 1, 1)
    rows: dict[str, list[dict[str, Any]]] = {
        "trials": [],
        "trial_params": [],
        "trial_values": [],
        "trial_intermediate_values": [],
        "trial_user_attributes": [],
    }
    with storage.engine.connect() as conn:
        first_id = conn.execute(sqlalchemy.text("SELECT MAX(trial_id) FROM trials")).scalar()
    trial_id = int(first_id or 0)
    for number in range(trials):
        trial_id += 1
        trial = sampler.ask()
        params = sample_optuna(space, trial)
        lr = float(params.get("learning_rate", 1e-3))
        units = float(params.get("units", 64))
        value = 0.05 + 0.3 * abs(math.log10(lr) + 2.5) + 8 / units + 0.05 * rnd.random()
        roll = rnd.random()
        state = "COMPLETE" if roll < 0.8 else "PRUNED" if roll < 0.95 else "FAIL"
        ran = epochs if state == "COMPLETE" else rnd.randint(2, 8)
        best = rnd.randint(ran // 2, ran - 1)
        history = _curves(rnd, value, ran, best)
        duration = 0.6 + 0.05 * ran
        began = start + dt.timedelta(seconds=number * 2)
        rows["trials"].append(
            {
                "trial_id": trial_id,
                "number": number,
                "study_id": study_id,
                "state": state,
                "datetime_start": began,
                "datetime_complete": began + dt.timedelta(seconds=duration),
            }
        )
        for pname, dist in trial.distributions.items():
            rows["trial_params"].append(
                {
                    "trial_id": trial_id,
                    "param_name": pname,
                    "param_value": dist.to_internal_repr(trial.params[pname]),
                    "distribution_json": optuna.distributions.distribution_to_json(dist),
                }
            )
        if state != "FAIL":
            shown = value if state == "COMPLETE" else history["val_loss"][-1]
            rows["trial_values"].append(
                {"trial_id": trial_id, "objective": 0, "value": shown, "value_type": "FINITE"}
            )
            for step, v in enumerate(history["val_loss"]):
                rows["trial_intermediate_values"].append(
                    {
                        "trial_id": trial_id,
                        "step": step,
                        "intermediate_value": v,
                        "intermediate_value_type": "FINITE",
                    }
                )
        record = TrialRecord(
            history=history,
            best_epoch=best,
            best_metrics={k: v[best] for k, v in history.items()},
            epochs_run=ran,
            max_epochs=epochs,
            early_stopped=state == "COMPLETE" and best < ran - 3,
            pruned=state == "PRUNED",
            param_count=int(units * 74),
            duration_s=duration,
            engine="optuna",
            worker={"host": "big", "pid": 1 + number % 4, "started": "2026-01-01T00:00:00"},
            fail_reason="training failed: NaN loss" if state == "FAIL" else None,
            rss_mib=900.0,
            params=space.builder_point(params),
            seed=number,
        )
        for key, attr in record.to_attrs().items():
            rows["trial_user_attributes"].append(
                {"trial_id": trial_id, "key": key, "value_json": json.dumps(attr)}
            )
    with storage.engine.begin() as conn:
        for table, batch in rows.items():
            columns = list(batch[0])
            statement = sqlalchemy.text(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join(':' + c for c in columns)})"
            )
            for chunk in range(0, len(batch), 20_000):
                conn.execute(statement, batch[chunk : chunk + 20_000])
    storage.remove_session()
    storage.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--name", default="big")
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    make_big_study(args.url, args.name, args.trials, args.epochs)


if __name__ == "__main__":
    main()
