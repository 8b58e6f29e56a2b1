"""The data sets of the Keras tutorials, read from the Keras cache.

``keras.datasets`` keeps each data set in a file under ``$KERAS_HOME/datasets`` (default
``~/.keras/datasets``). A file that is missing is downloaded once through Keras' own
``load_data`` (its address and checksum); the arrays are then read from the cached file
here, so that

- images come as uint8 and become float32 in [0, 1] once, after the split, with no float64
  copy (``Scaling.PIXELS``);
- IMDB and Reuters reviews are multi-hot encoded over the ``num_words`` most frequent words
  the way the tutorials do it (``keras.datasets.imdb.load_data(num_words=...)``: index 1
  starts every review, words are offset by 3, rarer words become 2), in one vectorised
  pass, as uint8 (a quarter of float32's memory; the training pipeline casts each batch);
- the object arrays of IMDB and Reuters are unpickled with only numpy's array globals
  allowed, as Keras does, so a tampered cache file cannot run code.

Reuters and Boston housing ship as one array; their test part is Keras' (a shuffle with
seed 113, the last 20%), so the test set is the one the tutorials report on.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import itertools
import os
import pickle
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np

from search._errors import DataError

# Keras' own split of the data sets that ship as one array (reuters, boston_housing).
KERAS_SPLIT_SEED = 113
KERAS_TEST_SPLIT = 0.2
# The tutorials' vocabulary for IMDB and Reuters, and what the index offsets reserve:
# 0 padding, 1 start of a review, 2 a word outside the vocabulary.
DEFAULT_NUM_WORDS = 10_000
START_CHAR, OOV_CHAR, INDEX_FROM = 1, 2, 3
MAX_NUM_WORDS = 1_000_000


class Scaling(StrEnum):
    """How a data set's features are put on a common scale before training."""

    STANDARD = "standard"  # per feature, mean 0 and variance 1 on the training part
    PIXELS = "pixels"  # uint8 pixels divided by 255, float32 in [0, 1]
    MULTI_HOT = "multi_hot"  # 0/1 word indicators, kept as uint8


@dataclass(frozen=True)
class KerasArrays:
    """What a cache file holds, before the split into training and validation."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    scaling: Scaling
    digest: str  # of the cache files' bytes and the encoding settings


@dataclass(frozen=True)
class KerasSet:
    """One data set of ``keras.datasets``: where it is cached and how it is read."""

    name: str
    task: Literal["binary", "multiclass", "regression"]
    classes: int | None
    files: tuple[str, ...]  # under $KERAS_HOME/datasets
    origin: str
    read: Callable[[Sequence[Path], int], KerasArrays]
    class_names: tuple[str, ...] = ()
    uses_num_words: bool = False
    summary: str = ""
    # How to put the data in place by hand, from ``origin`` ({dir}: the cache folder).
    place: str = "place the file from {origin} at {path}"

    def placing(self) -> str:
        root = keras_datasets_dir()
        return self.place.format(origin=self.origin, path=root / self.files[0], dir=root)


def keras_datasets_dir() -> Path:
    """Where Keras caches its data sets: ``$KERAS_HOME/datasets``, else
    ``~/.keras/datasets`` (Keras falls back to ``/tmp/.keras`` where home is read-only)."""
    home = Path(os.environ.get("KERAS_HOME") or Path("~/.keras").expanduser())
    if not home.exists() or os.access(home, os.W_OK):
        return home / "datasets"
    return Path("/tmp/.keras/datasets")


def load_keras_arrays(name: str, num_words: int) -> KerasArrays:
    """The arrays of ``keras.datasets.<name>``, downloading its file(s) once if missing
    (``num_words`` checked by the caller, ``load_dataset``)."""
    entry = KERAS_DATASETS[name]
    paths = _cached_files(entry)
    try:
        return entry.read(paths, num_words)
    except DataError:
        raise
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile,
            IndexError, TypeError) as exc:  # fmt: skip
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        where = paths[0] if len(paths) == 1 else paths[0].parent
        raise DataError(
            f"--data {name}: the cached file {where} cannot be read ({type(exc).__name__}: "
            f"{reason}); delete it to download it again, or place the file from "
            f"{entry.origin} there."
        ) from None


def check_num_words(num_words: object) -> int:
    if (
        isinstance(num_words, bool)
        or not isinstance(num_words, int)
        or not INDEX_FROM < num_words <= MAX_NUM_WORDS
    ):
        raise DataError(
            f"--num-words must be an integer from {INDEX_FROM + 1} to {MAX_NUM_WORDS} (the "
            f"first {INDEX_FROM} indices are reserved); got {num_words!r}."
        )
    return num_words


def _cached_files(entry: KerasSet) -> list[Path]:
    root = keras_datasets_dir()
    paths = [root / f for f in entry.files]
    if all(p.is_file() for p in paths):
        return paths
    _download(entry, paths)
    return paths


def _download(entry: KerasSet, paths: Sequence[Path]) -> None:
    """Have Keras fetch the data set into its cache (its address and checksum)."""
    from search._keras import import_keras

    missing = next(p for p in paths if not p.is_file())
    keras = import_keras()
    loader = getattr(keras.datasets, entry.name)
    try:
        # Keras prints its download progress on stdout, which is the command's output.
        with contextlib.redirect_stdout(_Progress(sys.stderr)):
            loader.load_data()
    except Exception as exc:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(
            f"--data {entry.name}: {missing.name} is not in the Keras cache and cannot be "
            f"downloaded ({_short(text)}); with no network, {entry.placing()} "
            "(KERAS_HOME sets the folder)."
        ) from None
    if not all(p.is_file() for p in paths):
        raise DataError(
            f"--data {entry.name}: Keras downloaded the data set but {missing} is not there; "
            f"{entry.placing()}."
        )


class _Progress(io.TextIOBase):
    """Keras' download messages, sent to ``out`` once the download shows progress: its first
    line ("Downloading data from URL") is held back until then, so a download that fails at
    once says so in hpsearch's one line alone (which names the address too)."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self.out = out
        self.held: list[str] | None = []

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.held is None:
            return self.out.write(text)
        if not any("\n" in held for held in self.held):
            self.held.append(text)
            return len(text)
        self.out.write("".join(self.held) + text)
        self.held = None
        return len(text)

    def flush(self) -> None:
        if self.held is None:
            self.out.flush()


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _digest(paths: Sequence[Path], *settings: object) -> str:
    h = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                h.update(block)
    h.update(repr(settings).encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- file formats

_ALLOWED_PICKLE_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }
)


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays (and plain lists and numbers) and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """An .npz archive's arrays; object arrays through :class:`_ArraysOnly`."""
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            key = member.removesuffix(".npy")
            with archive.open(member) as raw:
                data = raw.read()
            stream = io.BytesIO(data)
            try:
                arrays[key] = np.lib.format.read_array(stream, allow_pickle=False)
            except ValueError:
                stream.seek(0)
                version = np.lib.format.read_magic(stream)
                if version[0] == 1:
                    np.lib.format.read_array_header_1_0(stream)
                else:
                    np.lib.format.read_array_header_2_0(stream)
                arrays[key] = np.asarray(_ArraysOnly(stream).load())
    return arrays


