"""Data sets: the scikit-learn built-ins, the Keras tutorials' data sets (``keras.datasets``,
read from the Keras cache: search/_data_keras.py), CSV files and NPZ files, split and scaled.

A data set is loaded once per process (``load_dataset`` caches by source, file state and
split settings); every trial of a search trains on the same arrays.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from search._data_keras import (
    DEFAULT_NUM_WORDS,
    KERAS_DATASETS,
    Scaling,
    check_num_words,
    keras_datasets_dir,
    load_keras_arrays,
)
from search._errors import DataError
from spaces import DataSpec

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")
BUILTIN_DATASETS: dict[str, str] = {
    "digits": "load_digits",
    "breast_cancer": "load_breast_cancer",
    "wine": "load_wine",
    "iris": "load_iris",
    "diabetes": "load_diabetes",
}
BUILTIN_SUMMARIES: dict[str, tuple[Task, str]] = {
    "digits": ("multiclass", "1,797 handwritten digits, 8x8 grey (10 classes)"),
    "breast_cancer": ("binary", "569 tumours, 30 measurements (malignant or benign)"),
    "wine": ("multiclass", "178 wines, 13 chemical measurements (3 cultivars)"),
    "iris": ("multiclass", "150 irises, 4 measurements (3 species)"),
    "diabetes": ("regression", "442 patients, 10 measurements (disease progression)"),
}


def list_datasets() -> list[dict[str, str]]:
    """Every data set ``--data`` knows by name: where it comes from, its task, what it is,
    and for Keras' whether it is in the cache (else it is downloaded on first use)."""
    rows = [
        {"name": name, "task": task, "source": "scikit-learn", "about": about}
        for name, (task, about) in BUILTIN_SUMMARIES.items()
    ]
    root = keras_datasets_dir()
    for name, entry in KERAS_DATASETS.items():
        cached = all((root / f).is_file() for f in entry.files)
        rows.append(
            {
                "name": name,
                "task": entry.task,
                "source": f"keras ({'cached' if cached else 'downloads on first use'})",
                "about": entry.summary,
            }
        )
    return rows


# The largest feature magnitude accepted: models train in float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)
# Integer-valued targets with at most this many distinct values are taken as classes.
MAX_INFERRED_CLASSES = 50


@dataclass(frozen=True, eq=False)
class Dataset:
    """Arrays ready to train on: features scaled on the training part only."""

    source: str
    kind: Literal["builtin", "keras", "csv", "npz"]
    task: Task
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    classes: int | None = None
    target: str | None = None
    feature_names: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    val_split: float = 0.2
    test_split: float = 0.0
    fingerprint: str = ""
    scaling: Scaling = Scaling.STANDARD
    num_words: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> DataSpec:
        """What the model builder needs: input shape, task and class count."""
        return DataSpec(
            input_shape=tuple(int(d) for d in self.x_train.shape[1:]),
            task=self.task,
            classes=self.classes,
        )

    def describe(self) -> dict[str, Any]:
        """The JSON-safe description stored with a study."""
        return {
            "source": self.source,
            "kind": self.kind,
            "target": self.target,
            "task": self.task,
            "classes": self.classes,
            "input_shape": list(self.spec.input_shape),
            "val_split": self.val_split,
            "test_split": self.test_split,
            "n_train": len(self.x_train),
            "n_val": len(self.x_val),
            "n_test": 0 if self.x_test is None else len(self.x_test),
            "fingerprint": self.fingerprint,
            "scaling": self.scaling.value,
            "num_words": self.num_words,
            "class_names": list(self.class_names[:1000]),
            "feature_names": list(self.feature_names[:200]),
        }


