"""Importing Keras (and TensorFlow under it) without its start-up noise on stderr.

TensorFlow's C++ runtime prints CUDA probing messages straight to file descriptor 2 while
it is imported, before any logging setting applies, and its Python logger warns about
retracing as trials build their models; they would break ``--quiet`` and bury the progress
output. Python-level errors of a failed import still surface as exceptions.
"""

from __future__ import annotations

import logging
import os
import sys
from types import ModuleType


def import_keras() -> ModuleType:
    """``import keras``, with stderr silenced during TensorFlow's first import only."""
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            sys.stderr.flush()
            os.dup2(devnull, 2)
            import keras
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
        # Every trial builds a new model, so TensorFlow traces new functions each trial and
        # warns that it "triggered tf.function retracing": expected here, and noise on stderr.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        # Grappler, TensorFlow's graph optimiser, rewrites each newly traced function before
        # its first run. Every trial traces new ones, and on the CPU it bought nothing back:
        # the first epoch 0.07 s faster, later epochs as fast or faster, the same values to
        # the last digit (docs/architecture.md, "Fast trials").
        import tensorflow as tf

        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    import keras

    return keras


def configure_threads(intra_op: int, inter_op: int) -> None:
    """Cap TensorFlow's intra-op and inter-op thread pools (0: TensorFlow's default).

    Call it after ``import_keras()`` and before TensorFlow runs any op: the pools are made
    when its runtime starts. Afterwards TensorFlow accepts the values it already has and
    raises RuntimeError for others; then this does nothing (the pools keep their size).
    """
    import_keras()
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(intra_op))
        tf.config.threading.set_inter_op_parallelism_threads(int(inter_op))
    except RuntimeError:
        pass  # the runtime is already initialised: its pools cannot change any more
