"""The engine contract (search.testing.EngineContract) over every engine and both storage
kinds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from search.engines import ENGINES
from search.testing import EngineContract

# Each engine with its defaults; Optuna without pruning, so that every trial of the small
# searches here finishes and their points can be compared.
ENGINE_OPTIONS: dict[str, dict[str, Any]] = {
    "optuna": {"engine": "optuna", "pruner": "none"},
    "kerastuner": {"engine": "kerastuner"},
}


def test_every_engine_is_under_contract() -> None:
    assert set(ENGINE_OPTIONS) == set(ENGINES)


@pytest.fixture(params=sorted(ENGINE_OPTIONS))
def engine(request: pytest.FixtureRequest) -> dict[str, Any]:
    return ENGINE_OPTIONS[request.param]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.service)])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'contract.db'}"
    return str(request.getfixturevalue("postgres_url"))


class TestEngineContract(EngineContract):
    pass