def load_dataset(
    source: str,
    *,
    target: str | None = None,
    task: str | None = None,
    val_split: float = 0.2,
    test_split: float = 0.0,
    seed: int = 0,
    num_words: int = DEFAULT_NUM_WORDS,
) -> Dataset:
    """Load, split and scale a data set.

    ``source`` is a built-in name (digits, breast_cancer, wine, iris, diabetes), a Keras
    data set (mnist, fashion_mnist, cifar10, imdb, reuters, boston_housing; IMDB and Reuters
    multi-hot over ``num_words`` words), a ``.csv`` file (``target`` names the label
    column) or a ``.npz`` file with ``x_train``, ``y_train`` and optionally
    ``x_val``/``y_val`` and ``x_test``/``y_test``. The task is inferred from the target
    unless ``task`` is given. Results are cached per process.
    """
    if task is not None and task not in TASKS:
        raise DataError(f"--task must be one of {', '.join(TASKS)}; got {task!r}.")
    if not 0.0 < val_split < 1.0:
        raise DataError(f"--val-split must be in (0, 1); got {val_split!r}.")
    if not 0.0 <= test_split < 1.0 or val_split + test_split >= 1.0:
        raise DataError(
            f"--test-split must be in [0, 1) and leave data to train on "
            f"(val_split + test_split < 1); got test_split={test_split!r}, "
            f"val_split={val_split!r}."
        )
    if source in KERAS_DATASETS:
        if test_split:
            raise DataError(
                f"--test-split: {source} has its own test set (Keras'); leave --test-split out."
            )
        num_words = check_num_words(num_words) if KERAS_DATASETS[source].uses_num_words else 0
    else:
        num_words = 0
    state = _file_state(source)
    return _load_cached(
        source, state, target, task, float(val_split), float(test_split), seed, num_words
    )


def _file_state(source: str) -> tuple[object, ...] | None:
    """Where and how recent a data file is (modification time and size), so an edited
    file, or another Keras cache (KERAS_HOME), is loaded again."""
    if source in BUILTIN_DATASETS:
        return None
    if source in KERAS_DATASETS:
        root = keras_datasets_dir()
        paths = [root / name for name in KERAS_DATASETS[source].files]
    else:
        paths = [Path(source)]
    state: list[object] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            state.append(str(path))
            continue
        state.append((str(path), st.st_mtime, st.st_size))
    return tuple(state)


@functools.lru_cache(maxsize=8)
def _load_cached(
    source: str,
    _state: tuple[object, ...] | None,
    target: str | None,
    task: str | None,
    val_split: float,
    test_split: float,
    seed: int,
    num_words: int,
) -> Dataset:
    if source in BUILTIN_DATASETS:
        x, y, names = _load_builtin(source)
        raw = _Raw(x=x, y=y, feature_names=names, kind="builtin", target="target")
    elif source in KERAS_DATASETS:
        raw = _load_keras(source, num_words)
    elif "://" in source:
        raise DataError(
            f"--data {source!r}: a URL; hpsearch reads files on this machine: download it "
            "(e.g. curl -o data.csv URL) and give its path."
        )
    else:
        path = Path(source)
        suffix = path.suffix.lower()
        if suffix == ".csv":
            raw = _load_csv(path, target)
        elif suffix == ".npz":
            raw = _load_npz(path)
        elif not path.exists() and not suffix:
            known = ", ".join([*BUILTIN_DATASETS, *KERAS_DATASETS])
            raise DataError(
                f"--data: unknown data set {source!r}; expected one of {known}, "
                "or a path to a .csv or .npz file."
            )
        else:
            raise DataError(
                f"{source}: expected a .csv or .npz file or a built-in data set "
                f"({', '.join([*BUILTIN_DATASETS, *KERAS_DATASETS])}); "
                f"got a file ending in {suffix or '(nothing)'!r}."
            )
    return _prepare(source, raw, task, val_split, test_split, seed)


@dataclass
class _Raw:
    x: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    kind: Literal["builtin", "keras", "csv", "npz"]
    target: str | None
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    scaling: Scaling = Scaling.STANDARD
    # A data set whose labels are class indices: their count and names (Keras' sets).
    classes: int | None = None
    class_names: tuple[str, ...] = ()
    digest: str | None = None  # stands for the arrays in the fingerprint
    num_words: int | None = None
    task: Task | None = None  # a data set whose task is known (Keras')


def _load_keras(source: str, num_words: int) -> _Raw:
    entry = KERAS_DATASETS[source]
    arrays = load_keras_arrays(source, num_words)
    n_features = int(np.prod(arrays.x_train.shape[1:]))
    return _Raw(
        x=arrays.x_train,
        y=arrays.y_train.reshape(-1),
        feature_names=tuple(f"x{i}" for i in range(min(n_features, 200))),
        kind="keras",
        target=None,
        x_test=arrays.x_test,
        y_test=arrays.y_test.reshape(-1),
        scaling=arrays.scaling,
        classes=entry.classes,
        class_names=entry.class_names,
        digest=arrays.digest,
        num_words=num_words or None,
        task=entry.task,
    )


