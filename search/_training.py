"""Training one trial: build, fit with early stopping, record every epoch.

Engine-agnostic: an engine passes a ``TrialRecorder`` (whose ``on_epoch`` hook stores the
history as it grows) and its own Keras callbacks (e.g. a pruning callback), and gets back
a ``TrialOutcome``, or the exception that ended the trial with the recorder still holding
everything up to that point.

A trial fits from TensorFlow tensors made once per data set and process, through a tf.data
pipeline of its own (shuffled each epoch from the trial's seed, batched, prefetched), and
runs ``STEPS_PER_EXECUTION`` batches per call into TensorFlow: small models on a CPU spend
most of their time in per-step overhead, not arithmetic (docs/architecture.md, "Fast
trials"). What is trained on and the metrics are those of ``model.fit`` on the arrays.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from search._data import Dataset
from search._errors import TrialFailed
from search._fused import fuse_optimizer
from search._records import TrialRecord, best_epoch
from search._settings import Direction
from spaces import Builder, SpaceError

EpochHook = Callable[[int, "TrialRecorder"], None]

# Batches per call into TensorFlow (Keras' `steps_per_execution`). Per-step overhead is most
# of a small model's time on a CPU: on digits (45 batches an epoch) 8, 16 and 32 measured
# alike and 1 about 1.4 times as slow; 16 keeps batch-end checks (a stop request) frequent.
# Keras calls batch-level callbacks once per execution; epoch-level ones are unaffected.
STEPS_PER_EXECUTION = 16
# The validation data are evaluated in batches of this size (one batch for most data sets):
# the metrics are means over all samples, so the batch size does not change them.
VALIDATION_BATCH = 1024


@dataclass(frozen=True)
class _Tensors:
    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any


# A data set's arrays as tensors, made once per process (a Dataset hashes by identity).
_TENSORS: weakref.WeakKeyDictionary[Dataset, _Tensors] = weakref.WeakKeyDictionary()


@dataclass
class TrialOutcome:
    """How a trial's training went: its value and what its record stores."""

    value: float | None
    history: dict[str, list[float]]
    best_epoch: int | None
    best_metrics: dict[str, float]
    epochs_run: int
    max_epochs: int
    early_stopped: bool
    pruned: bool
    param_count: int | None
    duration_s: float
    # The trained model (best-epoch weights) of a fit that ran to its end; not stored.
    model: Any = field(default=None, repr=False, compare=False)

    def record(self, **more: Any) -> TrialRecord:
        """The trial record of this outcome, with ``more`` of its fields (engine, worker,
        failure reason) set."""
        return TrialRecord(
            history=self.history,
            best_epoch=self.best_epoch,
            best_metrics=self.best_metrics,
            epochs_run=self.epochs_run,
            max_epochs=self.max_epochs,
            early_stopped=self.early_stopped,
            pruned=self.pruned,
            param_count=self.param_count,
            duration_s=self.duration_s,
            **more,
        )


@dataclass
class TrialRecorder:
    """Collects the per-epoch history of one trial and calls ``on_epoch`` after each epoch."""

    objective: str
    direction: Direction
    max_epochs: int
    on_epoch: EpochHook | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    param_count: int | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))

    def record(self, epoch: int, logs: dict[str, Any]) -> None:
        """Append one epoch's logs; a NaN or infinite loss fails the trial."""
        for key, raw in logs.items():
            try:
                value = float(raw)
            except (TypeError, ValueError):
                continue
            if key == "learning_rate":
                continue
            self.history.setdefault(key, []).append(value)
        for key in ("loss", "val_loss", self.objective):
            value = self.history.get(key, [0.0])[-1]
            if not math.isfinite(value):
                raise TrialFailed(f"{key} became {value} at epoch {epoch}")
        if self.on_epoch is not None:
            self.on_epoch(epoch, self)

    def best_epoch(self) -> int | None:
        return best_epoch(self.history.get(self.objective, []), self.direction)

    def outcome(self, *, pruned: bool = False, failed: bool = False) -> TrialOutcome:
        """The outcome so far; a trial that was pruned, failed or was stopped did not end by
        early stopping, whatever epoch it reached."""
        best = self.best_epoch()
        best_metrics = (
            {k: v[best] for k, v in self.history.items() if len(v) > best}
            if best is not None
            else {}
        )
        ran = self.epochs_run
        return TrialOutcome(
            value=None if best is None else self.history[self.objective][best],
            history=self.history,
            best_epoch=best,
            best_metrics=best_metrics,
            epochs_run=ran,
            max_epochs=self.max_epochs,
            early_stopped=not (pruned or failed) and 0 < ran < self.max_epochs,
            pruned=pruned,
            param_count=self.param_count,
            duration_s=time.perf_counter() - self.started,
        )


