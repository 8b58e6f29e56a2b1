from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState
from PIL import Image

import reports

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Tables(HTMLParser):
    """Collects every table as rows of cell texts, keyed by the table's class."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.links: list[str] = []
        self._rows: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for key in ("src", "href"):
            if attributes.get(key):
                self.links.append(attributes[key] or "")
        if tag == "img":
            self.images.append(attributes.get("src") or "")
        elif tag == "table":
            self._rows = self.tables.setdefault(attributes.get("class") or "", [])
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._rows is not None:
            self._rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._rows = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> _Tables:
    parser = _Tables()
    parser.feed(html)
    return parser


def test_report_structure(mixed_html: str) -> None:
    html = mixed_html
    page = parse(html)

    board = page.tables["data board sortable"]
    header, rows = board[0], board[1:]
    assert header[:4] == ["rank", "trial", "val_loss", "val_accuracy"]
    assert "fit" in header and "gap" not in header
    # one column per param, after the fixed columns
    assert header[-4:] == ["learning_rate", "momentum", "optimizer", "units"]
    assert [(r[0], r[1]) for r in rows] == [("1", "1"), ("2", "4"), ("3", "0"), ("4", "2")]
    first = dict(zip(header, rows[0], strict=True))
    assert first["optimizer"] == "sgd" and first["momentum"] == "0.9"
    assert first["fit"] == "unstable"  # both losses rose 15-20% after epoch 2
    assert dict(zip(header, rows[3], strict=True))["momentum"] == "–"  # inactive: adam

    failed = page.tables["data failures"][1:]
    assert [(r[0], r[1]) for r in failed] == [("3", "PRUNED"), ("5", "FAIL")]
    assert failed[0][2] == "pruned at epoch 2 (3 epochs run)"
    assert failed[1][2] == "NaN loss at epoch 1"

    summary = dict(page.tables["kv"])
    assert summary["study"] == "mixed"
    assert summary["data"] == "digits (multiclass)"
    assert summary["objective"] == "val_loss (minimize)"
    assert summary["winner"] == "trial 1: val_loss 0.3; fit: unstable"
    assert "optimizer=sgd" in summary["its params"]
    assert "4 complete" in summary["trials"] and "1 running" in summary["trials"]
    assert summary["resume it"].startswith("hpsearch resume mixed --storage sqlite:///")
    assert summary["export it"].startswith("hpsearch export mixed --storage sqlite:///")
    assert summary["compute"] == "14 s of training, 18 epochs"  # 13.5 s
    # the sections in the order a reader needs them, each with its one-line how-to-read
    sections = [
        "summary",
        "leaderboard",
        "what-mattered",
        "learning-curves",
        "overfitting",
        "optimization-history",
        "settings",
    ]
    positions = [html.index(f'<section id="{section}">') for section in sections]
    assert positions == sorted(positions)
    assert html.count('<p class="how">') >= len(sections)
    for setting in ("sampler", "pruner", "epochs", "patience", "seed"):
        assert f"<th>{setting}</th>" in html
    assert "1 trial was running" in html  # trial 6: the page says it is a snapshot


def test_images_are_inline_png(mixed_html: str) -> None:
    page = parse(mixed_html)
    # importance, per-param, parallel coordinates, top curves, all curves, history
    assert len(page.images) == 6
    for src in page.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        png = base64.b64decode(src.removeprefix(prefix), validate=True)
        assert png.startswith(PNG_SIGNATURE)
        with Image.open(io.BytesIO(png)) as image:
            image.verify()
            assert image.format == "PNG"
            assert 200 < image.size[0] < 1500


def test_no_external_references(mixed_html: str) -> None:
    html = mixed_html
    page = parse(html)
    assert all(link.startswith("data:") for link in page.links)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "http://" not in html and "https://" not in html
    # one inline script (the leaderboard's sorting), nothing loaded from anywhere
    assert html.lower().count("<script") == 1 and "<script>" in html
    assert "<link" not in html.lower() and "@import" not in html


def test_hostile_strings_are_escaped(make_study, kit) -> None:
    hostile_dists = {
        "units": kit.DISTRIBUTIONS["units"],
        "activation": CategoricalDistribution([HOSTILE, "relu"]),
    }
    params = {"units": 32, "activation": HOSTILE}
    good = kit.record(kit.curves([0.9, 0.5]), {"units": 32})
    good = optuna.trial.create_trial(
        state=TrialState.COMPLETE,
        value=good.value,
        params=params,
        distributions=hostile_dists,
        intermediate_values=good.intermediate_values,
        user_attrs=good.user_attrs,
    )
    failed = kit.record(
        kit.curves([1.0]), {"units": 8}, state=TrialState.FAIL, fail_reason=f"bad {HOSTILE}"
    )
    settings = kit.hp_settings(
        data={**kit.hp_settings()["data"], "source": HOSTILE}, sampler=HOSTILE
    )
    url, name = make_study(HOSTILE, [good, failed], settings=settings)
    html = reports.render_report(url, name)
    assert HOSTILE not in html
    assert html.lower().count("<script") == 1  # the page's own
    # study name (title, h1, summary, commands), data source, sampler, param value, reason
    assert html.count(ESCAPED) >= 7
    page = parse(html)
    assert f"bad {HOSTILE}" in [r[2] for r in page.tables["data failures"][1:]]
    board = page.tables["data board sortable"]
    assert dict(zip(board[0], board[1], strict=True))["activation"] == HOSTILE


def test_write_report(mixed_study: tuple[str, str], tmp_path: Path) -> None:
    target = tmp_path / "out" / "nested" / "report.html"
    written = reports.write_report(*mixed_study, target)
    assert written == target
    assert target.is_file()
    text = target.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and text.rstrip().endswith("</html>")
    # replacing an existing report leaves no temporary file behind
    reports.write_report(*mixed_study, str(target), top=1)
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]
    assert "The top 1" in target.read_text(encoding="utf-8")


def test_a_report_replaces_only_a_page_and_writes_through_a_link(
    mixed_study: tuple[str, str], tmp_path: Path
) -> None:
    """-o naming the database or a data file by mistake, or a device, leaves it alone; a
    symbolic link keeps pointing at the (new) page."""
    database = tmp_path / "study.db"
    database.write_bytes(b"SQLite format 3\x00" + bytes(100))
    notes = tmp_path / "data.csv"
    notes.write_text("a,b\n1,2\n")
    for kept in (database, notes):
        before = kept.read_bytes()
        with pytest.raises(reports.ReportError, match="not an HTML page"):
            reports.write_report(*mixed_study, kept)
        assert kept.read_bytes() == before
    pipe = tmp_path / "pipe.html"
    os.mkfifo(pipe)
    with pytest.raises(reports.ReportError, match="not a regular file"):
        reports.write_report(*mixed_study, pipe)
    assert pipe.is_fifo()
    # An empty file and an old page are replaced.
    (tmp_path / "empty.html").touch()
    reports.write_report(*mixed_study, tmp_path / "empty.html")
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "old.html").write_text("<!DOCTYPE html><html></html>")
    link = tmp_path / "latest.html"
    link.symlink_to(pages / "old.html")
    reports.write_report(*mixed_study, link)
    assert link.is_symlink() and link.resolve() == (pages / "old.html").resolve()
    assert "hpsearch report" in link.read_text(encoding="utf-8")
    assert sorted(p.name for p in pages.iterdir()) == ["old.html"]


def test_write_report_missing_study_writes_nothing(
    mixed_study: tuple[str, str], tmp_path: Path
) -> None:
    target = tmp_path / "r" / "report.html"
    with pytest.raises(reports.StudyNotFound):
        reports.write_report(mixed_study[0], "nope", target)
    assert not target.exists()


def test_study_without_complete_trial(make_study, kit) -> None:
    trials = [
        kit.record(kit.curves([1.0, 1.2]), kit.ADAM, state=TrialState.PRUNED),
        kit.record(kit.curves([1.0]), kit.ADAM, state=TrialState.FAIL, fail_reason="OOM"),
    ]
    url, name = make_study("nothing", trials, settings=kit.hp_settings())
    html = reports.render_report(url, name)
    page = parse(html)
    assert "no completed trial yet" in dict(page.tables["kv"])["winner"]
    assert "No completed trial yet: nothing to rank." in html
    assert "data board sortable" not in page.tables
    # the pruned trial's curve and its value in the history
    assert len(page.images) == 2
    assert len(page.tables["data failures"]) == 3

    url, _ = make_study("empty", [])
    assert "No completed trial yet" in reports.render_report(url, "empty")


def test_a_running_trial_whose_worker_died_here_is_not_called_running(make_study, kit) -> None:
    """After kill -9 the study still holds the trial as RUNNING: the page names it, says why
    and gives the command that fails and retries it, instead of "run the report again"."""
    from search._storage import worker_identity

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    running = []
    for worker in ({**worker_identity(), "pid": int(dead.stdout)}, worker_identity()):
        trial = kit.record(kit.curves([1.0, 0.8]), kit.ADAM, state=TrialState.RUNNING)
        trial.user_attrs = {**trial.user_attrs, "worker": worker}  # dead, then this process
        running.append(trial)
    done = kit.record(kit.curves([1.0, 0.5]), kit.SGD)
    url, name = make_study("killed", [done, *running], settings=kit.hp_settings())
    banner = " ".join(re.search(r'id="live">(.*?)</p>', reports.render_report(url, name), re.S)
                      .group(1).split())  # fmt: skip
    assert banner.startswith("The worker of trial 1 on this machine is gone"), banner
    assert f"<code>hpsearch resume killed --storage {url}</code>" in banner, banner
    assert "1 other trial was running when this page was made" in banner, banner
    # `hpsearch trials` says the same under its table.
    hpsearch = str(Path(sys.executable).with_name("hpsearch"))
    listed = subprocess.run([hpsearch, "trials", name, "--all", "--storage", url],
                            capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    assert listed.stderr.splitlines()[-1] == (
        "trial 1 is stored as running, but its worker on this machine is gone; the search "
        f"fails and retries it when it goes on: `hpsearch resume killed --storage {url}`"
    ), listed.stderr

    url, name = make_study("alive", [done, running[1]], settings=kit.hp_settings())
    assert "1 trial was running when this page" in " ".join(
        reports.render_report(url, name).split()
    )
    listed = subprocess.run([hpsearch, "trials", name, "--storage", url],
                            capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    assert "is stored as running" not in listed.stderr, listed.stderr
    # `hpsearch studies` names the study whose worker is gone, not the one whose worker lives.
    listed = subprocess.run([hpsearch, "studies", "--storage", url],
                            capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    notes = [line for line in listed.stderr.splitlines() if "stored as running" in line]
    assert notes == [
        "study 'killed': trial 1 is stored as running, but its worker on this machine is gone; "
        f"the search fails and retries it when it goes on: `hpsearch resume killed --storage {url}`"
    ], listed.stderr
    listed = subprocess.run([hpsearch, "studies", "--storage", url, "--format", "json"],
                            capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    assert {row["study"]: row["gone"] for row in json.loads(listed.stdout)} == {
        "killed": [1],
        "alive": [],
    }, listed.stdout


def test_the_verdict_table_says_when_it_shows_the_best_only(make_study, kit) -> None:
    from reports._html import DIAGNOSIS_ROWS

    many = DIAGNOSIS_ROWS + 3
    trials = [
        kit.record(kit.curves([1.0, 0.8 - i / 100, 0.7 - i / 100]), kit.ADAM) for i in range(many)
    ]
    url, name = make_study("many", trials, settings=kit.hp_settings())
    html = reports.render_report(url, name)
    assert len(parse(html).tables["data diagnosis"]) == DIAGNOSIS_ROWS + 1  # and its header
    assert f"(of {many} completed trials)" in html
    assert f"The best {DIAGNOSIS_ROWS} shown" in html
    url, name = make_study("few", trials[:3], settings=kit.hp_settings())
    assert "shown; every trial" not in reports.render_report(url, name)


def test_plain_optuna_study_renders(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/plain.db"
    study = optuna.create_study(
        storage=url, study_name="plain", sampler=optuna.samplers.RandomSampler(seed=1)
    )
    study.optimize(lambda t: (t.suggest_float("x", -2, 2) - 1) ** 2, n_trials=4)
    html = reports.render_report(url, "plain")
    page = parse(html)
    summary = dict(page.tables["kv"])
    assert summary["engine"] == "optuna" and summary["data"] == "?"
    assert summary["objective"] == "value (minimize)"
    # hpsearch cannot go on with it or train its winner again: no command that is refused
    assert "resume it" not in summary and "export it" not in summary
    assert summary["made by"] == "another program than hpsearch: read here, not resumed"
    board = page.tables["data board sortable"]
    assert len(board) == 5
    assert board[0][:3] == ["rank", "trial", "value"]
    assert board[0][-1] == "x"
    assert "val_loss" not in board[0]  # nothing recorded it
    # importance, slice, parallel coordinates, history; no histories: no curves
    assert len(page.images) == 4
    assert "No completed trial with a per-epoch history." in html


def test_multi_objective_study_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/mo.db"
    optuna.create_study(storage=url, study_name="mo", directions=["minimize", "maximize"])
    with pytest.raises(reports.ReportError, match="2 objectives"):
        reports.render_report(url, "mo")
    [summary] = reports.list_studies(url)
    assert summary.direction == "minimize, maximize"


def test_top_must_be_positive(mixed_study: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="--top: expected a number of trials >= 1"):
        reports.render_report(*mixed_study, top=0)


def test_reports_never_imports_tensorflow(mixed_study: tuple[str, str], tmp_path: Path) -> None:
    url, name = mixed_study
    code = textwrap.dedent(
        f"""
        import sys
        import reports
        frame = reports.trials_frame({url!r}, {name!r})
        assert len(frame) == 8
        reports.list_studies({url!r})
        reports.write_report({url!r}, {name!r}, {str(tmp_path / "r.html")!r})
        bad = sorted(
            m for m in sys.modules
            if m == "tensorflow" or m.startswith(("tensorflow.", "keras", "optuna_integration"))
        )
        assert not bad, bad
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert (tmp_path / "r.html").is_file()