def _load_builtin(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from sklearn import datasets

    loader: Callable[..., Any] = getattr(datasets, BUILTIN_DATASETS[name])
    bunch = loader()
    names = tuple(str(n) for n in getattr(bunch, "feature_names", ()))
    return np.asarray(bunch.data), np.asarray(bunch.target), names


def _load_csv(path: Path, target: str | None) -> _Raw:
    import pandas as pd

    _require_file(path)
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{path}: not a readable CSV file ({reason}).") from None
    columns = [str(c) for c in frame.columns]
    header = _header(path)
    twice = sorted({c for c in header if c and header.count(c) > 1})  # blank: 'Unnamed: i'
    if twice:
        raise DataError(
            f"{path}: column(s) {', '.join(map(repr, twice))} appear more than once in the "
            "header; give every column its own name."
        )
    frame = _numbers_as_floats(path, _strip_spaces(frame))
    columns = [str(c) for c in frame.columns]
    if target is None:
        raise DataError(
            f"{path}: --target is required for CSV data; columns are: {', '.join(columns)}."
        )
    if target not in frame.columns:
        separator = next((s for s in ";\t|" if len(columns) == 1 and s in columns[0]), None)
        hint = (
            f" The header reads as one column: the values seem separated by {separator!r}, "
            "and a CSV file here is separated by commas; save it with commas."
            if separator
            else ""
        )
        raise DataError(
            f"{path}: no column {target!r} for --target; columns are: {', '.join(columns)}." + hint
        )
    if len(frame) == 0:
        raise DataError(f"{path}: the file has a header but no rows.")
    y_series = frame[target]
    missing = y_series.isna()
    if missing.any():
        first = int(np.flatnonzero(missing.to_numpy())[0])
        raise DataError(
            f"{path}: target column {target!r} has {int(missing.sum())} missing value(s) "
            f"(NaN), the first in data row {first + 1}; drop or fill those rows."
        )
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DataError(f"{path}: no feature columns besides the target {target!r}.")
    bad = [str(c) for c in features.columns if features[c].isna().any()]
    if bad:
        raise DataError(
            f"{path}: feature column(s) {', '.join(map(repr, bad))} have missing values "
            "(NaN); fill or drop them first."
        )
    _check_text_columns(path, features)
    encoded = pd.get_dummies(features, dtype=float)
    x = encoded.to_numpy(dtype=np.float64)
    y = y_series.to_numpy()
    return _Raw(
        x=x,
        y=y,
        feature_names=tuple(str(c) for c in encoded.columns),
        kind="csv",
        target=target,
    )


def _require_file(path: Path) -> None:
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give a .csv or .npz file.")
    if not path.exists():
        raise DataError(f"{path}: no such file.")
    if not path.is_file():
        raise DataError(
            f"{path}: not a regular file (a pipe or a device); give a .csv or .npz file."
        )


# How missing values are often written in text files (UCI's "?", R's "NA", ...).
_MISSING_MARKERS = frozenset({"?", "na", "n/a", "nan", "null", "none", "-", "--", "missing"})


def _check_text_columns(path: Path, features: Any) -> None:
    """Refuse a text column that one-hot encoding would turn into nonsense: numbers with a
    few stray cells ("?" for missing, "1,037.5", a typo), or nearly one value per row (an
    identifier, free text), which would add an input per row."""
    import pandas as pd

    rows = len(features)
    for name in features.columns:
        column = features[name]
        if column.dtype != object and not isinstance(column.dtype, pd.StringDtype):
            continue
        numbers = pd.to_numeric(column, errors="coerce")
        stray = numbers.isna().to_numpy()
        texts = {str(v).strip().lower() for v in column[stray]}
        # Numbers with a few stray cells, or with missing-value markers; a column whose texts
        # are many and common ("2, 3, 4, 5more") is a category.
        if stray.any() and (stray.mean() <= 0.05 or texts <= _MISSING_MARKERS):
            first = int(np.flatnonzero(stray)[0])
            raise DataError(
                f"{path}: feature column {str(name)!r} holds numbers, but {int(stray.sum())} "
                f"cell(s) are not, the first in data row {first + 1}: {column.iloc[first]!r}; "
                "fix them, or leave a missing value's cell empty (then fill or drop it)."
            )
        distinct = int(column.nunique())
        if distinct > max(50, 0.9 * rows):
            raise DataError(
                f"{path}: feature column {str(name)!r} holds {distinct} different texts in "
                f"{rows} rows (an identifier or free text?): one-hot encoding would add an "
                "input for each; drop the column or turn it into numbers."
            )


def _strip_spaces(frame: Any) -> Any:
    """The frame with the spaces around its column names and text cells removed: layout,
    not data ("a, b" after a comma, "cat " beside "cat"), which would otherwise make a
    column's name differ from the one asked for and one class or category two. A cell of
    spaces only is empty: missing, as an empty cell is; a header cell of spaces only is
    unnamed, as an empty one is (pandas names it ``Unnamed: i``, i its position)."""
    import pandas as pd

    frame.columns = [
        (c.strip() or f"Unnamed: {i}") if isinstance(c, str) else c
        for i, c in enumerate(frame.columns)
    ]
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object or isinstance(column.dtype, pd.StringDtype):
            frame[name] = column.map(lambda v: (v.strip() or None) if isinstance(v, str) else v)
    return frame


def _numbers_as_floats(path: Path, frame: Any) -> Any:
    """Columns of numbers that pandas kept as Python objects (an integer beyond 64 bits)
    as floats, as pandas reads other numbers; one beyond a float's range is refused, with
    its column and row. Otherwise such a column would be read as text: a category per value.
    """
    import pandas as pd

    for name in frame.columns:
        column = frame[name]
        if column.dtype != object or not column.map(lambda v: isinstance(v, int)).any():
            continue
        try:
            frame[name] = pd.to_numeric(column).astype(float)
        except OverflowError:
            for row, value in enumerate(column):
                if isinstance(value, int) and not _fits_float(value):
                    raise DataError(
                        f"{path}: column {str(name)!r} holds a number beyond a float's range "
                        f"in data row {row + 1} (an integer of {len(str(abs(value)))} "
                        "digits); rescale the column or drop the row."
                    ) from None
            raise
        except (ValueError, TypeError):
            continue  # texts among them: the text checks say what is wrong
    return frame


def _fits_float(value: int) -> bool:
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _header(path: Path) -> list[str]:
    """The CSV's first row as written (pandas renames a repeated column ``y`` to ``y.1``)."""
    import csv

    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        return [c.strip() for c in next(csv.reader(handle), [])]


def _load_npz(path: Path) -> _Raw:
    _require_file(path)
    import zipfile

    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{path}: not an .npz archive (a zip of arrays, as numpy.savez writes); "
            "save the arrays with numpy.savez(path, x_train=..., y_train=...)."
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {}
            for key in npz.files:
                try:
                    arrays[key] = np.asarray(npz[key])
                except MemoryError as exc:  # a header claiming more than there is memory
                    raise DataError(
                        f"{path}: {key!r} does not fit in this machine's memory ({exc}); "
                        "a smaller sample of the data, or a machine with more memory."
                    ) from None
    except DataError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{path}: not a readable .npz file ({reason}).") from None
    for key in ("x_train", "y_train"):
        if key not in arrays:
            raise DataError(
                f"{path}: key {key!r} is missing; found {', '.join(sorted(arrays)) or 'nothing'}."
            )
    for a, b in (("x_val", "y_val"), ("x_test", "y_test")):
        if (a in arrays) != (b in arrays):
            have, lack = (a, b) if a in arrays else (b, a)
            raise DataError(f"{path}: key {have!r} is present but {lack!r} is missing.")
    for key, array in arrays.items():
        if key.startswith(("x_", "y_")) and array.ndim == 0:
            raise DataError(
                f"{path}: {key!r} must be an array of samples; got a single value "
                f"({array.item()!r:.40})."
            )
        if key.startswith("x_") and array.ndim < 2:
            raise DataError(
                f"{path}: {key!r} must have a sample axis and feature axes (2 or more "
                f"dimensions); got shape {array.shape}."
            )
        if key.startswith("y_") and not (
            array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)
        ):
            raise DataError(
                f"{path}: {key!r} must hold one label or value per sample (shape (n,)); "
                f"got shape {array.shape}."
            )
    for key in ("y_train", "y_val", "y_test"):
        if key in arrays:
            arrays[key] = arrays[key].reshape(-1)
    for key in ("x_val", "x_test"):
        if key in arrays and arrays[key].shape[1:] != arrays["x_train"].shape[1:]:
            raise DataError(
                f"{path}: {key!r} has samples of shape {arrays[key].shape[1:]}, but 'x_train' "
                f"has {arrays['x_train'].shape[1:]}; every part needs the same features."
            )
    for xk, yk in (("x_train", "y_train"), ("x_val", "y_val"), ("x_test", "y_test")):
        if xk in arrays and len(arrays[xk]) != len(arrays[yk]):
            raise DataError(
                f"{path}: {xk!r} has {len(arrays[xk])} rows but {yk!r} has {len(arrays[yk])}."
            )
    n_features = int(np.prod(arrays["x_train"].shape[1:]))
    return _Raw(
        x=arrays["x_train"],
        y=arrays["y_train"],
        feature_names=tuple(f"x{i}" for i in range(min(n_features, 200))),
        kind="npz",
        target="y_train",
        x_val=arrays.get("x_val"),
        y_val=arrays.get("y_val"),
        x_test=arrays.get("x_test"),
        y_test=arrays.get("y_test"),
    )


