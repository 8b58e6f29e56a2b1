"""The report in a real browser: Debian's Chromium, headless, driven by Playwright.

What a person sees: the leaderboard in objective order, every image loaded, sorting by a
click, a hostile study name shown as text (and never run), no request leaving the page, and
a live page reloading itself. `.ci/run` installs Chromium where it is missing.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

import reports

HOSTILE = "<img src=x onerror=alert(1)>study"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "Debian's Chromium is not installed (apt-get install chromium; .ci/run installs it)"
    )


@pytest.fixture(scope="module")
def browser() -> Any:
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright: make install")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


def _open(browser: Any, page_path: Path) -> tuple[Any, list[str], list[str]]:
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(page_path.as_uri())
    page.wait_for_load_state("load")
    return page, requests, dialogs


def _column(page: Any, header: str) -> list[str]:
    return page.evaluate(
        """(header) => {
            const table = document.querySelector("table.board");
            const heads = Array.from(table.tHead.rows[0].cells).map(c => c.textContent.trim());
            const col = heads.indexOf(header);
            return Array.from(table.tBodies[0].rows).map(r => r.cells[col].dataset.v);
        }""",
        header,
    )


def test_the_report_in_a_real_browser(browser: Any, make_study, kit, tmp_path: Path) -> None:
    losses = [0.61, 0.35, 0.52, 0.44, 0.29, 0.70]
    trials = [
        kit.record(kit.curves([1.0, 0.8, loss, loss + 0.01]), {**kit.ADAM, "units": 16 + 8 * k})
        for k, loss in enumerate(losses)
    ]
    trials.append(kit.record(kit.curves([1.5, 1.4, 1.45]), kit.SGD, state=TrialState.PRUNED))
    url, name = make_study(HOSTILE, trials, settings=kit.hp_settings())
    page_path = reports.write_report(url, name, tmp_path / "report.html")
    page, requests, dialogs = _open(browser, page_path)

    screenshot = tmp_path / "report.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 50_000
    (tmp_path / "dom.html").write_text(page.content(), encoding="utf-8")

    # ranked by the objective, best first
    ranked = [float(v) for v in _column(page, "val_loss")]
    assert ranked == sorted(losses)
    assert _column(page, "trial") == [repr(float(n)) for n in (4, 1, 3, 2, 0, 5)]
    # every image decoded and drawn
    images = page.evaluate(
        "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])"
    )
    assert len(images) >= 5
    assert all(complete and width > 0 for complete, width, _ in images), images
    # sorting by a click: up, then down; missing values last
    page.click("table.board th:text-is('trial')")
    assert [float(v) for v in _column(page, "trial")] == [0, 1, 2, 3, 4, 5]
    page.click("table.board th:text-is('trial')")
    assert [float(v) for v in _column(page, "trial")] == [5, 4, 3, 2, 1, 0]
    page.click("table.board th:text-is('units')")
    assert [float(v) for v in _column(page, "units")] == [16, 24, 32, 40, 48, 56]
    assert page.get_attribute("table.board th:text-is('units')", "aria-sort") == "ascending"
    # the hostile name is text: shown as written, never run
    assert page.inner_text("#study-name") == HOSTILE
    assert page.evaluate("document.querySelectorAll('#study-name img').length") == 0
    assert dialogs == []
    # nothing but the page itself was requested (images are inline)
    assert requests == [page_path.as_uri()]
    page.close()


def test_a_live_page_reloads_itself(browser: Any, make_study, kit, tmp_path: Path) -> None:
    url, name = make_study("live", [kit.record(kit.curves([1.0, 0.5]), kit.ADAM)])
    page_path = reports.write_report(url, name, tmp_path / "live.html", live=1)
    page, _, _ = _open(browser, page_path)
    assert "This study is running" in page.inner_text("#live")
    loads: list[float] = []
    page.on("load", lambda _: loads.append(time.monotonic()))
    deadline = time.monotonic() + 10
    while len(loads) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert len(loads) >= 2, "the live page did not reload itself"
    page.close()
