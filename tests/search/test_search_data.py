"""Data sets: built-ins, CSV, NPZ; task inference, seeded stratified splits, scaling."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from search import DataError, load_dataset
from search._data import infer_task


@pytest.mark.parametrize(
    ("name", "task", "classes", "features"),
    [
        ("digits", "multiclass", 10, 64),
        ("breast_cancer", "binary", None, 30),
        ("wine", "multiclass", 3, 13),
        ("iris", "multiclass", 3, 4),
        ("diabetes", "regression", None, 10),
    ],
)
def test_builtin_datasets_load_with_inferred_task(
    name: str, task: str, classes: int | None, features: int
) -> None:
    ds = load_dataset(name)
    assert ds.task == task
    assert ds.classes == classes
    assert ds.spec.input_shape == (features,)
    total = len(ds.x_train) + len(ds.x_val)
    assert len(ds.x_val) == pytest.approx(0.2 * total, abs=1)
    assert ds.x_train.dtype == np.float32
    assert len(ds.fingerprint) == 16


def test_scaler_is_fitted_on_the_training_part_only() -> None:
    ds = load_dataset("wine", seed=3)
    assert np.allclose(ds.x_train.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(ds.x_train.std(axis=0), 1, atol=1e-3)
    # The validation part went through the same transform, so it is not exactly standard.
    assert not np.allclose(ds.x_val.mean(axis=0), 0, atol=1e-3)


def test_split_is_seeded_and_stratified() -> None:
    a = load_dataset("iris", seed=1)
    b = load_dataset("iris", seed=1)
    c = load_dataset("iris", seed=2)
    assert a is b, "a data set is loaded once per process"
    assert not np.array_equal(a.x_val, c.x_val)
    counts = np.bincount(a.y_val.astype(int))
    assert counts.tolist() == [10, 10, 10]


def test_test_holdout_is_kept_apart() -> None:
    ds = load_dataset("breast_cancer", test_split=0.25)
    assert ds.x_test is not None and ds.y_test is not None
    total = len(ds.x_train) + len(ds.x_val) + len(ds.x_test)
    assert total == 569
    assert len(ds.x_test) == pytest.approx(0.25 * 569, abs=1)
    assert ds.describe()["n_test"] == len(ds.x_test)


def test_infer_task() -> None:
    assert infer_task(np.array([0, 1, 1, 0])) == "binary"
    assert infer_task(np.array(["yes", "no", "no"])) == "binary"
    assert infer_task(np.array(["a", "b", "c"])) == "multiclass"
    assert infer_task(np.array([1, 2, 3, 4, 2])) == "multiclass"
    assert infer_task(np.linspace(0, 1, 100)) == "regression"
    assert infer_task(np.arange(500)) == "regression"


def _write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_one_hot_encodes_text_features_and_labels(tmp_path: Path) -> None:
    rows = ["size,color,label"]
    rng = np.random.default_rng(0)
    for i in range(60):
        rows.append(f"{rng.normal():.3f},{['red', 'blue', 'green'][i % 3]},{['cat', 'dog'][i % 2]}")
    path = _write_csv(tmp_path / "pets.csv", "\n".join(rows) + "\n")
    ds = load_dataset(str(path), target="label")
    assert ds.task == "binary"
    assert ds.kind == "csv"
    assert ds.spec.input_shape == (4,)
    assert set(ds.feature_names) == {"size", "color_blue", "color_green", "color_red"}
    assert ds.class_names == ("cat", "dog")
    assert set(np.unique(ds.y_train)) == {0.0, 1.0}


def test_csv_categories_that_look_like_numbers_are_categories(tmp_path: Path) -> None:
    """UCI's car evaluation: doors 2, 3, 4, 5more; persons 2, 4, more; and a column of many
    categories in few rows: one-hot encoded, not refused."""
    rows = ["doors,persons,shop,label"]
    for i in range(40):
        doors = ["2", "3", "4", "5more"][i % 4]
        persons = ["2", "4", "more"][i % 3]
        rows.append(f"{doors},{persons},shop{i % 25},{['acc', 'unacc'][i % 2]}")
    path = _write_csv(tmp_path / "car.csv", "\n".join(rows) + "\n")
    ds = load_dataset(str(path), target="label")
    assert ds.spec.input_shape == (4 + 3 + 25,)
    assert "doors_5more" in ds.feature_names and "persons_more" in ds.feature_names


def test_csv_task_override_to_regression(tmp_path: Path) -> None:
    rows = ["a,b,y"] + [f"{i},{i * 2},{i % 3}" for i in range(30)]
    path = _write_csv(tmp_path / "r.csv", "\n".join(rows))
    assert load_dataset(str(path), target="y").task == "multiclass"
    assert load_dataset(str(path), target="y", task="regression").task == "regression"


@pytest.mark.parametrize(
    ("content", "target", "expected"),
    [
        ("a,b\n1,2\n3,4\n", "price", "no column 'price' for --target; columns are: a, b"),
        ("", "y", "the file is empty"),
        ("a,y\n", "y", "header but no rows"),
        ("a,y\n1,0\n2,\n3,1\n4,0\n", "y", "target column 'y' has 1 missing value(s)"),
        ("a,y\n1,0\n2,1\n", None, "--target is required"),
        ("a,b,y\n1,,0\n2,3,1\n2,3,1\n2,3,0\n", "y", "feature column(s) 'b' have missing values"),
        # Numbers with stray text ("?" for missing, a typo) are not categories.
        (
            "a,b,y\n1,2.5,0\n2,?,1\n3,4.1,1\n4,3.3,0\n",
            "y",
            "feature column 'b' holds numbers, but 1 cell(s) are not, the first in data row 2: '?'",
        ),
        ("a;b;y\n1;2;0\n3;4;1\n", "y", "the values seem separated by ';'"),
        # One text per row (an identifier) would be an input per row.
        (
            "id,a,y\n" + "".join(f"row{i},{i % 7},{i % 2}\n" for i in range(60)),
            "y",
            "feature column 'id' holds 60 different texts in 60 rows (an identifier",
        ),
    ],
)
def test_csv_errors_name_the_file_and_the_problem(
    tmp_path: Path, content: str, target: str | None, expected: str
) -> None:
    path = _write_csv(tmp_path / "bad.csv", content)
    with pytest.raises(DataError) as info:
        load_dataset(str(path), target=target)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_npz_with_given_validation_part(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6, 2))
    y = (x.sum(axis=(1, 2)) > 0).astype(int)
    path = tmp_path / "arrays.npz"
    np.savez(path, x_train=x[:60], y_train=y[:60], x_val=x[60:], y_val=y[60:])
    ds = load_dataset(str(path))
    assert ds.task == "binary"
    assert ds.spec.input_shape == (6, 2)
    assert len(ds.x_train) == 60 and len(ds.x_val) == 20


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"x_train": np.zeros((5, 2))}, "key 'y_train' is missing; found x_train"),
        (
            {"x_train": np.zeros((5, 2)), "y_train": np.zeros(4)},
            "'x_train' has 5 rows but 'y_train' has 4",
        ),
        (
            {"x_train": np.zeros((5, 2)), "y_train": np.zeros(5), "x_val": np.zeros((2, 2))},
            "'x_val' is present but 'y_val' is missing",
        ),
        (
            {
                "x_train": np.arange(12.0).reshape(6, 2),
                "y_train": np.array([0, 1] * 3),
                "x_val": np.zeros((2, 2)),
                "y_val": np.array(["a", "b"]),
            },
            "the labels of y_val are text but those of y_train are numbers",
        ),
        (
            {"x_train": np.float32(5.0), "y_train": np.zeros(5)},  # type: ignore[dict-item]
            "'x_train' must be an array of samples; got a single value (5.0)",
        ),
    ],
)
def test_npz_errors(tmp_path: Path, arrays: dict[str, np.ndarray], expected: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=None) as info:
        load_dataset(str(path))
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_an_npz_member_larger_than_memory_is_named(tmp_path: Path) -> None:
    """A member whose header claims more than there is memory (a truncated or foreign
    file): the line names the file and the member, not only "out of memory"."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 10)}
    )
    labels = io.BytesIO()
    np.save(labels, np.zeros(3))
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.npy", header.getvalue() + bytes(64))
        archive.writestr("y_train.npy", labels.getvalue())
    with pytest.raises(DataError) as info:
        load_dataset(str(path))
    said = str(info.value)
    assert said.startswith(f"{path}: 'x_train' does not fit in this machine's memory"), said
    assert "TiB" in said  # numpy's own account of the size


