"""The same reading over every kind of Optuna storage (URL strings and instances)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage

import reports

STORAGE_MODES = [
    "sqlite-url",
    "sqlite-instance",
    "memory",
    "journal",
    pytest.param("postgres-url", marks=pytest.mark.service),
]


@pytest.fixture(params=STORAGE_MODES)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str | BaseStorage:
    mode = request.param
    if mode == "sqlite-url":
        return f"sqlite:///{tmp_path}/s.db"
    if mode == "sqlite-instance":
        instance = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/s.db")
        request.addfinalizer(instance.engine.dispose)
        return instance
    if mode == "memory":
        return optuna.storages.InMemoryStorage()
    if mode == "journal":
        return JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
    return request.getfixturevalue("postgres_url")  # tests/conftest.py: a fresh database


def _fill(storage: str | BaseStorage, kit) -> None:
    # Written through an instance disposed of here, so no pooled connection outlives the test.
    writer = optuna.storages.RDBStorage(storage) if isinstance(storage, str) else storage
    try:
        study = optuna.create_study(storage=writer, study_name="mixed")
        study.set_user_attr("hpsearch", kit.hp_settings())
        for trial in kit.mixed_trials():
            study.add_trial(trial)
        optuna.create_study(storage=writer, study_name="other")
    finally:
        if isinstance(writer, optuna.storages.RDBStorage) and writer is not storage:
            writer.engine.dispose()


def test_every_storage(storage: str | BaseStorage, kit) -> None:
    _fill(storage, kit)

    frame = reports.trials_frame(storage, "mixed")
    assert frame["number"].tolist() == [1, 4, 0, 2, 3, 5, 6, 7]
    assert frame["retry_of"].tolist()[-1] == 5
    assert frame.attrs["settings"]["data"]["source"] == "digits"
    assert [c.number for c in reports.learning_curves_data(frame, top=2)] == [1, 4]

    summaries = {s.name: s for s in reports.list_studies(storage)}
    assert set(summaries) == {"mixed", "other"}
    assert summaries["mixed"].counts["COMPLETE"] == 4
    assert summaries["mixed"].best_number == 1

    html = reports.render_report(storage, "mixed", top=2)
    assert html.count("data:image/png;base64,") == 6  # see test_images_are_inline_png

    with pytest.raises(reports.StudyNotFound, match="'mixed', 'other'"):
        reports.study_summary(storage, "missing")


@pytest.mark.service
def test_a_report_never_shows_the_storage_password(postgres_url: str, kit, tmp_path: Path) -> None:
    # Trust authentication takes any password: the URL works with one in it.
    scheme, _, rest = postgres_url.partition("://")
    user, _, host = rest.partition("@")
    secret = "hunter2-s3cret"
    url = f"{scheme}://{user}:{secret}@{host}"
    _fill(url, kit)
    page = reports.write_report(url, "mixed", tmp_path / "r.html", live=5)
    html = page.read_text(encoding="utf-8")
    assert secret not in html
    assert ":***@" in html and "hpsearch resume mixed --storage" in html  # masked commands
