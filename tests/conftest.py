"""Fixtures shared by every test package: real databases, a Keras cache."""

from __future__ import annotations

import gzip
import os
import pickle
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

PG_ADMIN_URL = os.environ.get("HPSEARCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    name = f"hpsearch_test_{uuid.uuid4().hex[:12]}"
    # Two tests stop or restart the server; should another test process start a test while
    # it is down (a few seconds), wait for it rather than fail.
    deadline = time.monotonic() + 60
    while True:
        try:
            with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            break
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                pytest.fail(f"PostgreSQL at {admin} is not reachable: {exc}")
            time.sleep(0.5)
    base = admin.rsplit("/", 1)[0]
    yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_keras_cache(root: Path, *, seed: int = 0) -> None:
    """Small files in the formats of Keras' cache (``$KERAS_HOME/datasets``): the loading
    code reads them exactly as it reads the real downloads, with no network."""
    rng = np.random.default_rng(seed)
    data = root / "datasets"
    (data / "fashion-mnist").mkdir(parents=True, exist_ok=True)

    def images(n: int, shape: tuple[int, ...]) -> np.ndarray:
        return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)

    def labels(n: int, classes: int) -> np.ndarray:
        return (np.arange(n) % classes).astype(np.uint8)

    def reviews(n: int) -> np.ndarray:
        # As Keras stores them: an object array of Python lists of word indices.
        out = np.empty(n, dtype=object)
        for i in range(n):
            out[i] = rng.integers(1, 12_000, size=int(rng.integers(5, 40))).tolist()
        return out

    np.savez(
        data / "mnist.npz",
        x_train=images(300, (28, 28)),
        y_train=labels(300, 10),
        x_test=images(100, (28, 28)),
        y_test=labels(100, 10),
    )
    for name, array, magic in (
        ("train-labels-idx1-ubyte.gz", labels(300, 10), 8),
        ("train-images-idx3-ubyte.gz", images(300, (28, 28)), 16),
        ("t10k-labels-idx1-ubyte.gz", labels(100, 10), 8),
        ("t10k-images-idx3-ubyte.gz", images(100, (28, 28)), 16),
    ):
        with gzip.open(data / "fashion-mnist" / name, "wb") as handle:
            handle.write(b"\0" * magic + array.tobytes())
    cifar = data / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    cifar.mkdir(parents=True, exist_ok=True)
    for name in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"):
        batch = {b"data": images(40, (3072,)), b"labels": labels(40, 10).tolist()}
        (cifar / name).write_bytes(pickle.dumps(batch))
    np.savez(
        data / "imdb.npz",
        x_train=reviews(200),
        y_train=labels(200, 2).astype(np.int64),
        x_test=reviews(100),
        y_test=labels(100, 2).astype(np.int64),
    )
    np.savez(data / "reuters.npz", x=reviews(460), y=labels(460, 46).astype(np.int64))
    np.savez(
        data / "boston_housing.npz",
        x=rng.normal(10.0, 5.0, size=(120, 13)),
        y=rng.normal(22.0, 9.0, size=120),
    )


@pytest.fixture
def keras_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Keras home holding a small cache file of every Keras data set (KERAS_HOME is set,
    so worker processes and the CLI read it too); downloads fail fast."""
    home = tmp_path / "keras-home"
    write_keras_cache(home)
    monkeypatch.setenv("KERAS_HOME", str(home))
    # Any download attempt is refused at once instead of waiting for the network.
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    return home


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a grouped test, in words, if the grouping did not take: pytest-xdist then spreads
    the PostgreSQL tests over both processes, and a test stopping the server fails others."""
    if (
        getattr(item.config.option, "loadgroup", False)
        and item.get_closest_marker("xdist_group")
        and "@" not in item.nodeid
    ):
        pytest.fail(
            "--dist loadgroup did not group this test: this pytest and pytest-xdist do not "
            "work together (see the pins in pyproject.toml)",
            pytrace=False,
        )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With pytest-xdist (``make test`` runs two processes, ``--dist loadgroup``): every
    test that talks to the PostgreSQL server runs in one process, since two of them stop or
    restart the server; the tests of a module that share a module-scoped fixture (a search
    run once) run in one process, so it runs once.

    First among the hooks: pytest-xdist reads the ``xdist_group`` marks in its own
    ``pytest_collection_modifyitems``, which would otherwise run before this one adds them.
    """
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs if info is not None else {}
        if "postgres_url" in defs or item.get_closest_marker("service"):
            group = "postgresql"
        elif any(d.scope == "module" for ds in defs.values() for d in ds):
            group = item.nodeid.split("::", 1)[0]
        else:
            continue
        item.add_marker(pytest.mark.xdist_group(group))
