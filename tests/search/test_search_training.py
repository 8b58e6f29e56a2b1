"""One trial's training, the samplers and pruners, objectives and time limits."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

import search
from search import ConfigError, Dataset, TrialFailed, load_dataset
from search._keras import configure_threads, import_keras
from search._storage import opened_storage
from search._training import TrialRecorder, _pipelines, _tensors, fit_trial
from search.engines._optuna import make_pruner, make_sampler
from search.engines._registry import ENGINES
from spaces import parse_space

pytestmark = pytest.mark.slow

QUICK = parse_space(
    {
        "name": "quick",
        "params": {
            "units": {"type": "int", "low": 4, "high": 16},
            "learning_rate": {"type": "float", "low": 0.01, "high": 0.05, "log": True},
            "batch_size": 32,
        },
    },
    source="quick",
)


def _recorder(objective: str = "val_loss", direction: str = "minimize", epochs: int = 5) -> Any:
    seen: list[int] = []
    recorder = TrialRecorder(
        objective=objective,
        direction=direction,  # type: ignore[arg-type]
        max_epochs=epochs,
        on_epoch=lambda epoch, rec: seen.append(epoch),
    )
    return recorder, seen


def test_fit_trial_records_every_epoch_and_stops_early() -> None:
    ds = load_dataset("breast_cancer")
    recorder, seen = _recorder(epochs=200)
    outcome = fit_trial(
        {"units": 8, "learning_rate": 0.05, "batch_size": 64}, ds, recorder, patience=0, seed=0
    )
    assert outcome.early_stopped and outcome.epochs_run < 200
    assert seen == list(range(outcome.epochs_run))
    assert outcome.value == min(outcome.history["val_loss"])
    assert (
        outcome.best_metrics["val_accuracy"]
        == outcome.history["val_accuracy"][
            outcome.best_epoch  # type: ignore[index]
        ]
    )
    assert outcome.param_count == 30 * 8 + 8 + 8 + 1


def test_nan_loss_fails_the_trial_with_the_epoch() -> None:
    ds = load_dataset("diabetes")
    recorder, _ = _recorder()
    params = {"units": 64, "depth": 3, "optimizer": "sgd", "learning_rate": 1e7}
    with pytest.raises(TrialFailed, match=r"loss became (nan|inf) at epoch \d+"):
        fit_trial(params, ds, recorder, patience=5, seed=0)
    assert recorder.epochs_run >= 1


def _plain_fit(
    params: dict[str, Any], ds: Dataset, *, epochs: int, patience: int, seed: int
) -> Any:
    """What a user writes by hand: model.fit on the arrays, Keras' own batching and shuffle."""
    from spaces import build_model, resolve_params

    keras = import_keras()
    resolved = resolve_params(params)
    keras.utils.set_random_seed(seed)
    model = build_model(resolved, ds.spec)
    history = model.fit(
        ds.x_train,
        ds.y_train,
        validation_data=(ds.x_val, ds.y_val),
        epochs=epochs,
        batch_size=resolved["batch_size"],
        callbacks=[keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)],
        verbose=0,
    ).history
    keras.backend.clear_session()
    return history


def _fast_fit(params: dict[str, Any], ds: Dataset, *, epochs: int, patience: int, seed: int) -> Any:
    recorder, _ = _recorder(epochs=epochs)
    outcome = fit_trial(params, ds, recorder, patience=patience, seed=seed)
    import_keras().backend.clear_session()
    return outcome


def test_a_trial_fits_like_model_fit_on_the_arrays_and_repeats_itself() -> None:
    ds = load_dataset("breast_cancer")
    params = {"units": 8, "learning_rate": 0.01, "batch_size": 32}
    fast = [_fast_fit(params, ds, epochs=10, patience=3, seed=seed) for seed in range(3)]
    plain = [
        min(_plain_fit(params, ds, epochs=10, patience=3, seed=seed)["val_loss"])
        for seed in range(3)
    ]
    # Same seed, same initial weights; only the shuffle order differs from Keras' own. Over 20
    # shuffle orders (weights fixed) the best val_loss of this model has a mean of 0.093 and
    # a standard deviation of 0.004 on either path; the mean of 3 paired differences then
    # has one of 0.004 * sqrt(2 / 3) = 0.003, and 0.012 is about 4 of those.
    assert statistics.mean(o.value for o in fast) == pytest.approx(
        statistics.mean(plain), abs=0.012
    )
    again = _fast_fit(params, ds, epochs=10, patience=3, seed=0)
    assert again.history == fast[0].history
    assert again.best_epoch == fast[0].best_epoch