def _check_features(source: str, name: str, x: np.ndarray, feature_names: tuple[str, ...]) -> None:
    """What every data source must give (CSV, NPZ, built-in): numbers, all finite, in
    samples that have at least one feature."""
    if x.ndim < 2 or x.shape[0] == 0 or int(np.prod(x.shape[1:])) == 0:
        raise DataError(f"{source}: {name} must be samples of features; got shape {x.shape}.")
    if x.dtype.kind not in "biuf":
        raise DataError(
            f"{source}: {name} must be numbers; got values of type {x.dtype} "
            "(encode text features as numbers first)."
        )
    if x.dtype.kind in "biu":
        return  # integers are finite and within float32's range
    flat = x.reshape(len(x), -1)
    finite = np.isfinite(flat)
    if finite.all() and x.dtype.kind == "f" and x.dtype.itemsize > 4:
        # Models train in float32: larger magnitudes overflow it (and its statistics); a
        # narrower float cannot hold them (float16 would overflow on FLOAT32_MAX itself).
        finite = np.abs(flat) <= FLOAT32_MAX
    if not finite.all():
        row, column = (int(i[0]) for i in np.nonzero(~finite))
        value = x.reshape(len(x), -1)[row, column]
        feature = feature_names[column] if column < len(feature_names) else f"x{column}"
        raise DataError(
            f"{source}: {name} hold {int((~finite).sum())} NaN, infinite or out-of-range "
            f"(beyond ±{FLOAT32_MAX:.1e}) value(s), the first {value} in row {row + 1}, "
            f"feature {feature!r}; fill, drop or rescale them first."
        )


