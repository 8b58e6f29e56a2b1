"""Importing Keras (and TensorFlow under it) without its start-up noise on stderr.

TensorFlow's C++ runtime prints CUDA probing messages straight to file descriptor 2 while
it is imported, before any logging setting applies; they would break ``--quiet`` and bury
the progress output. Python-level errors of a failed import still surface as exceptions.
"""

from __future__ import annotations

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
    import keras

    return keras