def _keys(path: Path, arrays: dict[str, np.ndarray], keys: Sequence[str]) -> list[np.ndarray]:
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise DataError(
            f"{path}: expected the arrays {', '.join(keys)}; "
            f"{', '.join(missing)} missing (found {', '.join(sorted(arrays)) or 'none'})."
        )
    return [arrays[k] for k in keys]


def _images(path: Path, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if x.dtype != np.uint8 or x.shape[1:] != shape:
        raise DataError(
            f"{path}: expected uint8 images of shape {shape}; got {x.dtype} of shape {x.shape[1:]}."
        )
    return x


def _read_mnist(paths: Sequence[Path], _: int) -> KerasArrays:
    (path,) = paths
    x_train, y_train, x_test, y_test = _keys(
        path, _read_npz(path), ("x_train", "y_train", "x_test", "y_test")
    )
    return KerasArrays(
        _images(path, x_train, (28, 28)),
        y_train,
        _images(path, x_test, (28, 28)),
        y_test,
        Scaling.PIXELS,
        _digest(paths),
    )


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        return np.frombuffer(handle.read(), np.uint8, offset=offset)


def _read_fashion_mnist(paths: Sequence[Path], _: int) -> KerasArrays:
    y_train, x_train, y_test, x_test = (
        _read_idx(p, 8 if "labels" in p.name else 16) for p in paths
    )
    parts = []
    for labels, images, path in ((y_train, x_train, paths[1]), (y_test, x_test, paths[3])):
        if images.size != len(labels) * 28 * 28:
            raise DataError(
                f"{path}: holds {images.size} pixels, not 28x28 for each of the "
                f"{len(labels)} labels."
            )
        parts.append(images.reshape(len(labels), 28, 28))
    return KerasArrays(parts[0], y_train, parts[1], y_test, Scaling.PIXELS, _digest(paths))


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open("rb") as handle:
        batch = _ArraysOnly(handle, encoding="bytes").load()
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{path}: not a CIFAR batch (a pickled dict with data and labels).")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"])
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataError(
            f"{path}: expected rows of 3072 pixels, one per label; got {data.shape} for "
            f"{len(labels)} labels."
        )
    # Stored as channels, rows, columns; Keras' images are rows, columns, channels.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _read_cifar10(paths: Sequence[Path], _: int) -> KerasArrays:
    train = [_read_cifar_batch(p) for p in paths[:5]]
    x_test, y_test = _read_cifar_batch(paths[5])
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return KerasArrays(x_train, y_train, x_test, y_test, Scaling.PIXELS, _digest(paths))


