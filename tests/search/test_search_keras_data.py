"""The Keras tutorials' data sets, read from small cache files the fixture writes
(``keras_home``): the real reading code, no network."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

from search import DataError, load_dataset
from search._data_keras import KERAS_DATASETS, keras_datasets_dir, multi_hot
from search.testing import HPSEARCH

# name -> (task, classes, sample shape, dtype, test rows) for the fixture's files
EXPECTED = {
    "mnist": ("multiclass", 10, (28, 28), np.float32, 100),
    "fashion_mnist": ("multiclass", 10, (28, 28), np.float32, 100),
    "cifar10": ("multiclass", 10, (32, 32, 3), np.float32, 40),
    "imdb": ("binary", None, (10_000,), np.uint8, 100),
    "reuters": ("multiclass", 46, (10_000,), np.uint8, 92),
    "boston_housing": ("regression", None, (13,), np.float32, 24),
}


@pytest.mark.parametrize("name", sorted(KERAS_DATASETS))
def test_every_keras_data_set_loads_from_the_cache(keras_home: Path, name: str) -> None:
    task, classes, shape, dtype, n_test = EXPECTED[name]
    data = load_dataset(name)
    assert data.kind == "keras" and data.task == task and data.classes == classes
    assert data.x_train.shape[1:] == shape and data.x_train.dtype == dtype
    assert data.x_test is not None and data.y_test is not None and len(data.x_test) == n_test
    assert data.x_val.dtype == dtype and data.x_test.dtype == dtype
    described = data.describe()
    assert described["n_test"] == n_test and described["test_split"] == 0.0
    if dtype == np.float32 and task != "regression":  # images: pixels / 255
        assert data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0
        assert data.x_train.max() > 0.9
        assert described["scaling"] == "pixels"
    if dtype == np.uint8:
        assert set(np.unique(data.x_train)) <= {0, 1}
        assert described["num_words"] == 10_000
    if classes:
        assert len(data.class_names) == classes
        assert data.y_train.dtype == np.int64 and data.y_train.max() < classes


def test_images_are_scaled_without_reordering_pixels(keras_home: Path) -> None:
    with np.load(keras_datasets_dir() / "mnist.npz") as raw:
        x_test, y_test = raw["x_test"], raw["y_test"]
    data = load_dataset("mnist")
    assert data.x_test is not None and data.y_test is not None
    np.testing.assert_allclose(data.x_test, x_test.astype(np.float32) / 255, rtol=1e-7)
    np.testing.assert_array_equal(data.y_test, y_test)
    # CIFAR's batches store channels first; Keras' images are channels last.
    with (keras_datasets_dir() / "cifar-10-batches-py-target/cifar-10-batches-py/test_batch").open(
        "rb"
    ) as handle:
        batch = pickle.load(handle)
    first = batch[b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    cifar = load_dataset("cifar10")
    assert cifar.x_test is not None
    np.testing.assert_allclose(cifar.x_test[0], first / 255, rtol=1e-6)


def _tutorial_multi_hot(sequences: list[list[int]], num_words: int) -> np.ndarray:
    """The tutorials' way: ``imdb.load_data(num_words=...)``'s offsets, then a loop."""
    shifted = [[1] + [w + 3 if w + 3 < num_words else 2 for w in seq] for seq in sequences]
    out = np.zeros((len(shifted), num_words), dtype=np.float32)
    for i, seq in enumerate(shifted):
        out[i, seq] = 1.0
    return out


def test_multi_hot_matches_the_tutorials_encoding() -> None:
    rng = np.random.default_rng(1)
    sequences = [rng.integers(0, 400, size=int(n)).tolist() for n in rng.integers(0, 30, 50)]
    for num_words in (4, 50, 1000):
        mine = multi_hot(sequences, num_words)
        assert mine.dtype == np.uint8
        np.testing.assert_array_equal(mine, _tutorial_multi_hot(sequences, num_words))


def test_imdb_honours_num_words_and_the_fingerprint_follows(keras_home: Path) -> None:
    small = load_dataset("imdb", num_words=100)
    large = load_dataset("imdb", num_words=20_000)
    assert small.x_train.shape[1:] == (100,) and large.x_train.shape[1:] == (20_000,)
    assert small.fingerprint != large.fingerprint
    assert small.describe()["num_words"] == 100
    with pytest.raises(DataError, match="--num-words must be an integer from 4"):
        load_dataset("imdb", num_words=3)


def test_reuters_test_part_is_keras_split(keras_home: Path) -> None:
    from search._data_keras import _read_npz

    raw = _read_npz(keras_datasets_dir() / "reuters.npz")
    order = np.arange(len(raw["y"]))
    np.random.RandomState(113).shuffle(order)
    expected = raw["y"][order[int(len(order) * 0.8) :]]
    data = load_dataset("reuters")
    assert data.y_test is not None
    np.testing.assert_array_equal(data.y_test, expected)


def test_keras_data_sets_refuse_a_test_split_and_a_target(keras_home: Path) -> None:
    with pytest.raises(DataError, match="mnist has its own test set"):
        load_dataset("mnist", test_split=0.2)
    with pytest.raises(DataError, match="imdb is a binary data set; leave --task out"):
        load_dataset("imdb", task="multiclass")


def test_damaged_cache_files_are_named_and_kept(keras_home: Path) -> None:
    path = keras_datasets_dir() / "mnist.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"mnist.npz cannot be read .*delete it to download"):
        load_dataset("mnist")
    assert path.read_bytes() == b"not a zip"  # never deleted behind the user's back


def test_labels_outside_the_class_range_are_refused(keras_home: Path) -> None:
    path = keras_datasets_dir() / "mnist.npz"
    with np.load(path) as raw:
        arrays = dict(raw)
    arrays["y_train"][7] = 12
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=r"y_train has 1 label\(s\) outside the class range 0 to 9"):
        load_dataset("mnist")


def test_a_pickle_that_is_not_an_array_is_refused(keras_home: Path) -> None:
    class Gadget:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("touch pwned",))

    batch = keras_datasets_dir() / "cifar-10-batches-py-target/cifar-10-batches-py/test_batch"
    batch.write_bytes(pickle.dumps({b"data": Gadget(), b"labels": [0]}))
    with pytest.raises(DataError, match=r"refusing to unpickle posix\.system"):
        load_dataset("cifar10")
    assert not Path("pwned").exists()


def test_fashion_mnist_sizes_must_agree(keras_home: Path) -> None:
    path = keras_datasets_dir() / "fashion-mnist" / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"\0" * 16 + bytes(28 * 28 * 3))
    with pytest.raises(DataError, match="not 28x28 for each of the 100 labels"):
        load_dataset("fashion_mnist")


@pytest.mark.slow
def test_a_missing_file_without_network_says_where_to_put_it(
    keras_home: Path, tmp_path: Path
) -> None:
    (keras_datasets_dir() / "reuters.npz").unlink()
    db = tmp_path / "s.db"
    proc = subprocess.run(
        [HPSEARCH, "run", "--data", "reuters", "--trials", "1", "--storage", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    # One line: Keras' own "Downloading data from ..." is not printed for a failed download.
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: --data reuters: reuters.npz is not in the Keras cache")
    assert f"at {keras_datasets_dir() / 'reuters.npz'}" in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_a_download_that_makes_progress_shows_it() -> None:
    from search._data_keras import _Progress

    failed, going = io.StringIO(), io.StringIO()
    print("Downloading data from https://example/x.npz", file=_Progress(failed))
    assert failed.getvalue() == ""  # held back: the error line that follows names the address
    out = _Progress(going)
    print("Downloading data from https://example/x.npz", file=out)
    out.write("\r 1024/2048 [====>.....] - 0s")
    assert (
        going.getvalue()
        == "Downloading data from https://example/x.npz\n\r 1024/2048 [====>.....] - 0s"
    )


@pytest.mark.slow
def test_imdb_search_end_to_end_and_resume_keeps_num_words(
    keras_home: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    common = ["--storage", url, "--study", "imdb", "--no-report", "--quiet"]
    first = subprocess.run(
        [HPSEARCH, "run", "--data", "imdb", "--num-words", "500", "--space", "small",
         "--trials", "2", "--epochs", "2", *common],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    import optuna

    study = optuna.load_study(study_name="imdb", storage=url)
    data = study.user_attrs["hpsearch"]["data"]
    assert data["num_words"] == 500 and data["input_shape"] == [500]
    assert data["class_names"] == ["negative", "positive"] and data["n_test"] == 100
    clash = subprocess.run(
        [HPSEARCH, "run", "--data", "imdb", "--num-words", "600", "--trials", "3", *common],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert clash.returncode == 2
    assert "--num-words 600 (the study has 500)" in clash.stderr
    again = subprocess.run(
        [HPSEARCH, "resume", "imdb", "--trials", "3", "--storage", url, "--no-report", "-q"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert len(optuna.load_study(study_name="imdb", storage=url).trials) == 3


def test_num_words_only_for_word_data(keras_home: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [HPSEARCH, "run", "--data", "mnist", "--num-words", "100", "--storage",
         f"sqlite:///{tmp_path / 's.db'}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--num-words applies to word data (imdb, reuters), not to 'mnist'" in proc.stderr


def test_datasets_lists_every_name_and_what_is_cached(keras_home: Path) -> None:
    (keras_datasets_dir() / "reuters.npz").unlink()
    proc = subprocess.run([HPSEARCH, "datasets"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("\t")[0]: line.split("\t") for line in proc.stdout.splitlines()}
    assert set(rows) == {"digits", "breast_cancer", "wine", "iris", "diabetes", *KERAS_DATASETS}
    assert rows["mnist"][1:3] == ["multiclass", "keras (cached)"]
    assert rows["reuters"][2] == "keras (downloads on first use)"
    assert rows["digits"][2] == "scikit-learn"
    assert str(keras_datasets_dir()) in proc.stderr