@pytest.mark.parametrize("validation_batch", [1024, 50])
def test_without_shuffling_a_trial_trains_exactly_like_model_fit(
    monkeypatch: pytest.MonkeyPatch, validation_batch: int
) -> None:
    import_keras()
    import tensorflow as tf

    # The one intended difference is the shuffle order: take it away on both sides.
    monkeypatch.setattr(tf.data.Dataset, "shuffle", lambda self, *args, **kwargs: self)
    # 114 validation samples: one batch, or batches of 50, 50 and 14.
    monkeypatch.setattr("search._training.VALIDATION_BATCH", validation_batch)
    ds = load_dataset("breast_cancer")
    params = {"units": 8, "dropout": 0.2, "regularizer": "l2", "batch_size": 32}
    fast = _fast_fit(params, ds, epochs=4, patience=10, seed=1).history

    from spaces import build_model, resolve_params

    keras = import_keras()
    keras.utils.set_random_seed(1)
    model = build_model(resolve_params(params), ds.spec)
    plain = model.fit(
        ds.x_train,
        ds.y_train,
        validation_data=(ds.x_val, ds.y_val),
        epochs=4,
        batch_size=32,
        shuffle=False,
        verbose=0,
    ).history
    keras.backend.clear_session()
    assert sorted(fast) == sorted(plain) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    for key, values in plain.items():
        # The same batches, dropout masks and updates; validation in other batches than
        # fit's batches of 32 only changes the rounding of the mean (~1e-7).
        assert fast[key] == pytest.approx(values, rel=1e-5), key


# Optimizers by their Keras configuration; True where the fused kernel's values are Keras'
# to the last bit (SGD's updates are one multiply-add either way), False where they agree to
# rounding (Adam's kernel computes the same formula in one vectorised expression).
FUSED = [
    ({"class_name": "adam", "config": {"learning_rate": 0.01}}, False),
    ({"class_name": "adamw", "config": {"learning_rate": 0.01, "weight_decay": 0.01}}, False),
    ({"class_name": "sgd", "config": {"learning_rate": 0.05}}, True),
    ({"class_name": "sgd", "config": {"learning_rate": 0.05, "momentum": 0.9}}, True),
    (
        {"class_name": "sgd", "config": {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}},
        True,
    ),
]


def _train_small(optimizer: dict[str, Any], *, fuse: bool, embedding: bool = False) -> Any:
    """Five epochs of a small model on breast_cancer from seed 0, in the same batches; its
    loss history, final weights and optimizer."""
    from search._fused import fuse_optimizer

    keras = import_keras()
    ds = load_dataset("breast_cancer")
    keras.utils.set_random_seed(0)
    if embedding:  # a sparse gradient (the embedding's rows that were used)
        x = (ds.x_train > 0).astype("int32")
        layers = [keras.Input((x.shape[1],), dtype="int32"), keras.layers.Embedding(2, 4)]
        layers.append(keras.layers.Flatten())
    else:
        x = ds.x_train
        layers = [keras.Input((x.shape[1],))]
    model = keras.Sequential(
        [*layers, keras.layers.Dense(16, "relu"), keras.layers.Dense(1, "sigmoid")]
    )
    model.compile(optimizer=keras.optimizers.get(optimizer), loss="binary_crossentropy")
    if fuse:
        assert fuse_optimizer(model.optimizer)
    history = model.fit(x, ds.y_train, epochs=5, batch_size=32, shuffle=False, verbose=0)
    return history.history["loss"], model.get_weights(), model


@pytest.mark.parametrize(("optimizer", "exact"), FUSED)
def test_fused_optimizers_train_as_keras_own(optimizer: dict[str, Any], exact: bool) -> None:
    keras_loss, keras_weights, _ = _train_small(optimizer, fuse=False)
    import_keras().backend.clear_session()
    fused_loss, fused_weights, _ = _train_small(optimizer, fuse=True)
    import_keras().backend.clear_session()
    tolerance = 0.0 if exact else 1e-4
    assert fused_loss == pytest.approx(keras_loss, rel=tolerance, abs=0.0)
    for ours, theirs in zip(fused_weights, keras_weights, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=tolerance, atol=tolerance / 10)


