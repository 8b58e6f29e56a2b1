"""hpsearch's benchmarks, each comparison reported as a ratio measured in one run.

1. hpsearch against what a user writes by hand. The same search of one fixed configuration
   (``benchmarks/fixed.yaml``: 64-64 ReLU, Adam at 1e-3, batch 32, no dropout; its only free
   parameter is the learning rate within 1e-5 relative) runs as three whole processes, each
   pinned to core 0 with ``taskset -c 0``, in turn (a, b, c, a, b, c, ... for R rounds):

   (a) the ``hpsearch run`` command (SQLite, every epoch recorded, ``--workers 1``);
   (b) ``benchmarks/anchor_optuna.py``: Optuna + Keras by hand, in the style of Optuna's own
       Keras example, on an in-memory study;
   (c) ``benchmarks/anchor_kerastuner.py``: KerasTuner's ``RandomSearch``.

   Why it is fair: the three train identical models on identical data. The anchors take the
   digits arrays from ``search.load_dataset`` (the same split and scaling as hpsearch), build
   the network hpsearch's builder makes for the fixed space, and fit it with the same epochs,
   patience, ``EarlyStopping(restore_best_weights=True)``, batch size, optimizer and learning
   rate; every trial seeds Keras with its number as hpsearch does, so all three start from
   the same weights. Whole processes are timed, start-up (importing TensorFlow) included,
   because that is what a user waits for; one core each, so no side gets more hardware;
   alternated, so a slow spell on a shared machine hits all three. The script shows the
   sameness it claims: parameter counts, the epochs each trial trained (early stopping
   decides them) and the best validation losses. The anchors feed ``model.fit`` the arrays
   as users do; where hpsearch feeds its own input pipeline (its shuffles differ, so
   trials may stop at other epochs) the epochs trained tell how much work each side did,
   and the ratio of time per epoch trained is printed beside the plain one. It reports the
   median wall time of each side, the CPU time (user + system, less sensitive to other
   load), and hpsearch/(b), hpsearch/(c). Goal: hpsearch at most 0.5x the wall time of (b)
   and of (c).

2. ``--workers 2`` against ``--workers 1`` on this machine: the same study size, not pinned,
   alternated. Throughput is finished trials per second while the search runs, from the
   first trial's start to the last trial's end (read back from the study); the goal, at
   least 1.8x, is on that ratio. The ratio of whole commands is printed beside it: it adds
   the fixed start-up (importing TensorFlow, loading the data: seconds, paid once however
   many workers run them in parallel) and so depends on the study's size. Other load on
   the machine (the load average is printed) lowers both.

3. Resident memory per worker over a long search (``--rss-trials``, 200 by default, 2 epochs
   each), once without recycling (``--recycle-after 0 --max-worker-memory 0``) and once
   recycling every 50 trials. Each trial stores its worker's RSS after the trial
   (``rss_mib``) and the worker (``worker``: host, pid, start time); they are read back
   with ``optuna.load_study`` and printed at trials 1, 1/4, 1/2, 3/4 and the last, with the
   maximum and the number of distinct worker processes.

4. Time to a target (``--only target``): how fast each way of searching finds a good model.
   The same space (``mlp``, the default), data (digits and breast_cancer), epochs and
   patience (hpsearch's defaults, 50 and 5) and seeds (``--target-seeds``, 3: 0, 1, 2), each
   search one process pinned to a core, the contenders alternated within each seed
   (``--contenders`` picks some). Every search gets the same wall time (``--target-seconds``,
   120), counted from its first trial's start, and runs as many trials as fit; what ends
   later is not counted. A budget of trials instead would stop a way of searching whose
   trials cost less sooner, and count that against it. The contenders: hpsearch's defaults
   (Optuna TPE with the percentile pruner); unpruned Optuna TPE twice, as a user writes it by
   hand (``benchmarks/anchor_optuna_search.py``: Optuna's default sampler, ``model.fit`` on
   the arrays, an in-memory study; the same space, models and data) and through hpsearch
   (``--pruner none``: the same training code, so only pruning differs); TPE with Optuna's
   Hyperband pruner (a candidate default); and KerasTuner's Hyperband, RandomSearch and
   BayesianOptimization oracles (``--engine kerastuner``, hpsearch's training code). The
   target of a data set is within 5% of the best validation loss any of its runs found; a
   run's time to it is the time from its first trial's start to the end of the trial whose
   result first reached it (its epochs to it: the epochs all its trials trained until then).
   A run that never reaches it counts as never reaching it. Since one lucky run sets that
   target, each unpruned TPE is also a reference with a level most of its runs reach: the
   median of its own runs' best values (of an even count, the higher middle one). Medians
   over the seeds. Goal: the default at most 0.5x the time of unpruned TPE, and ahead of the
   KerasTuner oracles.

   Which trials a search runs is luck as much as method: pruning changes what the sampler
   is told, and so every later trial. So hpsearch's pruners (``--pruner``: percentile,
   the default; median; successive-halving; hyperband) are also replayed on the trials of
   the unpruned TPE runs through hpsearch: the same trials in the same order, each told
   epoch by epoch to Optuna's pruner as hpsearch tells it and cut where it would be cut.
   Per pruner: the time and epochs the run would have taken, whether it keeps the run's
   best trial, and its time to the unpruned run's best value. A trial cut after k of its n
   epochs costs F + (its time - F) x k / n, where F, a trial's fixed cost (building the
   model, tracing its steps, its records), is fitted to the run's trials by least squares.

5. Memory of a large data set (``--only data``): peak resident memory of loading cifar10
   (``search.load_dataset``, split and scaled: what every worker holds) from a full-size
   Keras cache the benchmark writes (50,000 + 10,000 random images, the real file layout),
   next to the bytes of the arrays it keeps (float32 in [0, 1]) and a process that only
   imports the same modules. Goal: the arrays held once, with no float64 copy: the peak
   above the imports at most 2x the arrays kept.

6. The report at scale (``--only report``): a study of 10,000 finished trials of 20 epochs
   written by ``benchmarks/big_study.py`` into SQLite; ``hpsearch report``, ``trials --top
   5``, ``studies`` and ``--help`` as whole processes (wall time and peak RSS through
   ``os.wait4``), alternated with ``benchmarks/anchor_visualization.py``, which draws the same
   plots with ``optuna.load_study`` and ``optuna.visualization.matplotlib``. Goals: the
   report in at most 3 s, 2 MB and 400 MiB; ``trials`` and ``studies`` in at most 1 s;
   ``--help`` in at most 0.15 s.

7. Time to a target where epochs dominate (``--only large``): part 4's default against
   unpruned TPE through hpsearch on a data set the benchmark generates (scikit-learn's
   ``make_classification``: 30,000 samples, 40 features, 4 classes), on which an epoch
   costs more than building and tracing a model; ``--large-trials`` (30) trials of up to
   ``--large-epochs`` (10) epochs, patience ``--patience`` (3): a budget of trials, as both
   contenders' trials cost the same per epoch. Same goal as part 4.

8. Choosing the default pruner (``--only pruners``): part 4's replay on more searches and
   more settings. Unpruned TPE through hpsearch on ``--pruner-seeds`` (12) seeds per data
   set, as part 4 runs it; hpsearch's pruners and other settings of Optuna's percentile
   pruner (which share of the complete trials goes on, after how many complete trials and
   from which epoch) replayed on their trials. The first half of the seeds is where a
   setting is chosen, the second half checks it on searches it was not chosen on.
   ``--runs-dir`` keeps the searches' databases and reuses them, to replay other settings.

9. A short search on every core (``--only short``): part 1's three sides, not pinned, with
   ``--short-trials`` (1) trial(s) and ``--short-rounds`` (5) rounds: what a user waits for
   when a search is mostly start-up (importing TensorFlow, opening the database, loading the
   data), where hpsearch's own start-up is measured against a script that does only the
   first and runs in one process. Goal, as in part 1: hpsearch at most 0.5x the wall time of
   (b) and of (c) (not expected of one trial; the ratio says how far start-up is from it).

The tables and the machine they ran on (CPU, cores, memory, library versions, date) go to
docs/benchmarks.md (``--output``; not with ``--quick`` unless asked).

    make bench                                  # or: .venv/bin/python benchmarks/run.py
    .venv/bin/python benchmarks/run.py --quick --rss-trials 20 --recycle-after 5
    .venv/bin/python benchmarks/run.py --only anchors --rounds 5
    .venv/bin/python benchmarks/run.py --only target --target-seconds 60 --contenders default,tpe
    .venv/bin/python benchmarks/run.py --only pruners --jobs 2 --runs-dir /tmp/unpruned

``--only`` rewrites the sections it runs in docs/benchmarks.md and keeps the others.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import functools
import hashlib
import json
import math
import os
import pickle
import platform
import queue
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPACE = "benchmarks/fixed.yaml"  # relative to ROOT, where every command runs
BIN = Path(sys.executable).parent
PIN = ("taskset", "-c", "0")
PARTS = ("anchors", "workers", "rss", "target", "data", "report", "large", "pruners", "short")
GOAL_TIME = 0.5  # hpsearch / anchor, wall time: at most
GOAL_WORKERS = 1.8  # throughput of --workers 2 / --workers 1: at least
GOAL_TARGET = 0.5  # time to target, hpsearch's default / unpruned TPE: at most
TARGET_DATA = ("digits", "breast_cancer")
TARGET_SEEDS = 3  # seeds per contender and data set in 4. and 7. (0, 1, ...)
TARGET_SLACK = 1.05  # the target: within 5% of the best validation loss any run found
# Part 7: a data set on which an epoch costs more than building and tracing a model.
LARGE_SHAPE = (30_000, 40, 4)  # samples, features, classes (scikit-learn's generator)
# (key, label, options of `hpsearch run`): what differs between the contenders.
CONTENDERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("default", "hpsearch's defaults (Optuna TPE + percentile pruner)", ()),
    ("by-hand", "Optuna TPE, no pruning, written by hand (anchor_optuna_search.py)", ()),
    ("tpe", "Optuna TPE, no pruning, through hpsearch",
     ("--sampler", "tpe", "--pruner", "none")),
    ("tpe-hyperband", "Optuna TPE + Hyperband pruner", ("--pruner", "hyperband")),
    ("kt-hyperband", "KerasTuner Hyperband",
     ("--engine", "kerastuner", "--algorithm", "hyperband")),
    ("kt-random", "KerasTuner RandomSearch",
     ("--engine", "kerastuner", "--algorithm", "random")),
    ("kt-bayesian", "KerasTuner BayesianOptimization",
     ("--engine", "kerastuner", "--algorithm", "bayesian")),
)  # fmt: skip
BY_HAND = "by-hand"  # the contender that is a hand-written script, not `hpsearch run`
UNLIMITED_TRIALS = 100_000  # the trial count of a search whose budget is its time
# What the default is measured against: unpruned TPE as a user writes it by hand, and the
# same through hpsearch (what pruning alone changes).
REFERENCES = (BY_HAND, "tpe")
STUDY = "bench"
FINISHED = ("COMPLETE", "PRUNED")


class BenchError(RuntimeError):
    """A benchmarked command failed or did not do the work it was meant to do."""


@dataclass
class Run:
    """One timed process."""

    wall: float
    cpu: float  # user + system of the process and its children
    stdout: str


def timed(command: Sequence[str]) -> Run:
    """Run ``command`` in ROOT, wait for it, and time it (wall and CPU)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("HPSEARCH_STORAGE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise BenchError(f"`{shlex.join(command)}` exited with {proc.returncode}:\n{tail}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Run(wall, cpu, proc.stdout)


def hpsearch_command(
    db: Path, *, trials: int, epochs: int, patience: int, workers: int, extra: Sequence[str] = ()
) -> list[str]:
    return [
        str(BIN / "hpsearch"),
        "run",
        "--data", "digits",
        "--space", SPACE,
        "--trials", str(trials),
        "--epochs", str(epochs),
        "--patience", str(patience),
        "--sampler", "random",
        "--pruner", "none",
        "--seed", "0",
        "--storage", f"sqlite:///{db}",
        "--study", STUDY,
        "--quiet",
        "--no-report",
        "--workers", str(workers),
        *extra,
    ]  # fmt: skip


def load_trials(db: Path) -> list[Any]:
    """The study's trials (``optuna.FrozenTrial``), by number."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{db}")
    return sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)


def hpsearch_record(db: Path) -> dict[str, Any]:
    """What the anchors print, read from hpsearch's database."""
    trials = [t for t in load_trials(db) if t.state.name == "COMPLETE"]
    return {
        "trials": len(trials),
        "param_count": trials[0].user_attrs.get("param_count") if trials else None,
        "epochs_run": [int(t.user_attrs.get("epochs_run", -1)) for t in trials],
        "values": [t.value for t in trials],
    }


def anchor_record(stdout: str) -> dict[str, Any]:
    """The JSON line an anchor prints last."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            record: dict[str, Any] = json.loads(line)
            return record
    raise BenchError(f"an anchor printed no JSON summary; its output ended:\n{stdout[-500:]}")


def log(message: str) -> None:
    print(message, flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


# --- 1. hpsearch against the anchors -----------------------------------------------------


@dataclass
class Side:
    key: str
    label: str
    command: Callable[[Path], list[str]]
    record: Callable[[Path, Run], dict[str, Any]]
    runs: list[Run] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def epochs(self) -> float:
        """Median over the runs of the epochs trained in all trials."""
        return median([sum(r["epochs_run"]) for r in self.records])


def compare_anchors(
    args: argparse.Namespace, *, trials: int | None = None, pinned: bool = True
) -> dict[str, Any]:
    """Part 1 (each process pinned to core 0), or part 9 (``pinned=False``: a short search
    on every core, as a user runs one)."""
    n, e, p = trials or args.trials, args.epochs, args.patience
    pin = PIN if pinned else ()
    rounds = args.rounds if pinned else args.short_rounds
    py = sys.executable
    common = ["--trials", str(n), "--epochs", str(e), "--patience", str(p)]
    sides = [
        Side(
            "a",
            "hpsearch CLI (SQLite, --workers 1)",
            lambda tmp: hpsearch_command(
                tmp / "bench.db", trials=n, epochs=e, patience=p, workers=1
            ),
            lambda tmp, _run: hpsearch_record(tmp / "bench.db"),
        ),
        Side(
            "b",
            "Optuna + Keras by hand (in memory)",
            lambda tmp: [py, "benchmarks/anchor_optuna.py", *common],
            lambda _tmp, run: anchor_record(run.stdout),
        ),
        Side(
            "c",
            "KerasTuner RandomSearch",
            lambda tmp: [py, "benchmarks/anchor_kerastuner.py", *common, "--directory", str(tmp)],
            lambda _tmp, run: anchor_record(run.stdout),
        ),
    ]
    log(
        f"\n{'1' if pinned else '9'}. hpsearch vs. anchors: {n} trial(s), up to {e} epochs, "
        f"patience {p}, {rounds} round(s), "
        + ("each process on core 0" if pinned else "each process on every core")
    )
    for r in range(rounds):
        for side in sides:
            with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as name:
                tmp = Path(name)
                run = timed([*pin, *side.command(tmp)])
                record = side.record(tmp, run)
            if record["trials"] != n:
                raise BenchError(f"({side.key}) ran {record['trials']} trials, not {n}")
            side.runs.append(run)
            side.records.append(record)
            log(
                f"  round {r + 1} ({side.key}) {side.label}: {run.wall:6.1f} s wall, "
                f"{run.cpu:6.1f} s CPU, {sum(record['epochs_run'])} epochs"
            )

    a, b, c = sides
    same = check_same_work(sides)
    result: dict[str, Any] = {
        "n": n,
        "e": e,
        "p": p,
        "rounds": rounds,
        "pinned": pinned,
        "same": same,
        "sides": [],
    }
    log("")
    for side in sides:
        wall, cpu = median([r.wall for r in side.runs]), median([r.cpu for r in side.runs])
        result["sides"].append(
            {
                "key": side.key,
                "label": side.label,
                "wall": wall,
                "cpu": cpu,
                "walls": [r.wall for r in side.runs],
                "epochs": side.epochs(),
            }
        )
        runs = ", ".join(f"{r.wall:.1f}" for r in side.runs)
        log(
            f"  ({side.key}) {side.label:36} median {wall:6.1f} s wall ({runs}), "
            f"{cpu:6.1f} s CPU, {side.epochs():.0f} epochs"
        )
    ratios = {}
    for anchor in (b, c):
        wall = median([r.wall for r in a.runs]) / median([r.wall for r in anchor.runs])
        cpu = median([r.cpu for r in a.runs]) / median([r.cpu for r in anchor.runs])
        per_epoch = wall * anchor.epochs() / a.epochs()
        ratios[anchor.key] = (wall, cpu, per_epoch)
        log(
            f"  hpsearch / ({anchor.key}): {wall:.2f} wall, {cpu:.2f} CPU, "
            f"{per_epoch:.2f} wall per epoch trained"
            f"   goal <= {GOAL_TIME:.2f} wall: {verdict(wall <= GOAL_TIME)}"
        )
    result["ratios"] = ratios
    log(f"  same work: {same['summary']}")
    return result


def check_same_work(sides: Sequence[Side]) -> dict[str, Any]:
    """Parameter counts and epochs per trial of every run; best val_loss of the first round.

    The sides build the same models from the same initial weights; (a) shuffles the batches
    with tf.data from the trial's seed and the anchors with NumPy, so a trial's best val_loss
    differs between sides within training noise, and the means over the trials agree (a
    standard error tells how far is noise). Different epochs per trial mean the work
    differed (the epoch counts then tell how much each side did)."""
    counts = {s.key: {r["param_count"] for r in s.records} for s in sides}
    epochs = {s.key: {tuple(r["epochs_run"]) for r in s.records} for s in sides}
    totals = {k: sorted({sum(v) for v in runs}) for k, runs in epochs.items()}
    firsts = {s.key: s.records[0] for s in sides}
    means = {k: statistics.fmean(r["values"]) for k, r in firsts.items()}
    errors = {
        k: statistics.stdev(r["values"]) / len(r["values"]) ** 0.5 if len(r["values"]) > 1 else 0.0
        for k, r in firsts.items()
    }
    same_counts = len(set().union(*counts.values())) == 1
    same_epochs = len(set().union(*epochs.values())) == 1
    summary = (
        f"parameters {'/'.join(','.join(f'{n:,}' for n in v) for v in counts.values())}"
        f" ({'equal' if same_counts else 'DIFFERENT'}); epochs trained "
        f"{'/'.join(','.join(map(str, v)) for v in totals.values())} (a/b/c, every run; "
        f"per trial {'identical' if same_epochs else 'DIFFERENT'}); mean best val_loss of the "
        "first round: "
        + ", ".join(f"({k}) {means[k]:.4f} ± {errors[k]:.4f}" for k in means)
        + " (± one standard error)"
    )
    if not same_epochs:
        summary += "; epochs per trial: " + "; ".join(
            f"({k}) {' or '.join(str(list(v)) for v in sorted(runs))}" for k, runs in epochs.items()
        )
    return {
        "counts": counts,
        "totals": totals,
        "same_counts": same_counts,
        "same_epochs": same_epochs,
        "means": means,
        "errors": errors,
        "summary": summary,
    }


# --- 2. --workers 2 against --workers 1 ---------------------------------------------------


def compare_workers(args: argparse.Namespace) -> dict[str, Any]:
    n, e, p = args.workers_trials, args.epochs, args.patience
    log(
        f"\n2. --workers 2 vs. --workers 1: {n} trials, up to {e} epochs, "
        f"{args.rounds} round(s), not pinned"
    )
    throughput: dict[int, list[float]] = {1: [], 2: []}
    steady: dict[int, list[float]] = {1: [], 2: []}
    walls: dict[int, list[float]] = {1: [], 2: []}
    pids: dict[int, int] = {}
    for r in range(args.rounds):
        for workers in (1, 2):
            with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as name:
                db = Path(name) / "bench.db"
                cmd = hpsearch_command(db, trials=n, epochs=e, patience=p, workers=workers)
                run = timed(cmd)
                trials = load_trials(db)
            done = sum(t.state.name in FINISHED for t in trials)
            if done < n:
                raise BenchError(f"--workers {workers} finished {done} trials, not {n}")
            pids[workers] = len({worker_key(t) for t in trials})
            throughput[workers].append(done / run.wall)
            steady[workers].append(in_search_rate(trials))
            walls[workers].append(run.wall)
            log(
                f"  round {r + 1} --workers {workers}: {run.wall:6.1f} s for {done} trials "
                f"({60 * done / run.wall:.1f} trials/min; {60 * steady[workers][-1]:.1f} from "
                f"the first trial's start on; {pids[workers]} worker process(es))"
            )
    ratio = median(throughput[2]) / median(throughput[1])
    steady_ratio = median(steady[2]) / median(steady[1])
    load = os.getloadavg()[0]
    log(
        f"  throughput --workers 2 / --workers 1 while the search runs: {steady_ratio:.2f}   "
        f"goal >= {GOAL_WORKERS:.1f}: {verdict(steady_ratio >= GOAL_WORKERS)}   "
        f"(load average now {load:.1f} on {os.cpu_count()} cores)"
    )
    log(f"  whole commands, start-up included: {ratio:.2f}")
    return {
        "n": n,
        "rounds": args.rounds,
        "ratio": ratio,
        "steady_ratio": steady_ratio,
        "steady_per_min": {w: 60 * median(v) for w, v in steady.items()},
        "walls": walls,
        "per_min": {w: 60 * median(v) for w, v in throughput.items()},
        "pids": pids,
    }


def in_search_rate(trials: Sequence[Any]) -> float:
    """Finished trials per second from the first trial's start to the last one's end: the
    throughput without the start-up (imports, loading the data) and the shut-down."""
    done = [t for t in trials if t.state.name in FINISHED and t.datetime_complete]
    starts = [t.datetime_start for t in trials if t.datetime_start]
    if not done or not starts:
        return float("nan")
    span = (max(t.datetime_complete for t in done) - min(starts)).total_seconds()
    return len(done) / span if span > 0 else float("nan")


def worker_key(trial: Any) -> tuple[Any, ...]:
    worker = trial.user_attrs.get("worker") or {}
    return (worker.get("host"), worker.get("pid"), worker.get("started"))


# --- 3. resident memory with and without recycling ----------------------------------------


def compare_memory(args: argparse.Namespace) -> dict[str, Any]:
    n, e = args.rss_trials, args.rss_epochs
    marks = sorted({1, *(max(1, round(n * q / 4)) for q in (1, 2, 3, 4))})
    log(f"\n3. RSS per worker over {n} trials of {e} epochs, --workers 1 (MiB after trial k)")
    runs = []
    for label, extra in (
        ("no recycling", ["--recycle-after", "0", "--max-worker-memory", "0"]),
        (f"--recycle-after {args.recycle_after}", ["--recycle-after", str(args.recycle_after)]),
    ):
        with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as name:
            db = Path(name) / "bench.db"
            cmd = hpsearch_command(
                db, trials=n, epochs=e, patience=args.patience, workers=1, extra=extra
            )
            run = timed(cmd)
            trials = load_trials(db)
        rss = {t.number + 1: t.user_attrs.get("rss_mib") for t in trials}
        known = [v for v in rss.values() if isinstance(v, int | float)]
        if not known:
            raise BenchError(f"{label}: no trial stores `rss_mib`")
        workers = {worker_key(t) for t in trials}
        slots = {(t.user_attrs.get("worker") or {}).get("slot") for t in trials}
        entry: dict[str, Any] = {
            "label": label,
            "at": {k: rss.get(k) for k in marks},
            "max": max(known),
            "pids": len(workers),
            "slots": sorted(s for s in slots if s is not None),
            "wall": run.wall,
            "trials": len(trials),
        }
        runs.append(entry)
        at = "  ".join(f"{k}: {fmt_mib(v)}" for k, v in entry["at"].items())
        log(
            f"  {label:22} {at}  max {entry['max']:.0f}  worker pids {entry['pids']}"
            f"  slots {entry['slots'] or 'not stored'}  ({run.wall:.0f} s)"
        )
    return {"n": n, "e": e, "marks": marks, "runs": runs}


# --- 5. memory of a large data set ------------------------------------------------------

GOAL_DATA = 2.0  # peak RSS above the imports, per byte of the arrays kept: at most
_PEAK = """
import json, resource, sys
import numpy, sklearn.model_selection, sklearn.preprocessing
import search._data
held = 0
if sys.argv[1] == "load":
    data = search._data.load_dataset("cifar10")
    held = sum(a.nbytes for a in (data.x_train, data.x_val, data.x_test))
print(json.dumps({"peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "held": held / 2**20}))
"""


def measure_data_memory(args: argparse.Namespace) -> dict[str, Any]:
    import pickle

    import numpy as np

    log("\n5. memory of loading cifar10 (full size, 60,000 images) from the Keras cache")
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as home:
        folder = Path(home) / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        rng = np.random.default_rng(0)
        for name in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"):
            batch = {
                b"data": rng.integers(0, 256, size=(10_000, 3072), dtype=np.uint8),
                b"labels": (np.arange(10_000) % 10).tolist(),
            }
            (folder / name).write_bytes(pickle.dumps(batch, protocol=4))
        env = {**os.environ, "KERAS_HOME": home}
        out = {}
        for what in ("base", "load"):
            proc = subprocess.run(
                [sys.executable, "-c", _PEAK, what], cwd=ROOT, env=env, capture_output=True,
                text=True, check=False,
            )  # fmt: skip
            if proc.returncode != 0:
                raise BenchError(f"loading cifar10 failed: {proc.stderr.strip()[-300:]}")
            out[what] = json.loads(proc.stdout)
    held, peak, base = out["load"]["held"], out["load"]["peak"], out["base"]["peak"]
    ratio = (peak - base) / held
    log(f"  arrays kept {held:.0f} MiB; peak {peak:.0f} MiB (imports only {base:.0f}); "
        f"{ratio:.2f}x")  # fmt: skip
    return {"held": held, "peak": peak, "base": base, "ratio": ratio}


# --- 6. the report at scale ------------------------------------------------------------

GOAL_REPORT_S = 3.0
GOAL_REPORT_MB = 2.0
GOAL_REPORT_MIB = 400.0
GOAL_LIST_S = 1.0
GOAL_HELP_S = 0.15


def peak_timed(command: Sequence[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, stdout) of one whole process (``os.wait4``: the
    kernel's maximum RSS of that process)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise BenchError(
                f"`{shlex.join(command)}` exited with {proc.returncode}: {err.read()[-300:]}"
            )
        return wall, usage.ru_maxrss / 1024, out.read()


def measure_report_scale(args: argparse.Namespace) -> dict[str, Any]:
    """Part 6: the report, trials and studies on a large study, next to Optuna's own plots
    of the same study (``benchmarks/anchor_visualization.py``); see the module docstring."""
    spec_path = ROOT / "benchmarks" / "big_study.py"
    log(f"\n6. the report on a study of {args.report_trials:,} trials of 20 epochs")
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as folder:
        url = f"sqlite:///{folder}/big.db"
        made = subprocess.run(
            [sys.executable, str(spec_path), url, "--trials", str(args.report_trials)],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if made.returncode != 0:
            raise BenchError(f"making the study failed: {made.stderr[-300:]}")
        env = {**os.environ, "HPSEARCH_STORAGE": url}
        page = Path(folder) / "report.html"
        commands = {
            "report": [str(BIN / "hpsearch"), "report", "big", "-o", str(page)],
            "optuna.visualization": [
                sys.executable, str(ROOT / "benchmarks" / "anchor_visualization.py"), url,
                "big", f"{folder}/plots",
            ],
            "trials --top 5": [str(BIN / "hpsearch"), "trials", "big", "--top", "5"],
            "studies": [str(BIN / "hpsearch"), "studies"],
            "--help": [str(BIN / "hpsearch"), "--help"],
        }  # fmt: skip
        peak_timed(commands["--help"], env)  # untimed: the page cache
        runs: dict[str, list[tuple[float, float]]] = {key: [] for key in commands}
        for round_ in range(args.rounds):
            for key, command in commands.items():
                wall, rss, _ = peak_timed(command, env)
                runs[key].append((wall, rss))
            log(f"  round {round_ + 1}: " + ", ".join(
                f"{k} {v[-1][0]:.2f} s" for k, v in runs.items()
            ))  # fmt: skip
        size = page.stat().st_size / 1e6
    table = {
        key: {
            "wall": median([w for w, _ in values]),
            "walls": [w for w, _ in values],
            "rss": max(r for _, r in values),
        }
        for key, values in runs.items()
    }
    return {"trials": args.report_trials, "table": table, "html_mb": size}


# --- 4. time to a target ---------------------------------------------------------------


@dataclass
class TargetRun:
    """One search of part 4: after each ended trial (in the order they ended), the time since
    the first trial started, the epochs trained so far and the best value so far."""

    contender: str
    data: str
    seed: int
    steps: list[tuple[float, int, float]]
    # The finished trials of a search through hpsearch, in order, for the pruner replay.
    curves: list[Curve] = field(default_factory=list)

    def best(self) -> float:
        return self.steps[-1][2] if self.steps else float("inf")

    def reach(self, target: float) -> tuple[float, float]:
        return reach(self.steps, target)


def reach(steps: Sequence[tuple[float, int, float]], target: float) -> tuple[float, float]:
    """(time, epochs) when the best value first reached ``target``; infinite when it never
    did within the budget (a run that stops short without reaching it is not faster, it
    failed)."""
    for seconds, epochs, best in steps:
        if best <= target:
            return seconds, float(epochs)
    return math.inf, math.inf


@dataclass(frozen=True)
class Curve:
    """One trial of an unpruned search: its objective after each epoch, how long it trained
    and its weight count."""

    values: tuple[float, ...]
    seconds: float
    weights: int


def trial_curves(trials: Sequence[Any], until: float | None = None) -> list[Curve]:
    """The curves of a study's complete trials (``optuna.FrozenTrial``), by number; with
    ``until``, of those that ended within that many seconds of the first trial's start."""
    starts = [t.datetime_start for t in trials if t.datetime_start]
    if until is not None and starts:
        first = min(starts)
        trials = [
            t
            for t in trials
            if t.datetime_complete and (t.datetime_complete - first).total_seconds() <= until
        ]
    return [
        Curve(
            values=tuple(t.intermediate_values[k] for k in sorted(t.intermediate_values)),
            seconds=float(t.user_attrs.get("duration_s") or 0.0),
            weights=int(t.user_attrs.get("param_count") or 0),
        )
        for t in sorted(trials, key=lambda t: t.number)
        if t.state.name == "COMPLETE" and t.intermediate_values
    ]


def target_steps(trials: Sequence[Any]) -> list[tuple[float, int, float]]:
    """The steps of a study's trials (``optuna.FrozenTrial``)."""
    starts = [t.datetime_start for t in trials if t.datetime_start]
    if not starts:
        return []
    first = min(starts)
    return ended_steps(
        (
            (t.datetime_complete - first).total_seconds(),
            t.number,
            t.state.name,
            t.value,
            int(t.user_attrs.get("epochs_run") or 0),
        )
        for t in trials
        if t.datetime_complete
    )


def ended_steps(
    trials: Iterable[tuple[float, int, str, float | None, int]],
) -> list[tuple[float, int, float]]:
    """Steps from (end in seconds since the first start, number, state, value, epochs run)
    per trial, in the order the trials ended."""
    steps = []
    best = float("inf")
    epochs = 0
    for end, _, state, value, ran in sorted(t for t in trials if t[2] in (*FINISHED, "FAIL")):
        epochs += ran
        if state == "COMPLETE" and value is not None and math.isfinite(value):
            best = min(best, float(value))
        steps.append((end, epochs, best))
    return steps


def compare_on_large_data(args: argparse.Namespace) -> dict[str, Any]:
    """Part 7: part 4's default against unpruned TPE (both through hpsearch) on generated
    data large enough that epochs, not the per-trial cost, take most of a trial's time."""
    import numpy as np
    from sklearn.datasets import make_classification

    samples, features, classes = LARGE_SHAPE
    x, y = make_classification(
        n_samples=samples,
        n_features=features,
        n_informative=20,
        n_redundant=10,
        n_classes=classes,
        flip_y=0.02,
        random_state=0,
    )
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as name:
        path = Path(name) / "classification.npz"
        np.savez(path, x_train=x.astype(np.float32), y_train=y.astype(np.int64))
        return compare_time_to_target(
            args,
            title="7. time to a target where epochs dominate",
            data_sets={"classification": str(path)},
            contenders=[c for c in CONTENDERS if c[0] in ("default", "tpe")],
            n=args.large_trials,
            e=args.large_epochs,
            p=args.patience,
        )


def search_options(data: str, seed: int, trials: int, e: int, p: int) -> list[str]:
    """The options a search of parts 4, 7 and 8 shares with every other, hpsearch or not."""
    return [
        "--data", data, "--space", "mlp", "--trials", str(trials),
        "--epochs", str(e), "--patience", str(p), "--seed", str(seed),
    ]  # fmt: skip


def run_search(
    core: int, common: Sequence[str], db: Path, seconds: float | None, options: Sequence[str]
) -> Run:
    """``hpsearch run`` pinned to ``core``, into the SQLite file ``db``."""
    # hpsearch's timeout runs from before its worker starts (imports TensorFlow).
    limit = [] if seconds is None else ["--timeout", f"{seconds + 15:g}"]
    return timed([
        "taskset", "-c", str(core), str(BIN / "hpsearch"), "run", *common,
        "--storage", f"sqlite:///{db}", "--study", STUDY, "--quiet", "--no-report",
        *limit, *options,
    ])  # fmt: skip


def compare_time_to_target(
    args: argparse.Namespace,
    *,
    title: str = "4. time to a target",
    data_sets: dict[str, str] | None = None,
    contenders: Sequence[tuple[str, str, tuple[str, ...]]] = CONTENDERS,
    n: int = 0,
    e: int = 0,
    p: int = 0,
) -> dict[str, Any]:
    """Part 4 (and 7, with its own data sets, contenders and budget): each contender's
    searches, the tables of their times to the target, the default against each unpruned
    TPE and the pruners replayed on unpruned TPE's trials. ``data_sets`` maps a name to what
    ``--data`` gets. The budget of a search: ``n`` finished trials if given (part 7), else
    ``args.target_seconds`` of wall time from its first trial's start (part 4)."""
    seconds = None if n else float(args.target_seconds)
    e, p = e or args.target_epochs, p or args.target_patience
    sources = data_sets or {name: name for name in TARGET_DATA}
    keys = [key for key, _, _ in contenders]
    references = [ref for ref in REFERENCES if ref in keys]
    jobs = max(1, args.jobs)
    seeds = list(range(args.target_seeds))
    budget = f"{n} trials" if seconds is None else f"{seconds:.0f} s"
    log(
        f"\n{title}: space mlp, {budget} per search, up to {e} epochs a trial, patience {p}, "
        f"seeds {', '.join(map(str, seeds))}, "
        + ("pinned to core 0" if jobs == 1 else f"{jobs} at a time, each pinned to a core")
    )
    cores: queue.Queue[int] = queue.Queue()
    for core in range(jobs):
        cores.put(core)

    def search(data: str, seed: int, key: str, options: tuple[str, ...]) -> TargetRun:
        kept = None
        if args.runs_dir is not None:
            name = f"target-{data}-{seed}-{key}-{budget.replace(' ', '')}-{e}-{p}.pickle"
            kept = args.runs_dir / name
            if kept.exists():
                result: TargetRun = pickle.loads(kept.read_bytes())
                log(f"  {data:13} seed {seed} {key:13} best {result.best():.4f} (kept: {kept})")
                return result
        common = search_options(sources[data], seed, n or UNLIMITED_TRIALS, e, p)
        curves: list[Curve] = []
        core = cores.get()
        pin = ["taskset", "-c", str(core)]
        try:
            if key == BY_HAND:
                script = [sys.executable, "benchmarks/anchor_optuna_search.py"]
                # study.optimize's timeout runs from the first trial's start.
                limit = [] if seconds is None else ["--timeout", f"{seconds + 1:g}"]
                run = timed([*pin, *script, *common, *limit])
                trials = json.loads(run.stdout.strip().splitlines()[-1])["trials"]
                steps = ended_steps(
                    (t["end"], t["number"], t["state"], t["value"], t["epochs_run"]) for t in trials
                )
                # study.optimize(n_trials=n) counts a failed trial (a NaN loss) among the n,
                # as a script written by hand does; hpsearch trains n finished trials.
                done = len(trials)
            else:
                with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as name:
                    db = Path(name) / "bench.db"
                    run = run_search(core, common, db, seconds, options)
                    stored = load_trials(db)
                steps = target_steps(stored)
                curves = trial_curves(stored, until=seconds)
                done = sum(t.state.name in FINISHED for t in stored)
        finally:
            cores.put(core)
        if seconds is None and done < n:
            raise BenchError(f"{key} on {data} ended {done} trials, not {n}")
        if seconds is not None:
            if not steps or steps[-1][0] < seconds:
                raise BenchError(f"{key} on {data} stopped before its budget of {seconds:.0f} s")
            # Only what ended within the budget counts, the same for every contender.
            steps = [step for step in steps if step[0] <= seconds]
        result = TargetRun(key, data, seed, steps, curves)
        if kept is not None:
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_bytes(pickle.dumps(result))
        log(
            f"  {data:13} seed {seed} {key:13} best {result.best():.4f} after "
            f"{steps[-1][1]} epochs ({run.wall:.0f} s, core {core})"
        )
        return result

    order = [
        (data, seed, key, options)
        for data in sources
        for seed in seeds
        for key, _, options in contenders
    ]
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = list(pool.map(lambda job: search(*job), order))
    tables: dict[str, Any] = {}
    for data in sources:
        mine = [r for r in runs if r.data == data]
        target = min(r.best() for r in mine) * TARGET_SLACK
        rows: dict[str, dict[str, Any]] = {}
        for key, label, _ in contenders:
            theirs = [r for r in mine if r.contender == key]
            reached = [r.reach(target) for r in theirs]
            rows[key] = {
                "label": label,
                "time": median([t for t, _ in reached]),
                "epochs": median([ep for _, ep in reached]),
                "missed": sum(math.isinf(t) for t, _ in reached),
                "best": median([r.best() for r in theirs]),
                "times": [t for t, _ in reached],
                "spent": median([r.steps[-1][0] for r in theirs]),
                "spent_epochs": median([float(r.steps[-1][1]) for r in theirs]),
            }
        versus = {ref: _versus(mine, rows, ref) for ref in references}
        tables[data] = {"target": target, "rows": rows, "versus": versus}
        unpruned = [r for r in mine if r.contender == "tpe"]
        replayed = tables[data]["replay"] = replay_pruners(unpruned, e)
        if replayed["runs"]:
            log(
                f"    pruners replayed on tpe's trials (median {replayed['trials']:.0f} trials, "
                f"fixed cost {replayed['fixed']:.2f} s a trial):"
            )
            for name, row in replayed["rows"].items():
                log(
                    f"      {name:18} time {row['time']:.2f}  epochs {row['epochs']:.2f}  best "
                    f"kept {row['kept']}/{replayed['runs']}  best {row['best']:.2f}x  to the "
                    f"unpruned best {_never(row['to_best'])} ("
                    + ", ".join(_never(x) for x in row["to_bests"])
                    + ")"
                )
        log(f"  {data}: target val_loss <= {target:.4f}")
        for key, row in rows.items():
            log(
                f"    {key:13} to target {_secs(row['time'])} {_count(row['epochs'])} epochs  "
                f"missed {row['missed']}/{len(seeds)}  best {row['best']:.4f}  "
                f"spent {row['spent']:.1f} s {row['spent_epochs']:.0f} epochs"
            )
        for ref, v in versus.items():
            log(
                f"    default / {ref}: at the target {_ratio(v['ratio'])}; at {ref}'s median "
                f"best ({v['level']:.4f}) {_ratio(v['level_ratio'])} (goal <= "
                f"{GOAL_TARGET:.1f}: {_target_verdict(v['level_ratio'])}); times to it: "
                + ", ".join(f"{k} {_secs(t)}" for k, t in v["to_level"].items())
                + (
                    ""
                    if v["ahead"] is None
                    else f"; ahead of the KerasTuner oracles there: {verdict(v['ahead'])}"
                )
            )
    return {
        "n": n, "seconds": seconds, "e": e, "p": p, "jobs": jobs, "seeds": seeds,
        "tables": tables,
    }  # fmt: skip


def _versus(runs: Sequence[TargetRun], rows: dict[str, dict[str, Any]], ref: str) -> dict[str, Any]:
    """The default against the unpruned search ``ref``: the ratio of their median times to
    the target, and to ``ref``'s own level (the median of its runs' best values, a level most
    of its runs reach), with every contender's median time to that level."""
    ratio = _over(rows["default"]["time"], rows[ref]["time"])
    # The higher middle value of an even count: most of its runs reach it (the mean of the
    # middle two would be reached by half only, and the median time to it be never).
    level = statistics.median_high([r.best() for r in runs if r.contender == ref])
    to_level = {
        key: median([r.reach(level)[0] for r in runs if r.contender == key]) for key in rows
    }
    oracles = [t for k, t in to_level.items() if k.startswith("kt-")]
    ahead = all(to_level["default"] < t for t in oracles) if oracles else None
    return {
        "ratio": ratio, "level": level, "to_level": to_level, "ahead": ahead,
        "level_ratio": _over(to_level["default"], to_level[ref]),
    }  # fmt: skip


def fixed_cost(curves: Sequence[Curve]) -> float:
    """The part of a trial's time that does not grow with its epochs (building the model,
    tracing its steps, its records), by least squares over a run's trials: seconds = fixed +
    epochs x (a + b x weights)."""
    import numpy as np

    epochs = np.array([len(c.values) for c in curves], dtype=float)
    weights = np.array([c.weights for c in curves], dtype=float) / 1e5
    seconds = np.array([c.seconds for c in curves], dtype=float)
    design = np.column_stack([np.ones_like(epochs), epochs, epochs * weights])
    coefficients, *_ = np.linalg.lstsq(design, seconds, rcond=None)
    return float(max(coefficients[0], 0.0))


def replay(curves: Sequence[Curve], pruner: Any, fixed: float) -> list[tuple[float, int, float]]:
    """The steps of the same trials in the same order, each cut where ``pruner`` would have
    cut it, told to an Optuna study as hpsearch tells it (the objective after each epoch; a
    cut trial pruned, the others complete with their best value). A trial cut after k of
    its n epochs costs fixed + (seconds - fixed) x k / n."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Named: Optuna's Hyperband pruner puts a trial in a bracket by hashing the study's name
    # with the trial's number, so an unnamed study (a random name) would replay differently.
    study = optuna.create_study(
        study_name="replay", pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0)
    )
    clock = 0.0
    ended = []
    for number, curve in enumerate(curves):
        trial = study.ask()
        ran, state = len(curve.values), "COMPLETE"
        for step, value in enumerate(curve.values):
            trial.report(value, step)
            if trial.should_prune():
                ran, state = step + 1, "PRUNED"
                break
        value = min(curve.values)
        if state == "PRUNED":
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
        clock += fixed + max(curve.seconds - fixed, 0.0) * ran / len(curve.values)
        ended.append((clock, number, state, value, ran))
    return ended_steps(ended)


def replayed(
    curves: Sequence[Sequence[Curve]],
    fixed: Sequence[float],
    unpruned: Sequence[Sequence[tuple[float, int, float]]],
    pruner: Callable[[], Any],
) -> dict[str, Any]:
    """A pruner (``pruner()`` makes a fresh one) replayed on the trials of each run, against
    the same run unpruned (``unpruned``, its replay without a pruner): the medians of the
    time and epochs the run would have taken, of its best value over the unpruned best and
    of its time to the unpruned best (infinite where the pruner cut the best trial), and how
    many runs kept their best trial."""
    time_, spent, kept, best, to_best = [], [], [], [], []
    for run, f, whole in zip(curves, fixed, unpruned, strict=True):
        steps = replay(run, pruner(), f)
        level = whole[-1][2]
        time_.append(steps[-1][0] / whole[-1][0])
        spent.append(steps[-1][1] / whole[-1][1])
        kept.append(steps[-1][2] <= level)
        best.append(steps[-1][2] / level)
        to_best.append(reach(steps, level)[0] / reach(whole, level)[0])
    return {
        "time": median(time_), "epochs": median(spent), "kept": sum(kept),
        "best": median(best), "to_best": median(to_best), "to_bests": to_best,
    }  # fmt: skip


def replay_pruners(runs: Sequence[TargetRun], epochs: int) -> dict[str, Any]:
    """hpsearch's pruners replayed on the trials of unpruned runs: per pruner, the medians
    over the runs of the time and epochs the whole run would have taken, of its best value
    against the unpruned best, and of the time to reach the unpruned best (a run whose best
    trial the pruner cuts never reaches it)."""
    import optuna

    from search.engines._optuna import make_pruner
    from search.engines._registry import ENGINES

    curves = [r.curves for r in runs if r.curves]
    if not curves:
        return {"runs": 0, "trials": 0.0, "fixed": math.nan, "default": "", "rows": {}}
    fixed = [fixed_cost(c) for c in curves]
    unpruned = [
        replay(c, optuna.pruners.NopPruner(), f) for c, f in zip(curves, fixed, strict=True)
    ]
    pruners = ENGINES["optuna"].options["pruner"]  # the first is the default
    rows = {
        name: replayed(curves, fixed, unpruned, functools.partial(make_pruner, name, epochs))
        for name in pruners
        if name != "none"
    }
    return {
        "runs": len(curves),
        "trials": median([float(len(c)) for c in curves]),
        "fixed": median(fixed),
        "default": pruners[0],
        "rows": rows,
    }


# --- 8. choosing the default pruner -----------------------------------------------------

# (percentile, complete trials before it judges, epochs before it judges) of the percentile
# pruners replayed in part 8; 50 is the median. hpsearch's own pruners are replayed too.
PRUNER_CANDIDATES: tuple[tuple[float, int, int], ...] = (
    (50.0, 10, 4), (50.0, 5, 6), (50.0, 3, 2),
    (55.0, 3, 2), (60.0, 3, 1), (60.0, 3, 3), (60.0, 5, 2), (60.0, 2, 2),
    (65.0, 3, 2), (70.0, 3, 2), (75.0, 3, 2),
)  # fmt: skip


def _percentile_label(pruner: Any) -> str:
    """A percentile pruner's settings as part 8 names them."""
    p, trials, epochs = pruner._percentile, pruner._n_startup_trials, pruner._n_warmup_steps
    name = "median" if p == 50.0 else f"percentile {p:g}"
    return f"{name}, after {trials} complete trials, from epoch {epochs + 1}"


def choose_pruner(args: argparse.Namespace) -> dict[str, Any]:
    """Part 8: unpruned TPE searches through hpsearch, as part 4 runs them, on ``args.
    pruner_seeds`` seeds; hpsearch's pruners and other settings of a percentile pruner
    replayed on their trials (part 4's replay). The first half of the seeds is where a
    setting is chosen, the second half checks it. With ``--runs-dir`` the searches'
    databases are kept there and a search whose database is there is not run again."""
    import optuna

    from search.engines._optuna import make_pruner
    from search.engines._registry import ENGINES

    seconds, e, p = float(args.target_seconds), args.target_epochs, args.target_patience
    seeds = list(range(args.pruner_seeds))
    keep = args.runs_dir
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    log(
        f"\n8. choosing the default pruner: unpruned TPE, {seconds:.0f} s per search, seeds "
        f"0-{seeds[-1]}, up to {e} epochs, patience {p}, {max(1, args.jobs)} at a time"
    )
    cores: queue.Queue[int] = queue.Queue()
    for core in range(max(1, args.jobs)):
        cores.put(core)

    def search(data: str, seed: int) -> list[Curve]:
        with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as name:
            db = (keep or Path(name)) / f"{data}-{seed}.db"
            if not db.exists():
                core = cores.get()
                try:
                    common = search_options(data, seed, UNLIMITED_TRIALS, e, p)
                    run_search(core, common, db, seconds, ("--sampler", "tpe", "--pruner", "none"))
                finally:
                    cores.put(core)
            stored = load_trials(db)
        steps = target_steps(stored)
        if not steps or steps[-1][0] < seconds:
            raise BenchError(
                f"{db} holds a search that stopped before its budget of {seconds:.0f} s: "
                "delete it and run again"
            )
        curves = trial_curves(stored, until=seconds)
        log(f"  {data:13} seed {seed:2}: {len(curves)} trials")
        return curves

    order = [(data, seed) for seed in seeds for data in TARGET_DATA]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        runs = dict(zip(order, pool.map(lambda job: search(*job), order), strict=True))
    # hpsearch's pruners by name (the first is the default), then the other settings.
    names = [name for name in ENGINES["optuna"].options["pruner"] if name != "none"]
    pruners: dict[str, Callable[[], Any]] = {}
    for name in names:
        built = make_pruner(name, e)
        settings = (
            _percentile_label(built) + ", "
            if isinstance(built, optuna.pruners.PercentilePruner)
            else ""
        )
        default = ", the default" if name == names[0] else ""
        pruners[f"{settings}`--pruner {name}`{default}"] = functools.partial(make_pruner, name, e)
    for percentile, trials, epochs in PRUNER_CANDIDATES:
        settings = (percentile, trials, min(epochs, e - 1))
        label = _percentile_label(optuna.pruners.PercentilePruner(*settings))
        if not any(key.startswith(label + ",") for key in pruners):
            pruners[label] = functools.partial(optuna.pruners.PercentilePruner, *settings)
    half = (len(seeds) + 1) // 2
    tables: dict[str, Any] = {}
    for data in TARGET_DATA:
        curves = [runs[(data, seed)] for seed in seeds]
        fixed = [fixed_cost(c) for c in curves]
        whole = [
            replay(c, optuna.pruners.NopPruner(), f) for c, f in zip(curves, fixed, strict=True)
        ]
        rows = {
            label: {
                "choose": replayed(curves[:half], fixed[:half], whole[:half], build),
                "check": replayed(curves[half:], fixed[half:], whole[half:], build),
            }
            for label, build in pruners.items()
        }
        tables[data] = {"trials": median([float(len(c)) for c in curves]), "rows": rows}
        log(f"  {data}: median {tables[data]['trials']:.0f} trials a search")
        for label, row in rows.items():
            log(
                f"    {label:70} "
                + "  ".join(
                    f"{side}: time {row[side]['time']:.2f} kept {row[side]['kept']} to best "
                    f"{_never(row[side]['to_best'])}"
                    for side in ("choose", "check")
                )
            )
    return {"seconds": seconds, "e": e, "p": p, "seeds": len(seeds), "half": half,
            "jobs": max(1, args.jobs), "tables": tables}  # fmt: skip


def _over(a: float, b: float) -> float:
    return a / b if math.isfinite(a + b) else math.nan


def _secs(value: float) -> str:
    return f"{value:.1f} s" if math.isfinite(value) else "not reached"


def _count(value: float) -> str:
    return f"{value:.0f}" if math.isfinite(value) else "-"


def _ratio(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "n/a"


def _never(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "never"


def _target_verdict(ratio: float) -> str:
    if not math.isfinite(ratio):
        return "not measurable (a median run did not reach the target within the budget)"
    return verdict(ratio <= GOAL_TARGET)


def fmt_mib(value: Any) -> str:
    return f"{value:.0f}" if isinstance(value, int | float) else "-"


def code_fingerprint() -> str:
    """A hash of hpsearch's sources: the tree may be edited while a benchmark runs."""
    digest = hashlib.sha256()
    for path in sorted((*ROOT.glob("search/**/*.py"), *ROOT.glob("spaces/**/*.py"))):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# --- the machine and the report -----------------------------------------------------------


def machine() -> dict[str, str]:
    def first(path: str, key: str) -> str:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "unknown"

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    mem_kib = first("/proc/meminfo", "MemTotal").split()[0]
    memory = f"{int(mem_kib) / 2**20:.1f} GiB" if mem_kib.isdigit() else "unknown"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},  # read only: never touch the index
    ).stdout.strip()
    return {
        "Date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": first("/proc/cpuinfo", "model name"),
        "Cores": f"{os.cpu_count()} (load average at start {os.getloadavg()[0]:.1f})",
        "Memory": memory,
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "TensorFlow": version("tensorflow"),
        "Keras": version("keras"),
        "Optuna": version("optuna"),
        "KerasTuner": version("keras-tuner"),
        "hpsearch": f"{version('hpsearch')} (commit {commit or '?'}"
        + (", with uncommitted changes)" if dirty else ")"),
    }


def write_report(
    path: Path, args: argparse.Namespace, info: dict[str, str], results: dict[str, Any]
) -> None:
    lines = [
        "# Benchmarks",
        "",
        "The latest `make bench` (`benchmarks/run.py`; what it compares and why it is fair is in",
        "its docstring). Ratios are measured in one run on one machine; absolute times are not",
        "comparable across machines.",
        "",
        "| machine | |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in info.items()),
        f"| Load average at end | {os.getloadavg()[0]:.1f} |",
        *([f"| Warning | {results['changed']} |"] if results.get("changed") else []),
        "",
        f"Command: `{shlex.join(['.venv/bin/python', 'benchmarks/run.py', *sys.argv[1:]])}`",
    ]
    if "anchors" in results:
        lines += _anchor_lines(results["anchors"], "## 1. hpsearch vs. hand-written anchors")
    if "workers" in results:
        r = results["workers"]
        lines += [
            "",
            "## 2. `--workers 2` vs. `--workers 1`",
            "",
            f"{r['n']} trials of `benchmarks/fixed.yaml`, not pinned, alternated for {r['rounds']} "
            "round(s); medians. Throughput while the search runs: finished trials per second "
            "from the first trial's start to the last trial's end. Whole command: the same "
            "over the command's wall time, start-up (importing TensorFlow, loading the data) "
            "included.",
            "",
            "| workers | trials/min while the search runs | trials/min, whole command "
            "| wall per run | worker processes |",
            "| ---: | ---: | ---: | --- | ---: |",
        ]
        for w in (1, 2):
            runs = ", ".join(f"{x:.1f} s" for x in r["walls"][w])
            lines.append(
                f"| {w} | {r['steady_per_min'][w]:.1f} | {r['per_min'][w]:.1f} | {runs} "
                f"| {r['pids'][w]} |"
            )
        lines += [
            "",
            f"Throughput ratio while the search runs: **{r['steady_ratio']:.2f}** "
            f"(goal >= {GOAL_WORKERS:.1f}: {verdict(r['steady_ratio'] >= GOAL_WORKERS)}); "
            f"whole commands: {r['ratio']:.2f}.",
        ]
    if "rss" in results:
        r = results["rss"]
        head = " | ".join(f"trial {k}" for k in r["marks"])
        lines += [
            "",
            "## 3. Resident memory per worker (MiB after the trial)",
            "",
            f"{r['n']} trials of {r['e']} epochs, `--workers 1`; `rss_mib` and `worker` read back "
            "with `optuna.load_study`.",
            "",
            f"| run | {head} | max | worker pids | time |",
            "| --- | " + " | ".join("---:" for _ in r["marks"]) + " | ---: | ---: | ---: |",
        ]
        for run in r["runs"]:
            cells = " | ".join(fmt_mib(v) for v in run["at"].values())
            lines.append(
                f"| {run['label']} | {cells} | {run['max']:.0f} | {run['pids']} "
                f"| {run['wall']:.0f} s |"
            )
    if "target" in results:
        r = results["target"]
        lines += [
            "",
            "## 4. Time to a target",
            "",
            f"Space `mlp` (the default), trials of up to {r['e']} epochs, patience {r['p']}"
            + (
                f", {r['n']} trials per search"
                if r.get("seconds") is None
                else f" (hpsearch's defaults), {r['seconds']:.0f} s per search from its first "
                "trial's start (`hpsearch run --timeout`, `study.optimize(timeout=)`; what ends "
                "later is not counted), as many trials as fit: a way of searching whose trials "
                "cost less is not cut off sooner"
            )
            + f"; seeds {_seeds(r)}; one process (`hpsearch run` or "
            "`benchmarks/anchor_optuna_search.py`) per "
            + (
                "search pinned to core 0"
                if r.get("jobs", 1) == 1
                else f"search, {r['jobs']} at a time, each pinned to a core of its own"
            )
            + ", the contenders alternated; medians over the seeds. The "
            f"target: within {100 * (TARGET_SLACK - 1):.0f}% of the best validation loss any "
            "run found on the data set. Time: from the first trial's start to the end of the "
            "trial that first reached it; epochs: all trials' epochs until then. A run that "
            "missed it within its budget counts as never reaching it (a median over runs of "
            "which half or more missed it is 'not reached'); spent: the whole run. Each "
            "unpruned TPE is also a "
            "reference with a level most of its runs reach: the median of its runs' best "
            "values (of an even count, the higher middle one). "
            "Below each table, hpsearch's pruners replayed on the trials of the unpruned TPE "
            "runs through hpsearch: the same trials in the same order, each cut where the "
            "pruner would have cut it (Optuna's pruner told the objective after each epoch, as "
            "hpsearch tells it), so what pruning saves and loses is measured without the "
            "sampler's luck; a trial cut after k of its n epochs costs F + (its time - F) x "
            "k / n, with F, a trial's fixed cost, fitted to the run's trials (least squares).",
        ]
        lines += _target_tables(r)
    if "data" in results:
        r = results["data"]
        lines += [
            "",
            "## 5. Memory of a large data set",
            "",
            "`search.load_dataset('cifar10')` from a full-size Keras cache (50,000 training and "
            "10,000 test images, 32x32x3), in its own process; peak resident memory (the "
            "kernel's maximum RSS), next to a process that only imports the same modules.",
            "",
            "| | MiB |",
            "| --- | ---: |",
            f"| arrays kept (train, validation, test; float32) | {r['held']:.0f} |",
            f"| peak RSS, loading | {r['peak']:.0f} |",
            f"| peak RSS, imports only | {r['base']:.0f} |",
            f"| peak above the imports / arrays kept | {r['ratio']:.2f}x |",
            "",
            f"Goal: at most {GOAL_DATA:.1f}x: {verdict(r['ratio'] <= GOAL_DATA)}.",
        ]
    if "report" in results:
        r = results["report"]
        t = r["table"]
        rows = [
            f"| {key} | {v['wall']:.2f} s | {', '.join(f'{w:.2f}' for w in v['walls'])} | "
            f"{v['rss']:.0f} |"
            for key, v in t.items()
        ]
        report_s = t["report"]["wall"]
        lines += [
            "",
            "## 6. The report at scale",
            "",
            f"A study of {r['trials']:,} finished trials of up to 20 epochs "
            "(`benchmarks/big_study.py`: hpsearch's records written straight into Optuna's "
            "tables; 80% complete, 15% pruned, 5% failed) in SQLite; whole processes, "
            "alternated, medians; peak RSS is the largest of the runs (`os.wait4`: of the "
            "process or of its largest child; the report draws Optuna's plots in a forked "
            "child that shares the parent's pages). The anchor draws the "
            "same plots with `optuna.load_study` and `optuna.visualization.matplotlib` "
            "(history, intermediate values, importances, slice, parallel coordinates).",
            "",
            "| command | wall (median) | runs (s) | peak RSS (MiB) |",
            "| --- | ---: | --- | ---: |",
            *rows,
            "",
            f"Report / Optuna's plots: **{report_s / t['optuna.visualization']['wall']:.2f}**. "
            f"The report's HTML: {r['html_mb']:.2f} MB.",
            "",
            f"Goals: report at most {GOAL_REPORT_S:.0f} s: {verdict(report_s <= GOAL_REPORT_S)}; "
            f"at most {GOAL_REPORT_MB:.0f} MB: {verdict(r['html_mb'] <= GOAL_REPORT_MB)}; "
            f"at most {GOAL_REPORT_MIB:.0f} MiB: "
            f"{verdict(t['report']['rss'] <= GOAL_REPORT_MIB)}; `trials` and `studies` at most "
            f"{GOAL_LIST_S:.0f} s: "
            f"{verdict(max(t['trials --top 5']['wall'], t['studies']['wall']) <= GOAL_LIST_S)}; "
            f"`--help` at most {GOAL_HELP_S} s: {verdict(t['--help']['wall'] <= GOAL_HELP_S)}.",
        ]
    if "large" in results:
        r = results["large"]
        samples, features, classes = LARGE_SHAPE
        lines += [
            "",
            "## 7. Time to a target where epochs dominate",
            "",
            f"Part 4's measure on a larger data set, where an epoch costs more than building "
            f"and tracing a model: {samples:,} samples of {features} features in {classes} "
            "classes from scikit-learn's `make_classification` (20 informative, 10 redundant, "
            "2% of the labels flipped; written by the benchmark as an .npz file), "
            f"80/20 split; space `mlp`, {r['n']} trials of up to {r['e']} epochs, patience "
            f"{r['p']}, seeds {_seeds(r)}, "
            + (
                "pinned to core 0"
                if r.get("jobs", 1) == 1
                else f"{r['jobs']} at a time, each pinned to a core of its own"
            )
            + "; hpsearch's defaults against unpruned TPE through hpsearch (the same "
            "training code: only pruning differs).",
            *_target_tables(r),
        ]
    if "pruners" in results:
        lines += _pruner_tables(results["pruners"])
    if "short" in results:
        lines += _anchor_lines(results["short"], "## 9. A short search, on every core")
    lines = _keep_sections(path, lines, results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _anchor_lines(r: dict[str, Any], heading: str) -> list[str]:
    """Part 1's tables, or part 9's (the same comparison, not pinned)."""
    how = (
        "each pinned to core 0 (`taskset -c 0`)"
        if r.get("pinned", True)
        else "not pinned (every core, as a user runs them)"
    )
    lines = [
        "",
        heading,
        "",
        f"{r['n']} trial(s) of `benchmarks/fixed.yaml` on digits, up to {r['e']} epochs, "
        f"patience {r['p']}; whole processes, {how}, "
        f"alternated a, b, c for {r['rounds']} round(s); medians. "
        f"Same work: {r['same']['summary']}.",
        "",
        "| side | wall (median) | runs (s) | CPU (median) | epochs trained |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for s in r["sides"]:
        runs = ", ".join(f"{w:.1f}" for w in s["walls"])
        lines.append(
            f"| ({s['key']}) {s['label']} | {s['wall']:.1f} s | {runs} "
            f"| {s['cpu']:.1f} s | {s['epochs']:.0f} |"
        )
    lines += [
        "",
        "| ratio | wall | CPU | wall per epoch trained | goal (wall) |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for key, (wall, cpu, per_epoch) in r["ratios"].items():
        lines.append(
            f"| hpsearch / ({key}) | **{wall:.2f}** | {cpu:.2f} | {per_epoch:.2f} "
            f"| <= {GOAL_TIME:.2f}: {verdict(wall <= GOAL_TIME)} |"
        )
    return lines


def _pruner_tables(r: dict[str, Any]) -> list[str]:
    """Part 8's section: per data set, each pruner's replay on the seeds that choose and on
    those that check."""
    lines = [
        "",
        "## 8. Choosing the default pruner",
        "",
        "Unpruned TPE through hpsearch (`--pruner none`), run as part 4 runs it "
        f"({r['seconds']:.0f} s per search, up to {r['e']} epochs, patience {r['p']}, "
        f"{r['jobs']} at a time, each pinned to a core of its own), with seeds 0 to "
        f"{r['seeds'] - 1}; hpsearch's pruners and other settings of Optuna's percentile "
        "pruner (50: the median) replayed on their trials as in part 4. The first "
        f"{r['half']} seeds are where a setting is chosen; the other "
        f"{r['seeds'] - r['half']} check it. Per pruner, medians over the runs, each against "
        "the same run unpruned: time and epochs the run would have taken, runs keeping their "
        "best trial, time to the unpruned run's best (never where the pruner cuts the best "
        "trial; a median of mostly never is never).",
    ]
    for data, table in r["tables"].items():
        lines += [
            "",
            f"**{data}** (median {table['trials']:.0f} trials a search)",
            "",
            "| pruner | choose: time | epochs | keeps best | to the best | check: time | epochs | "
            "keeps best | to the best |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for label, row in table["rows"].items():
            a, b = row["choose"], row["check"]
            lines.append(
                f"| {label} | {a['time']:.2f} | {a['epochs']:.2f} | {a['kept']}/{r['half']} "
                f"| {_never(a['to_best'])} | {b['time']:.2f} | {b['epochs']:.2f} "
                f"| {b['kept']}/{r['seeds'] - r['half']} | {_never(b['to_best'])} |"
            )
    return lines


def _seeds(r: dict[str, Any]) -> str:
    """The seeds of a part 4 or 7 run, as its text names them."""
    return ", ".join(map(str, r["seeds"]))


def _target_tables(r: dict[str, Any]) -> list[str]:
    """The Markdown tables of part 4 or 7, one per data set, with the default against each
    unpruned TPE."""
    lines: list[str] = []
    for data, table in r["tables"].items():
        lines += [
            "",
            f"**{data}** (target val_loss <= {table['target']:.4f})",
            "",
            "| contender | time to target | runs (s) | epochs to target | missed "
            "| best val_loss | spent | epochs spent |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in table["rows"].values():
            runs = ", ".join(f"{t:.0f}" if math.isfinite(t) else "-" for t in row["times"])
            lines.append(
                f"| {row['label']} | {_secs(row['time'])} | {runs} | {_count(row['epochs'])} "
                f"| {row['missed']}/{len(r['seeds'])} "
                f"| {row['best']:.4f} "
                f"| {row['spent']:.1f} s | {row['spent_epochs']:.0f} |"
            )
        for ref, v in table["versus"].items():
            label = table["rows"][ref]["label"]
            level = ", ".join(f"{k} {_secs(t)}" for k, t in v["to_level"].items())
            lines += [
                "",
                f"Against {label}: median time to the level it ends at ({v['level']:.4f}): "
                f"{level}; default / it **{_ratio(v['level_ratio'])}** (goal <= "
                f"{GOAL_TARGET:.1f}: {_target_verdict(v['level_ratio'])}); at the target: "
                f"{_ratio(v['ratio'])}"
                + (
                    "."
                    if v["ahead"] is None
                    else "; the default ahead of the KerasTuner oracles at this level: "
                    f"{verdict(v['ahead'])}."
                ),
            ]
        replayed = table.get("replay")
        if replayed and replayed["runs"]:
            lines += [
                "",
                f"Pruners replayed on the trials of the unpruned TPE runs through hpsearch "
                f"(median {replayed['trials']:.0f} trials, fixed cost F "
                f"{replayed['fixed']:.2f} s a trial); medians over the runs, each against the "
                "same run unpruned:",
                "",
                "| `--pruner` | time | epochs | runs keeping their best trial | best val_loss "
                "/ unpruned | time to the unpruned best | per run |",
                "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
            ]
            for name, row in replayed["rows"].items():
                lines.append(
                    f"| {name}{' (default)' if name == replayed['default'] else ''} "
                    f"| {row['time']:.2f} "
                    f"| {row['epochs']:.2f} | {row['kept']}/{replayed['runs']} "
                    f"| {row['best']:.3f} | {_never(row['to_best'])} "
                    f"| {', '.join(_never(x) for x in row['to_bests'])} |"
                )
    return lines


SECTIONS = {
    "anchors": "## 1.",
    "workers": "## 2.",
    "rss": "## 3.",
    "target": "## 4.",
    "data": "## 5.",
    "report": "## 6.",
    "large": "## 7.",
    "pruners": "## 8.",
    "short": "## 9.",
}


def _keep_sections(path: Path, lines: list[str], results: dict[str, Any]) -> list[str]:
    """The new report, with the sections of the parts not run this time taken from the old
    one (``--only`` updates its own sections), in the parts' order."""
    if not path.exists():
        return lines

    def split(text_lines: list[str]) -> tuple[list[str], dict[str, list[str]]]:
        head: list[str] = []
        sections: dict[str, list[str]] = {}
        current: list[str] = head
        for line in text_lines:
            part = next((k for k, h in SECTIONS.items() if line.startswith(h)), None)
            if part is not None:
                current = sections.setdefault(part, [])
            current.append(line)
        return head, sections

    head, new = split(lines)
    _, old = split(path.read_text(encoding="utf-8").splitlines())
    merged = list(head)
    for part in PARTS:
        section = new.get(part) if part in results else old.get(part)
        if section:
            note = "(From an earlier run: this run did not measure it.)"
            if part not in results and note not in section:
                section = [*section[:1], "", note, *section[1:]]
            while merged and merged[-1] == "":
                merged.pop()
            merged += ["", *section]
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, help="trials per search in 1. [12; quick 4]")
    parser.add_argument(
        "--epochs", type=int, help="max epochs per trial in 1. and 2. [15; quick 5]"
    )
    parser.add_argument("--patience", type=int, default=3, help="early stopping patience [3]")
    parser.add_argument("--rounds", type=int, help="alternated rounds in 1. and 2. [3; quick 1]")
    parser.add_argument("--workers-trials", type=int, help="trials per search in 2. [32; quick 4]")
    parser.add_argument("--rss-trials", type=int, default=200, help="trials per search in 3. [200]")
    parser.add_argument("--rss-epochs", type=int, default=2, help="epochs per trial in 3. [2]")
    parser.add_argument("--recycle-after", type=int, default=50, help="recycling in 3. [50]")
    parser.add_argument(
        "--target-seconds", type=float, help="wall time per search in 4. [120; quick 20]"
    )
    parser.add_argument(
        "--target-epochs", type=int, help="max epochs per trial in 4. [50; quick 3]"
    )
    parser.add_argument(
        "--target-patience", type=int, help="early stopping patience in 4. [5; quick 1]"
    )
    parser.add_argument("--large-trials", type=int, help="trials per search in 7. [30; quick 4]")
    parser.add_argument("--large-epochs", type=int, help="max epochs per trial in 7. [10; quick 3]")
    parser.add_argument(
        "--target-seeds",
        type=int,
        default=TARGET_SEEDS,
        help=f"searches per contender and data set in 4. and 7. [{TARGET_SEEDS}]",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="searches at a time in 4., each on its own core [1]"
    )
    parser.add_argument(
        "--report-trials", type=int, help="trials of the study read in 6. [10000; quick 1000]"
    )
    parser.add_argument(
        "--contenders",
        default=",".join(key for key, _, _ in CONTENDERS),
        help="comma-separated contenders of 4. [all: %(default)s]",
    )
    parser.add_argument(
        "--pruner-seeds", type=int, help="unpruned searches per data set in 8. [12; quick 2]"
    )
    parser.add_argument(
        "--runs-dir",
        type=Path,
        help="keep the searches of 4., 7. and 8. here and reuse those already there "
        "[none: not kept]",
    )
    parser.add_argument("--short-trials", type=int, default=1, help="trials per search in 9. [1]")
    parser.add_argument("--short-rounds", type=int, help="alternated rounds in 9. [5; quick 1]")
    parser.add_argument("--quick", action="store_true", help="4 trials, 5 epochs, 1 round")
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated parts to run [{','.join(PARTS)}]"
    )
    parser.add_argument(
        "--output", type=Path, help="Markdown report [docs/benchmarks.md; none with --quick]"
    )
    args = parser.parse_args()
    quick = args.quick
    args.trials = args.trials or (4 if quick else 12)
    args.epochs = args.epochs or (5 if quick else 15)
    args.rounds = args.rounds or (1 if quick else 3)
    args.short_rounds = args.short_rounds or (1 if quick else 5)
    args.workers_trials = args.workers_trials or (4 if quick else 32)
    if args.target_seconds is not None and not args.target_seconds > 0:
        parser.error(f"--target-seconds: expected seconds > 0; got {args.target_seconds:g}")
    args.target_seconds = args.target_seconds or (20.0 if quick else 120.0)
    if args.target_seeds < 1:
        parser.error(f"--target-seeds: expected a count >= 1; got {args.target_seeds}")
    args.target_epochs = args.target_epochs or (3 if quick else 50)
    args.target_patience = args.target_patience or (1 if quick else 5)
    args.report_trials = args.report_trials or (1000 if quick else 10_000)
    args.large_trials = args.large_trials or (4 if quick else 30)
    args.large_epochs = args.large_epochs or (3 if quick else 10)
    args.pruner_seeds = args.pruner_seeds or (2 if quick else 12)
    if args.output is None and not quick:
        args.output = ROOT / "docs" / "benchmarks.md"
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(
            f"--only: unknown part(s) {', '.join(sorted(unknown))}; expected {', '.join(PARTS)}"
        )
    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    wrong = set(args.contenders) - {key for key, _, _ in CONTENDERS}
    if wrong:
        parser.error(
            f"--contenders: unknown {', '.join(sorted(wrong))}; expected some of "
            f"{', '.join(key for key, _, _ in CONTENDERS)}"
        )
    if "default" not in args.contenders:
        parser.error(
            "--contenders: 'default' must be among them (the others are measured against it)"
        )
    if {"anchors", "target", "large", "pruners"} & set(parts) and shutil.which("taskset") is None:
        parser.error("taskset (util-linux) is needed to pin the processes of parts 1, 4, 7 and 8")

    info = machine()
    code = code_fingerprint()
    info["hpsearch"] += f", sources {code}"
    log("hpsearch benchmarks on " + "; ".join(f"{k} {v}" for k, v in info.items()))
    # Untimed: bring TensorFlow's files into the page cache, so the first timed process does
    # not pay for the disk.
    timed([sys.executable, "-c", "import tensorflow, keras_tuner, optuna, search"])
    results: dict[str, Any] = {}
    try:
        if "anchors" in parts:
            results["anchors"] = compare_anchors(args)
        if "workers" in parts:
            results["workers"] = compare_workers(args)
        if "rss" in parts:
            results["rss"] = compare_memory(args)
        if "target" in parts:
            chosen = [c for c in CONTENDERS if c[0] in args.contenders]
            results["target"] = compare_time_to_target(args, contenders=chosen)
        if "data" in parts:
            results["data"] = measure_data_memory(args)
        if "report" in parts:
            results["report"] = measure_report_scale(args)
        if "large" in parts:
            results["large"] = compare_on_large_data(args)
        if "pruners" in parts:
            results["pruners"] = choose_pruner(args)
        if "short" in parts:
            results["short"] = compare_anchors(args, trials=args.short_trials, pinned=False)
    except BenchError as exc:
        sys.exit(f"benchmark failed: {exc}")
    if code_fingerprint() != code:
        results["changed"] = (
            "hpsearch's sources (search/, spaces/) changed while the benchmark ran: "
            "its runs may mix versions"
        )
        log(f"\nWARNING: {results['changed']}")
    if args.output is not None:
        write_report(args.output, args, info, results)
        log(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