def fit_trial(
    params: dict[str, Any],
    dataset: Dataset,
    recorder: TrialRecorder,
    *,
    patience: int,
    seed: int,
    callbacks: Sequence[Any] = (),
    builder: Builder | None = None,
) -> TrialOutcome:
    """Build the model for ``params`` with ``builder`` (default: the Dense builder) and fit
    it with early stopping on the objective.

    Raises TrialFailed for a model that cannot be built, a NaN/inf loss or an error while
    training; other exceptions raised by ``callbacks`` (a pruning signal) pass through.
    """
    from search._keras import import_keras
    from spaces import DENSE

    keras = import_keras()
    builder = builder or DENSE

    keras.utils.set_random_seed(seed)
    try:
        batch_size = builder.batch_size(params)
        model = builder.build(params, dataset.spec)
    except SystemExit as exc:  # a user's builder that exits: its trial fails, not the worker
        raise TrialFailed(
            f"building the model failed: the builder called sys.exit({exc.code!r})"
        ) from None
    except SpaceError as exc:  # hpsearch's own line about the builder: no class name
        raise TrialFailed(f"building the model failed: {exc}") from exc
    except Exception as exc:
        raise TrialFailed(f"building the model failed: {type(exc).__name__}: {exc}") from exc
    recorder.param_count = int(model.count_params())

    callback_base: Any = keras.callbacks.Callback

    class _Validation(callback_base):
        """Evaluates the validation batches after each epoch and adds their metrics to the
        epoch's logs as ``val_<name>``, as ``fit(validation_data=...)`` does, through the
        model's own ``test_step`` traced once as one TensorFlow function.

        ``fit``'s own validation calls ``evaluate`` each epoch, whose first call traces a
        ``steps_per_execution`` loop around the test step (a loop that only costs here: the
        validation data are one batch or a few) and whose every call makes an iterator over
        a distributed data set, a callback list and a Python loop over executions
        (docs/architecture.md, "Fast trials"). Keras' own callbacks add to these logs the
        same way (``LearningRateScheduler`` adds ``learning_rate``).
        """

        def __init__(self, batches: ValidationBatches) -> None:
            super().__init__()
            self.batches = batches
            self.step: Any = None

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if logs is None:
                return
            model = self.model
            if self.step is None:
                self.step = _test_function(model, self.batches)
            model.reset_metrics()
            step_logs: Any = None
            for batch in self.batches:
                step_logs = self.step(batch)
            # As evaluate does: the metrics' results, or a custom test_step's own logs.
            results = model.get_metrics_result()
            if isinstance(step_logs, dict) and set(step_logs) != set(results):
                results = step_logs
            for name, value in results.items():
                logs[f"val_{name}"] = float(value)

    class _Record(callback_base):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            recorder.record(epoch, logs or {})

    mode = "min" if recorder.direction == "minimize" else "max"
    stopping = keras.callbacks.EarlyStopping(
        monitor=recorder.objective, mode=mode, patience=patience, restore_best_weights=True
    )
    try:
        train, val = _pipelines(dataset, batch_size, seed)
        # Read when fit builds its train and test functions (compile() set it to 1).
        model.steps_per_execution = STEPS_PER_EXECUTION
        fuse_optimizer(getattr(model, "optimizer", None))
        _build_training_state(model, train.element_spec)
        model.fit(
            train,
            epochs=recorder.max_epochs,
            # Validation first: the callbacks after it read its val_ metrics from the logs.
            callbacks=[_Validation(val), _Record(), stopping, *callbacks],
            verbose=0,
            shuffle=False,  # the pipeline shuffles; Keras warns if asked to
        )
    except TrialFailed:
        raise
    except (ValueError, TypeError, RuntimeError, ArithmeticError, MemoryError) as exc:
        raise TrialFailed(f"training failed: {_error_line(exc, dataset)}") from exc
    except Exception as exc:
        if type(exc).__module__.startswith(("tensorflow", "keras")):
            raise TrialFailed(f"training failed: {_error_line(exc, dataset)}") from exc
        raise
    outcome = recorder.outcome()
    outcome.model = model
    return outcome


# The longest error text a trial's fail_reason keeps (one line; a label list can be long).
_ERROR_CHARS = 300


def _error_line(exc: BaseException, dataset: Dataset) -> str:
    """An error raised while training as one line: its type and message, without the
    stack of Python frames that TensorFlow puts in a graph error's message ("Detected at
    node ... defined at (most recent call last): File ..."), its node and op names; a label
    outside the model's outputs says so in the data's terms."""
    import re

    lines = [line.strip() for line in str(exc).splitlines()]
    noise = ("File ", "Graph execution error", "Detected at node", "[[", "[Op:")
    text = " ".join(line for line in lines if line and not line.startswith(noise))
    text = re.sub(r"\s*\[\[\{\{node [^]]*\]\]|\s*\[Op:[^]]*\]", "", text)
    text = re.sub(r"\s+", " ", text).strip() or type(exc).__name__
    label = re.search(
        r"label value of (-?\d+) which is outside the valid range of \[0, (\d+)", text
    )
    if label is not None:
        classes = dataset.spec.classes
        have = f"the data has {classes} classes" if classes else "the data's labels go further"
        return (
            f"the model has {label.group(2)} outputs but a label is {label.group(1)}: {have} "
            f"(end the model with one unit per class: spec.classes)"
        )
    if len(text) > _ERROR_CHARS:
        text = text[: _ERROR_CHARS - 1].rstrip() + "…"
    return f"{type(exc).__name__}: {text}"