def infer_task(y: np.ndarray) -> Task:
    """binary for two distinct values, multiclass for a few integer or text labels,
    regression otherwise."""
    values = np.unique(y)
    if len(values) == 2:
        return "binary"
    if y.dtype.kind in "OUSb":
        return "multiclass"
    integer_valued = y.dtype.kind in "iu" or bool(np.all(np.mod(values, 1) == 0))
    if integer_valued and 2 < len(values) <= MAX_INFERRED_CLASSES:
        return "multiclass"
    return "regression"


def _prepare(
    source: str, raw: _Raw, task: str | None, val_split: float, test_split: float, seed: int
) -> Dataset:
    if len(raw.x) < 4:
        rows = "row" if len(raw.x) == 1 else "rows"
        raise DataError(f"{source}: only {len(raw.x)} {rows}; too few to split and train.")
    for name, x_part in (("features", raw.x), ("x_val", raw.x_val), ("x_test", raw.x_test)):
        if x_part is not None:
            _check_features(source, name, x_part, raw.feature_names)
    for name, y_part in (("y_train", raw.y), ("y_val", raw.y_val), ("y_test", raw.y_test)):
        if y_part is not None and y_part.dtype.kind == "c":
            raise DataError(f"{source}: {name} holds complex numbers; expected labels or reals.")
    parts = {"y_train": raw.y, "y_val": raw.y_val, "y_test": raw.y_test}
    texts = {name for name, part in parts.items() if part is not None and part.dtype.kind in "OUS"}
    if texts and len(texts) < sum(part is not None for part in parts.values()):
        numbers = [n for n, part in parts.items() if part is not None and n not in texts]
        raise DataError(
            f"{source}: the labels of {' and '.join(sorted(texts))} are text but those of "
            f"{' and '.join(numbers)} are numbers; give every part labels of one kind."
        )
    y_all = raw.y if raw.y_val is None else np.concatenate([raw.y, raw.y_val])
    if raw.y.dtype.kind not in "OUSb" and not np.all(np.isfinite(y_all.astype(float))):
        raise DataError(f"{source}: the target has NaN or infinite values.")
    if len(np.unique(y_all)) < 2:
        raise DataError(
            f"{source}: the target has a single value ({y_all[:1].tolist()[0]!r}); there is "
            "nothing to learn. Check --target."
        )
    if raw.task is not None and task is not None and task != raw.task:
        raise DataError(f"--task {task}: {source} is a {raw.task} data set; leave --task out.")
    chosen = cast(Task, task) if task else (raw.task or infer_task(y_all))
    if raw.classes is not None:
        classes, class_names, encode = _class_indices(source, raw)
    else:
        classes, class_names, encode = _encoding(source, raw, chosen, y_all)

    y = encode(raw.y)
    stratify = chosen != "regression"
    # Standardised features are computed in float64; the others keep their stored type
    # until each part is scaled, so a large image set is never held in float64.
    x = raw.x.astype(np.float64) if raw.scaling is Scaling.STANDARD else raw.x
    x_test = y_test = None
    if raw.x_test is not None and raw.y_test is not None:
        x_test, y_test = raw.x_test, encode(raw.y_test)
    elif test_split > 0:
        x, x_test, y, y_test = _split(x, y, test_split, seed, stratify, source)
    if raw.x_val is not None and raw.y_val is not None:
        x_train, y_train = x, y
        x_val, y_val = raw.x_val, encode(raw.y_val)
    else:
        x_train, x_val, y_train, y_val = _split(x, y, val_split, seed, stratify, source)
    del x
    kinds = len(np.unique(y_train)) if stratify else 2
    if len(x_train) < 2 or kinds < 2:
        of = f" of {kinds} class" if stratify else ""
        raise DataError(
            f"{source}: {len(x_train)} row(s){of} are left to train on after the splits "
            f"(--val-split {val_split}, --test-split {test_split}); too few to learn from: "
            "give splits nearer 0.2, or more data."
        )
    scale = _scaler(raw.scaling, x_train)
    return Dataset(
        source=source,
        kind=raw.kind,
        task=chosen,
        x_train=scale(x_train),
        y_train=y_train,
        x_val=scale(x_val),
        y_val=y_val,
        x_test=None if x_test is None else scale(x_test),
        y_test=y_test,
        classes=classes,
        target=raw.target,
        feature_names=raw.feature_names,
        class_names=raw.class_names or class_names,
        val_split=val_split,
        test_split=test_split,
        fingerprint=_fingerprint(raw, chosen, val_split, test_split, seed),
        scaling=raw.scaling,
        num_words=raw.num_words,
    )