def test_in_parallel_gives_the_childs_result_or_computes_here() -> None:
    import os
    import threading

    from reports._html import in_parallel

    pids: list[int] = []

    def where() -> int:
        pids.append(os.getpid())
        return os.getpid()

    child = in_parallel(where)()
    assert child != os.getpid() and pids == []  # computed in a child, sent back
    calls: list[int] = []

    def fails_in_the_child() -> str:
        calls.append(os.getpid())
        if os.getpid() != parent:
            raise RuntimeError("only in the child")
        return "here"

    parent = os.getpid()
    assert in_parallel(fails_in_the_child)() == "here"  # the child failed: computed here
    assert calls == [parent]
    # with another thread running no fork happens: computed here at once
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert in_parallel(where)() == os.getpid()
    finally:
        stop.set()
        other.join()


def test_values_near_the_largest_float_are_left_out_of_the_plots(
    make_study, kit, tmp_path: Path
) -> None:
    """1e308 written by hand: the axes drawn around it, and fANOVA's variance of it,
    overflowed and the report failed."""
    trials = [kit.record(kit.curves([0.9, 0.6 - i / 10]), {**kit.ADAM, "units": 8 << i})
              for i in range(4)]  # fmt: skip
    for value, history in ((1e308, {"val_loss": [None, 1e308]}), (-1e308, {"loss": [1e308]})):
        trials.append(
            optuna.trial.create_trial(
                value=value,
                params={**kit.ADAM, "units": 100},
                distributions={k: kit.DISTRIBUTIONS[k] for k in kit.ADAM},
                user_attrs={"history": history, "best_epoch": 0},
            )
        )
    url, name = make_study("huge", trials, settings=kit.hp_settings())
    html = reports.write_report(url, name, tmp_path / "r.html").read_text()
    assert len(parse(html).images) >= 5  # curves, history, importance, slice, parallel