def test_a_data_path_that_is_a_folder_or_a_url_says_so(tmp_path: Path) -> None:
    (tmp_path / "parts.csv").mkdir()
    with pytest.raises(DataError, match=r"parts.csv: is a folder; give a .csv or .npz file"):
        load_dataset(str(tmp_path / "parts.csv"), target="y")
    with pytest.raises(DataError, match=r"'https://example.org/d.csv': a URL; .* download it"):
        load_dataset("https://example.org/d.csv", target="y")


def test_unknown_source_and_bad_splits() -> None:
    with pytest.raises(DataError, match="unknown data set 'mnist2'"):
        load_dataset("mnist2")
    with pytest.raises(DataError, match="--val-split"):
        load_dataset("iris", val_split=1.5)
    # A split that leaves one row (of one class) to train on.
    with pytest.raises(DataError, match=r"iris: 1 row\(s\) of 1 class are left to train on"):
        load_dataset("iris", val_split=0.99)
    with pytest.raises(DataError, match="--task must be one of"):
        load_dataset("iris", task="ranking")
    with pytest.raises(DataError, match="--task binary needs exactly 2 classes"):
        load_dataset("iris", task="binary")


def test_fingerprint_follows_the_data(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    _write_csv(path, "a,y\n" + "\n".join(f"{i},{i % 2}" for i in range(20)))
    first = load_dataset(str(path), target="y").fingerprint
    _write_csv(path, "a,y\n" + "\n".join(f"{i + 1},{i % 2}" for i in range(20)))
    assert load_dataset(str(path), target="y").fingerprint != first


def test_labels_that_are_not_numbers_are_classes_as_they_come(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(60, 3))
    dates = (np.arange(60) % 3).astype("datetime64[D]")
    np.savez(tmp_path / "dates.npz", x_train=x, y_train=dates)
    data = load_dataset(str(tmp_path / "dates.npz"), task="multiclass")
    assert data.classes == 3
    np.savez(tmp_path / "floats.npz", x_train=x, y_train=(np.arange(60) % 3).astype(float))
    assert load_dataset(str(tmp_path / "floats.npz"), task="multiclass").classes == 3


def test_csv_spaces_around_names_and_cells_are_layout(tmp_path: Path) -> None:
    """ "cat " and "cat" are one class, " red" and "red" one category, and a header written
    "size, color, label" names the column label."""
    rows = ["size, color, label"]
    for i in range(60):
        pad = " " * (i % 3)
        rows.append(f"{i % 7}.5,{pad}{['red', 'blue'][i % 2]},{['cat', 'dog'][i % 2]}{pad}")
    path = _write_csv(tmp_path / "spaced.csv", "\n".join(rows) + "\n")
    ds = load_dataset(str(path), target="label")
    assert ds.task == "binary"
    assert ds.class_names == ("cat", "dog")
    assert set(ds.feature_names) == {"size", "color_blue", "color_red"}
    # A cell of spaces only is an empty cell: a missing label, not a class named "".
    rows[5] = "1.5,red,   "
    _write_csv(path, "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"target column 'label' has 1 missing value.*data row 5"):
        load_dataset(str(path), target="label")
    # A header cell of spaces only is unnamed, as an empty one is: pandas' "Unnamed: i".
    rows = ["size,  ,, label"] + [f"{i},{i % 5},{i % 3},{i % 2}" for i in range(60)]
    _write_csv(path, "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"columns are: size, Unnamed: 1, Unnamed: 2, label\."):
        load_dataset(str(path))
    assert load_dataset(str(path), target="label").feature_names == (
        "size",
        "Unnamed: 1",
        "Unnamed: 2",
    )


def test_csv_integers_beyond_64_bits_are_numbers(tmp_path: Path) -> None:
    """pandas keeps an integer beyond 64 bits as a Python object: the column is still one
    of numbers (one input), and one beyond a float's range is refused with its row."""
    rows = ["a,label"] + [f"{i},{i % 2}" for i in range(40)]
    rows[3] = f"{10**22},0"
    path = _write_csv(tmp_path / "big.csv", "\n".join(rows) + "\n")
    data = load_dataset(str(path), target="label")
    assert data.feature_names == ("a",)
    rows[3] = "1" * 400 + ",0"
    _write_csv(path, "\n".join(rows) + "\n")
    with pytest.raises(
        DataError, match=r"column 'a' holds a number beyond a float's range in data row 3 "
    ):
        load_dataset(str(path), target="label")


def test_npz_of_half_floats_loads_without_warnings(tmp_path: Path) -> None:
    """float16 features are within float32's range: no check may cast float32's largest
    value to float16 (an overflow warning, an error under this suite's filters)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3)).astype(np.float16)
    np.savez(tmp_path / "half.npz", x_train=x, y_train=np.arange(60) % 2)
    data = load_dataset(str(tmp_path / "half.npz"))
    assert data.x_train.dtype == np.float32 and data.task == "binary"