Encoder = Callable[[np.ndarray], np.ndarray]


def _encoding(
    source: str, raw: _Raw, chosen: Task, y_all: np.ndarray
) -> tuple[int | None, tuple[str, ...], Encoder]:
    """The labels as the model's targets: regression values as float32, classes as their
    index among the sorted distinct labels (the names kept, for text labels)."""
    if chosen == "regression":
        if raw.y.dtype.kind in "OUS":
            raise DataError(f"{source}: --task regression needs a numeric target.")
        return None, (), lambda v: v.astype(np.float32)
    labels, counts = np.unique(y_all, return_counts=True)
    if chosen == "multiclass" and y_all.dtype.kind in "iuf":
        _check_class_labels(source, labels, counts)
    if chosen == "binary" and len(labels) != 2:
        raise DataError(
            f"{source}: --task binary needs exactly 2 classes in the target; found {len(labels)}."
        )
    if len(labels) < 2:
        raise DataError(f"{source}: the target has a single class; nothing to learn.")
    seen = set(np.unique(raw.y).tolist())
    for name, y_part in (("y_val", raw.y_val), ("y_test", raw.y_test)):
        unseen = [] if y_part is None else sorted(set(np.unique(y_part).tolist()) - seen)
        if unseen:
            raise DataError(
                f"{source}: {name} has label(s) {', '.join(map(repr, unseen[:5]))} that "
                "y_train never has; a model cannot learn a class it never sees."
            )
    dtype = np.float32 if chosen == "binary" else np.int64

    def encode(v: np.ndarray) -> np.ndarray:
        return np.searchsorted(labels, v).astype(dtype)

    classes = len(labels) if chosen == "multiclass" else None
    return classes, tuple(str(v) for v in labels), encode