def _tensors(dataset: Dataset) -> _Tensors:
    """The data set's training and validation arrays as tensors, made once per process.

    Floats other than Keras' float type are cast to it, as ``model.fit`` does with arrays.
    """
    cached = _TENSORS.get(dataset)
    if cached is None:
        from search._keras import import_keras

        floatx = np.dtype(import_keras().backend.floatx())
        import tensorflow as tf

        def tensor(array: np.ndarray) -> Any:
            if np.issubdtype(array.dtype, np.floating) and array.dtype != floatx:
                array = array.astype(floatx)
            return tf.convert_to_tensor(array)

        cached = _Tensors(
            x_train=tensor(dataset.x_train),
            y_train=tensor(dataset.y_train),
            x_val=tensor(dataset.x_val),
            y_val=tensor(dataset.y_val),
        )
        _TENSORS[dataset] = cached
    return cached


def _pipelines(dataset: Dataset, batch_size: int, seed: int) -> tuple[Any, ValidationBatches]:
    """The trial's training batches (tf.data) and validation batches, as ``model.fit`` makes
    them from arrays: every sample once per epoch in a new random order (``seed`` makes the
    orders reproducible), the last batch partial. Partial batches cause no retracing: the
    batch dimension is unknown (None) to the traced functions from the start.
    """
    import tensorflow as tf

    t = _tensors(dataset)
    samples = int(t.x_train.shape[0])
    # Shuffles indices, not rows (the buffer holds one int64 per sample), then gathers
    # each batch's rows at once.
    # Features stored as integers (multi-hot words) become floats a batch at a time.
    from search._keras import import_keras

    floatx = t.x_train.dtype if t.x_train.dtype.is_floating else import_keras().backend.floatx()
    x_train, y_train = t.x_train, t.y_train
    train = (
        tf.data.Dataset.range(samples)
        .shuffle(samples, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(lambda i: (tf.cast(tf.gather(x_train, i), floatx), tf.gather(y_train, i)))
        .prefetch(1)
        .with_options(_pipeline_options())
    )
    return train, ValidationBatches(t.x_val, t.y_val, floatx)


@dataclass(frozen=True)
class ValidationBatches:
    """The validation samples in order, in batches of ``VALIDATION_BATCH``, the features cast
    to ``floatx`` a batch at a time; iterable once per epoch.

    Sliced from the tensors directly: a tf.data iterator over them cost about 15 ms to make,
    once per epoch (a fifth of an epoch on digits).
    """

    x: Any
    y: Any
    floatx: Any

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        import tensorflow as tf

        samples = int(self.x.shape[0])
        for start in range(0, samples, VALIDATION_BATCH):
            stop = min(start + VALIDATION_BATCH, samples)
            if stop - start == samples:  # one batch: the tensors themselves, no copy
                x, y = self.x, self.y
            else:
                x, y = self.x[start:stop], self.y[start:stop]
            yield tf.cast(x, self.floatx), y

    def spec(self) -> Any:
        """The structure of a batch, its first dimension unknown (one trace for all)."""
        import tensorflow as tf

        return tuple(
            tf.TensorSpec([None, *t.shape[1:]], dtype)
            for t, dtype in ((self.x, self.floatx), (self.y, self.y.dtype))
        )


def _test_function(model: Any, batches: ValidationBatches) -> Any:
    """The model's ``test_step`` for one batch of ``batches``, compiled as ``fit`` compiles
    it (one TensorFlow function, traced once for any batch size, XLA if the model was
    compiled with it, no AutoGraph), or as it is for a model compiled with
    ``run_eagerly=True``."""
    if model.run_eagerly:
        return model.test_step
    import tensorflow as tf

    return tf.function(
        model.test_step,
        input_signature=[batches.spec()],
        jit_compile=bool(model.jit_compile),
        autograph=False,
    )


def _pipeline_options() -> Any:
    """One thread and no autotuning for a trial's pipeline: a batch is one gather, and
    tf.data's autotuner and thread pool otherwise compete with the training step for the
    worker's cores (on one core a trial took about 1.4 times as long)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    options.threading.private_threadpool_size = 1
    return options


def _build_training_state(model: Any, batch_spec: Any) -> None:
    """Create the optimizer's and the compiled metrics' variables before ``fit``.

    Keras otherwise creates them while it traces the train step, and TensorFlow then traces
    that step a second time (a tf.function that creates variables is traced twice): about a
    fifth of a small trial's time. Keras builds the same state this way itself when a model
    has a distribution strategy (``_symbolic_build``, symbolic: nothing is computed, no
    random numbers are drawn). Without that method Keras builds it during tracing, as before.
    """
    build = getattr(model, "_symbolic_build", None)
    if build is not None:
        build(data_batch=batch_spec)