def multi_hot(sequences: Sequence[Sequence[int]] | np.ndarray, num_words: int) -> np.ndarray:
    """Word-index sequences as rows of 0/1 over ``num_words`` columns, as the tutorials'
    ``vectorize_sequences`` does after ``load_data(num_words=...)``: column 1 marks the
    start, a word ``w`` is column ``w + 3`` if that is below ``num_words``, else column 2.
    One pass over all words at once; uint8."""
    count = len(sequences)
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=count)
    words = np.fromiter(
        itertools.chain.from_iterable(sequences), dtype=np.int64, count=int(lengths.sum())
    )
    if words.size and words.min() < 0:
        raise ValueError("a word index is negative")
    words += INDEX_FROM
    words[words >= num_words] = OOV_CHAR
    out = np.zeros((count, num_words), dtype=np.uint8)
    out[np.repeat(np.arange(count), lengths), words] = 1
    out[:, START_CHAR] = 1
    return out


def _keras_split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Keras' train/test indices for a data set shipped as one array."""
    order = np.arange(n)
    np.random.RandomState(KERAS_SPLIT_SEED).shuffle(order)
    cut = int(n * (1 - KERAS_TEST_SPLIT))
    return order[:cut], order[cut:]


def _read_imdb(paths: Sequence[Path], num_words: int) -> KerasArrays:
    (path,) = paths
    x_train, y_train, x_test, y_test = _keys(
        path, _read_npz(path), ("x_train", "y_train", "x_test", "y_test")
    )
    return KerasArrays(
        multi_hot(x_train, num_words),
        y_train,
        multi_hot(x_test, num_words),
        y_test,
        Scaling.MULTI_HOT,
        _digest(paths, num_words),
    )


def _read_reuters(paths: Sequence[Path], num_words: int) -> KerasArrays:
    (path,) = paths
    xs, ys = _keys(path, _read_npz(path), ("x", "y"))
    if len(xs) != len(ys):
        raise DataError(f"{path}: 'x' has {len(xs)} rows but 'y' has {len(ys)}.")
    train, test = _keras_split(len(xs))
    encoded = multi_hot(xs, num_words)
    return KerasArrays(
        encoded[train],
        ys[train],
        encoded[test],
        ys[test],
        Scaling.MULTI_HOT,
        _digest(paths, num_words),
    )


def _read_boston_housing(paths: Sequence[Path], _: int) -> KerasArrays:
    (path,) = paths
    x, y = _keys(path, _read_npz(path), ("x", "y"))
    if len(x) != len(y):
        raise DataError(f"{path}: 'x' has {len(x)} rows but 'y' has {len(y)}.")
    train, test = _keras_split(len(x))
    return KerasArrays(x[train], y[train], x[test], y[test], Scaling.STANDARD, _digest(paths))


_TF_DATASETS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_CIFAR_DIR = "cifar-10-batches-py-target/cifar-10-batches-py/"
KERAS_DATASETS: dict[str, KerasSet] = {
    entry.name: entry
    for entry in (
        KerasSet(
            "mnist", "multiclass", 10, ("mnist.npz",), _TF_DATASETS + "mnist.npz", _read_mnist,
            tuple(str(i) for i in range(10)),
            summary="70,000 handwritten digits, 28x28 grey (test: 10,000)",
        ),
        KerasSet(
            "fashion_mnist", "multiclass", 10,
            tuple(f"fashion-mnist/{f}" for f in (
                "train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
            )),
            _TF_DATASETS,
            _read_fashion_mnist,
            ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
             "Sneaker", "Bag", "Ankle boot"),
            summary="70,000 clothing images, 28x28 grey (test: 10,000)",
            place="place the 4 files {{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte.gz from "
            "{origin} in {dir}/fashion-mnist/",
        ),
        KerasSet(
            "cifar10", "multiclass", 10,
            tuple(_CIFAR_DIR + f for f in (*(f"data_batch_{i}" for i in range(1, 6)),
                                           "test_batch")),
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            _read_cifar10,
            ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"),
            summary="60,000 photos, 32x32 colour (test: 10,000)",
            place="extract {origin} in {dir}/cifar-10-batches-py-target/ (it holds "
            "cifar-10-batches-py/data_batch_1 to 5 and test_batch)",
        ),
        KerasSet(
            "imdb", "binary", None, ("imdb.npz",), _TF_DATASETS + "imdb.npz", _read_imdb,
            ("negative", "positive"), uses_num_words=True,
            summary="50,000 movie reviews, multi-hot over --num-words words (test: 25,000)",
        ),
        KerasSet(
            "reuters", "multiclass", 46, ("reuters.npz",), _TF_DATASETS + "reuters.npz",
            _read_reuters, uses_num_words=True,
            summary="11,228 newswires in 46 topics, multi-hot over --num-words (test: 20%)",
        ),
        KerasSet(
            "boston_housing", "regression", None, ("boston_housing.npz",),
            _TF_DATASETS + "boston_housing.npz", _read_boston_housing,
            summary="506 Boston house prices from 13 features (test: 20%)",
        ),
    )
}  # fmt: skip