def _check_class_labels(source: str, labels: np.ndarray, counts: np.ndarray) -> None:
    """Numbers taken as classes (``--task multiclass``) must look like labels: a measured
    quantity (fractions, or a value per row) would train a classifier of hundreds of classes
    that are never seen twice."""
    fractional = labels[np.mod(labels, 1) != 0]
    once = int((counts == 1).sum())
    if len(fractional):
        why = f"fractional values such as {fractional[0].item()!r}"
    elif len(labels) > MAX_INFERRED_CLASSES and once > len(labels) / 2:
        why = f"{once} of its {len(labels)} distinct values only once"
    else:
        return
    raise DataError(
        f"{source}: --task multiclass, but the target has {why}: a measured quantity, not "
        "class labels; use --task regression (or leave --task out)."
    )


def _class_indices(source: str, raw: _Raw) -> tuple[int | None, tuple[str, ...], Encoder]:
    """Labels that are already class indices 0..classes-1 (Keras' data sets): checked,
    kept as they are."""
    count = int(raw.classes or 0)
    for name, part in (("y_train", raw.y), ("y_test", raw.y_test)):
        if part is None:
            continue
        if part.dtype.kind not in "iu":
            raise DataError(f"{source}: {name} must hold class indices; got {part.dtype} values.")
        outside = part[(part < 0) | (part >= count)]
        if outside.size:
            raise DataError(
                f"{source}: {name} has {outside.size} label(s) outside the class range 0 to "
                f"{count - 1}, the first {int(outside[0])}; the cached file is damaged: "
                "delete it to download it again."
            )
    dtype = np.float32 if count == 2 else np.int64
    names = tuple(str(i) for i in range(count))
    return (None if count == 2 else count), names, lambda v: v.astype(dtype)


def _scaler(scaling: Scaling, x_train: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """How each part's features are scaled: statistics from the training part only."""
    if scaling is Scaling.PIXELS:
        return lambda a: np.divide(a, np.float32(255), dtype=np.float32)
    if scaling is Scaling.MULTI_HOT:
        return lambda a: a.astype(np.uint8, copy=False)
    from sklearn.preprocessing import StandardScaler

    shape = x_train.shape[1:]
    scaler = StandardScaler().fit(x_train.reshape(len(x_train), -1))

    def scale(a: np.ndarray) -> np.ndarray:
        flat = a.reshape(len(a), -1).astype(np.float64)
        return scaler.transform(flat).reshape((len(a), *shape)).astype(np.float32)

    return scale


def _split(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int, stratify: bool, source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    if round(len(x) * fraction) < 1 or len(x) - round(len(x) * fraction) < 1:
        raise DataError(
            f"{source}: {len(x)} rows are too few for a split of {fraction} (each side needs "
            "a row); give a split nearer 0.2."
        )
    try:
        parts = train_test_split(
            x, y, test_size=fraction, random_state=seed, stratify=y if stratify else None
        )
    except ValueError:
        # A class too rare to appear on both sides: fall back to a plain shuffled split.
        try:
            parts = train_test_split(x, y, test_size=fraction, random_state=seed)
        except ValueError as exc:
            raise DataError(f"{source}: cannot split {len(x)} rows by {fraction}: {exc}") from None
    return parts[0], parts[1], parts[2], parts[3]


def _fingerprint(raw: _Raw, task: str, val_split: float, test_split: float, seed: int) -> str:
    digest = hashlib.sha256()
    parts: tuple[np.ndarray | None, ...] = (
        raw.x,
        raw.y,
        raw.x_val,
        raw.y_val,
        raw.x_test,
        raw.y_test,
    )
    if raw.digest is not None:  # the files the arrays were read from
        digest.update(raw.digest.encode())
        parts = ()
    for part in parts:
        if part is None:
            digest.update(b"-")
            continue
        arr = np.ascontiguousarray(part)
        digest.update(str((arr.dtype.str, arr.shape)).encode())
        digest.update(arr.tobytes() if arr.dtype.kind != "O" else repr(arr.tolist()).encode())
    digest.update(f"{task}|{val_split}|{test_split}|{seed}".encode())
    return digest.hexdigest()[:16]