def test_a_sparse_gradient_keeps_keras_update(monkeypatch: pytest.MonkeyPatch) -> None:
    keras = import_keras()
    adam = {"class_name": "adam", "config": {"learning_rate": 0.01}}
    keras_loss, keras_weights, _ = _train_small(adam, fuse=False, embedding=True)
    keras.backend.clear_session()
    # Which variables Keras' own update step is given once the optimizer is fused.
    updated: list[tuple[int, ...]] = []
    keras_step = keras.optimizers.Adam.update_step

    def spy(self: Any, gradient: Any, variable: Any, learning_rate: Any) -> Any:
        updated.append(tuple(variable.shape))
        return keras_step(self, gradient, variable, learning_rate)

    monkeypatch.setattr(keras.optimizers.Adam, "update_step", spy)
    fused_loss, fused_weights, _ = _train_small(adam, fuse=True, embedding=True)
    keras.backend.clear_session()
    assert set(updated) == {(2, 4)}  # the embedding's table only (traced once)
    assert fused_loss == pytest.approx(keras_loss, rel=1e-4)
    for ours, theirs in zip(fused_weights, keras_weights, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_optimizers_without_an_exact_kernel_keep_keras_update() -> None:
    from search._fused import fuse_optimizer

    keras = import_keras()

    class MyAdam(keras.optimizers.Adam):
        pass

    for optimizer in (
        keras.optimizers.Adam(amsgrad=True),
        keras.optimizers.Nadam(),
        keras.optimizers.RMSprop(),
        keras.optimizers.Adagrad(),
        MyAdam(),
    ):
        keras_step = optimizer.update_step
        assert fuse_optimizer(optimizer) is False
        assert optimizer.update_step == keras_step
    assert fuse_optimizer(None) is False  # a model compiled without an optimizer


def test_a_fused_optimizer_saves_and_loads_as_keras_own(tmp_path: Path) -> None:
    keras = import_keras()
    _, weights, model = _train_small(FUSED[0][0], fuse=True)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is keras.optimizers.Adam
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) > 0
    for ours, theirs in zip(loaded.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    keras.backend.clear_session()


def test_a_trial_runs_its_adam_fused() -> None:
    ds = load_dataset("breast_cancer")
    outcome = _fast_fit({"units": 8, "optimizer": "adam"}, ds, epochs=1, patience=1, seed=0)
    assert outcome.model.optimizer.update_step.__func__.__module__ == "search._fused"


def test_training_batches_hold_every_sample_once_per_epoch_in_a_seeded_order() -> None:
    ds = Dataset(
        source="t",
        kind="npz",
        task="regression",
        x_train=np.arange(20, dtype=np.float64).reshape(10, 2),
        y_train=np.arange(10, dtype=np.float64),
        x_val=np.zeros((3, 2)),
        y_val=np.arange(3, dtype=np.float64),
    )
    assert _tensors(ds) is _tensors(ds)  # made once per data set

    def epochs(seed: int) -> list[list[np.ndarray]]:
        train, _ = _pipelines(ds, 4, seed)
        batches = [list(train.as_numpy_iterator()) for _ in range(3)]  # 3 epochs
        for epoch in batches:
            assert [len(y) for _, y in epoch] == [4, 4, 2]  # the last batch partial
            for x, y in epoch:
                assert x.dtype == y.dtype == np.float32  # as model.fit casts float64
                assert (x == np.stack([2 * y, 2 * y + 1], axis=1)).all()
        return [np.concatenate([y for _, y in epoch]) for epoch in batches]

    orders = epochs(seed=7)
    for order in orders:
        assert sorted(order) == list(range(10))
    assert not (orders[0] == orders[1]).all()  # a new order each epoch
    assert all((a == b).all() for a, b in zip(orders, epochs(seed=7), strict=True))
    assert not all((a == b).all() for a, b in zip(orders, epochs(seed=8), strict=True))

    train, val = _pipelines(ds, 4, 7)
    assert train.element_spec[0].shape.as_list() == [None, 2]  # one trace for all batches
    batches = [(x.numpy(), y.numpy()) for x, y in val]
    assert len(batches) == 1  # the validation samples fit in one batch
    assert batches[0][0].dtype == np.float32 and batches[0][0].shape == (3, 2)
    assert list(batches[0][1]) == [0.0, 1.0, 2.0]


def test_thread_pools_are_set_before_tensorflow_starts_and_kept_after() -> None:
    code = (
        "from search._keras import configure_threads, import_keras\n"
        "configure_threads(1, 2)\n"
        "import tensorflow as tf\n"
        "tf.constant(1.0) + 1.0\n"
        "configure_threads(3, 3)\n"  # the runtime runs: nothing changes, no error
        "print(tf.config.threading.get_intra_op_parallelism_threads(),"
        " tf.config.threading.get_inter_op_parallelism_threads())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert done.stdout.split() == ["1", "2"]

    import_keras()
    import tensorflow as tf

    tf.constant(1.0) + 1.0
    before = (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )
    configure_threads(before[0] + 1, before[1] + 1)
    assert (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    ) == before


def test_a_model_that_cannot_be_built_fails_the_trial() -> None:
    recorder, _ = _recorder()
    with pytest.raises(TrialFailed, match=r"building the model failed.*units"):
        fit_trial({"units": [8, 0]}, load_dataset("iris"), recorder, patience=1, seed=0)


def test_a_builder_that_exits_fails_its_trial_not_the_worker() -> None:
    from spaces._builders import Builder

    def leaves(params: dict[str, Any], spec: Any) -> Any:
        sys.exit(3)

    recorder, _ = _recorder()
    with pytest.raises(TrialFailed, match=r"the builder called sys.exit\(3\)"):
        fit_trial({"width": 2}, load_dataset("iris"), recorder, patience=1, seed=0,
                  builder=Builder("mm:leaves", leaves))  # fmt: skip


def test_recorder_picks_the_best_epoch_in_the_objective_direction() -> None:
    recorder, _ = _recorder("val_accuracy", "maximize")
    for epoch, acc in enumerate([0.5, 0.9, 0.7]):
        recorder.record(epoch, {"loss": 1.0, "val_loss": 1.0, "val_accuracy": acc})
    assert recorder.best_epoch() == 1
    assert recorder.outcome().value == 0.9


@pytest.mark.parametrize("sampler", ["tpe", "random", "gp", "qmc"])
def test_every_sampler_runs_a_search(sampler: str, tmp_path: Path) -> None:
    result = search.run(
        "iris",
        QUICK,
        trials=2,
        epochs=2,
        sampler=sampler,
        storage=f"sqlite:///{tmp_path / 's.db'}",
        write_report=False,
    )
    assert result.finished == 2
    assert isinstance(make_sampler(sampler, 0), optuna.samplers.BaseSampler)


@pytest.mark.parametrize("pruner", ENGINES["optuna"].options["pruner"])
def test_every_pruner_is_built(pruner: str) -> None:
    assert isinstance(make_pruner(pruner, 20), optuna.pruners.BasePruner)


def test_another_objective_is_optimised_in_its_direction(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    result = search.run(
        "iris", QUICK, trials=2, epochs=3, objective="val_accuracy", storage=url,
        write_report=False,
    )  # fmt: skip
    with opened_storage(url, for_writing=False) as storage:
        study = optuna.load_study(study_name=result.study, storage=storage)
        assert study.direction == optuna.study.StudyDirection.MAXIMIZE
        for trial in study.trials:
            history = trial.user_attrs["history"]["val_accuracy"]
            assert trial.value == max(history)
            assert list(trial.intermediate_values.values()) == history
    with pytest.raises(ConfigError, match="'val_mae' is not reported for a multiclass task"):
        search.run("iris", QUICK, objective="val_mae", study="x", storage=url)
    with pytest.raises(ConfigError, match="--objective must be a validation metric"):
        search.run("iris", QUICK, objective="loss", study="y", storage=url)


@pytest.mark.parametrize(
    ("call", "said"),
    [
        (lambda db: search.run(5, storage=db), "--data: expected a data set"),
        (lambda db: search.run("iris", {"units": 8}, storage=db), "--space: expected a space"),
        (lambda db: search.run("iris", study=5, storage=db), "--study: expected a study name"),
        (lambda db: search.run("iris", storage=5), "--storage: expected a storage URL"),
        (lambda db: search.run("iris", timeout="5", storage=db), "--timeout: expected a number"),
        (lambda db: search.run("iris", recycle_after=-1, storage=db), "--recycle-after: expected"),
        (lambda db: search.run("iris", max_worker_memory=True, storage=db),
         "--max-worker-memory: expected"),
        (lambda db: search.run("iris", workers=2.5, storage=db), "--workers: expected"),
        (lambda db: search.run("iris", workers=True, storage=db), "--workers: expected"),
        (lambda db: search.resume("iris-small", trials=0, storage=db), "--trials: expected"),
        (lambda db: search.resume(None, storage=db), "resume: expected the name of a study"),
        (lambda db: search.work("iris-small", recycle_after=-1, storage=db),
         "--recycle-after: expected a number of trials >= 0"),
        (lambda db: search.export("iris-small", "m.keras", trial="1", storage=db),
         "--trial: expected a trial's number"),
    ],
)  # fmt: skip
def test_an_argument_of_the_wrong_kind_is_named_before_anything_starts(
    tmp_path: Path, call: Any, said: str
) -> None:
    """The Python API checks what the CLI's types check: one ConfigError naming the
    argument (recycle_after=-1 made every worker replace itself before its first trial, for
    ever), and no database made."""
    db = f"sqlite:///{tmp_path / 'a.db'}"
    with pytest.raises(ConfigError) as caught:
        call(db)
    assert str(caught.value).startswith(said), caught.value
    assert not (tmp_path / "a.db").exists()


def test_a_clash_suggests_a_study_name_that_is_free(tmp_path: Path) -> None:
    """Other settings for an existing study: the new name suggested is not one the storage
    holds (following the advice went on with that other study)."""
    url = f"sqlite:///{tmp_path / 'n.db'}"
    for name in ("s", "s-2"):
        search.run("iris", QUICK, study=name, timeout=0, storage=url, write_report=False)
    with pytest.raises(ConfigError) as caught:
        search.run("iris", QUICK, study="s", epochs=7, storage=url, write_report=False)
    said = str(caught.value)
    assert said.startswith("study 's' exists with other settings: --epochs 7 (the study has 50)")
    assert said.endswith("start a new study: --study s-3."), said


def test_the_api_takes_paths_and_numpy_numbers(tmp_path: Path) -> None:
    """A notebook passes a Path for a data file and NumPy integers for counts."""
    rows = ["a,b,y"] + [f"{i % 7},{(i * 3) % 5},{i % 2}" for i in range(60)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    url = f"sqlite:///{tmp_path / 'p.db'}"
    result = search.run(
        tmp_path / "d.csv", QUICK, target="y", trials=np.int64(1), epochs=np.int32(1),
        storage=url, write_report=False,
    )  # fmt: skip
    assert (result.finished, result.finished_now) == (1, 1)
    with opened_storage(url, for_writing=False) as storage:
        stored = optuna.load_study(study_name=result.study, storage=storage).user_attrs
    assert stored["hpsearch"]["epochs"] == 1 and stored["hpsearch"]["trials"] == 1


def test_timeout_stops_the_search_and_leaves_it_resumable(tmp_path: Path) -> None:
    """The timeout counts from the start of the command, the worker's start-up included."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    result = search.run(
        "iris", QUICK, trials=200, epochs=2, timeout=25, storage=url, write_report=False
    )
    assert result.stopped == "timeout"
    assert 1 <= result.finished < 200
    more = search.resume(result.study, storage=url, trials=result.finished + 1, write_report=False)
    assert more.finished == result.finished + 1
    assert (result.finished_now, more.finished_now) == (result.finished, 1)
    with opened_storage(url, for_writing=False) as storage:
        states = [
            t.state for t in optuna.load_study(study_name=result.study, storage=storage).trials
        ]
    assert TrialState.RUNNING not in states


@pytest.mark.parametrize(
    ("pruner", "expected"),
    [
        ("median", [False, False, False, False, True, True, True]),
        ("percentile", [False, False, False, False, False, True, True]),  # the best 60% go on
    ],
)
def test_a_percentile_pruner_judges_a_running_trial_as_should_prune_does(
    tmp_path: Path, pruner: str, expected: list[bool]
) -> None:
    from search.engines._optuna import CompleteTrials, running_trial

    url = f"sqlite:///{tmp_path / 'p.db'}"
    study = optuna.create_study(study_name="p", storage=url, pruner=make_pruner(pruner, 20))
    distribution = optuna.distributions.FloatDistribution(0, 1)
    for k in range(6):  # complete trials whose curves fall from 1 + k/10 by 0.1 an epoch
        curve = {step: 1 + k / 10 - step / 10 for step in range(8 - k)}
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": k / 10},
                distributions={"x": distribution},
                value=min(curve.values()),
                intermediate_values=curve,
            )
        )
    trial = study.ask()
    complete = CompleteTrials(study)
    values: dict[int, float] = {}
    decisions = []
    for step, value in enumerate([1.2, 1.0, 0.9, 0.85, 0.77, 0.7, 1.3]):
        trial.report(value, step)
        values[step] = value
        decision = study.pruner.prune(complete, running_trial(trial, values))  # type: ignore[arg-type]
        assert decision == trial.should_prune(), step
        decisions.append(decision)
    assert decisions == expected

    # Another worker completes a trial: it counts once the view is older than its age limit.
    stale = CompleteTrials(study, max_age_s=3600.0)
    assert len(stale.get_trials(states=(TrialState.COMPLETE,))) == 6
    other = optuna.load_study(study_name="p", storage=url)
    late = other.ask()
    for step in range(7):
        late.report(0.0, step)
    other.tell(late, 0.0)
    fresh = CompleteTrials(study, max_age_s=0.0)
    assert len(fresh.get_trials(states=(TrialState.COMPLETE,))) == 7
    assert len(stale.get_trials(states=(TrialState.COMPLETE,))) == 6  # read just now
