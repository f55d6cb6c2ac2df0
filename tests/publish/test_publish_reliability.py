"""Publishing `offers` survives faults and refuses bad rows: kill -9 at random points, reruns, a row of another date, backfill, the output
contract, and the clean-up of what a killed writer leaves behind (telcorec/io/maintenance.py).

The fast tests work on small literal tables. The slow ones (marked) build one tiny warehouse with
the real pipeline, then kill real publishing processes: tests/helpers/publish_kill_target.py (the score
job's publish path on staged rows, with phase markers to aim at) and jobs/score.py itself.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from deltalake.writer import AddAction, get_file_stats_from_metadata
from pyspark.sql import functions as F

from helpers import REPO
from helpers.fault_injection import session_members
from telcorec.core import config, schemas
from telcorec.core.columns import Col, RunStatus
from telcorec.core.exceptions import PublishError
from telcorec.io import maintenance
from telcorec.io.writer import DeltaRsWriter
from telcorec.publish.contract import OffersContract
from telcorec.stages import pipeline

D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
CATALOGUE = tuple(f"O{i:02d}" for i in range(12))
K = 3


# ---- helpers -------------------------------------------------------------------------------

def offer_rows(run_date, subscribers=4, k=K, run_id="r1", offers=CATALOGUE) -> list[dict]:
    """Valid rows: every subscriber gets ranks 1..k of distinct catalogue offers."""
    return [{Col.RUN_DATE: run_date, Col.RUN_ID: run_id, Col.SUBSCRIBER_ID: f"S{s:03d}",
             Col.OFFER_ID: offers[(s + r) % len(offers)], Col.RANK: r + 1,
             Col.SCORE: 1.0 - r / 10, Col.MODEL_VERSION: "v1", Col.ARM: "model",
             Col.RELEVANCE: 0.5, Col.REVENUE: 0.1, Col.RETENTION: 0.1, Col.DIVERSITY: 0.1,
             Col.REASONS: ["r"]}
            for s in range(subscribers) for r in range(k)]


def as_stored(row: dict) -> dict:
    """The row as the table holds it: every column of the schema (nullable extras None)."""
    return {name: row.get(name) for name in schemas.OFFERS.fieldNames()}


def frame(spark, rows, parts=3):
    # a random repartition: a subscriber's rows land in different partitions
    tuples = [tuple(as_stored(r).values()) for r in rows]
    return spark.createDataFrame(tuples, schemas.OFFERS).repartition(parts)


def history_length(path) -> int:
    return len(DeltaTable(str(path)).history())


def partition_files(path, run_date) -> dict[str, float]:
    """The partition's committed files with their modification times."""
    table = DeltaTable(str(path))
    return {f: (Path(path) / f).stat().st_mtime
            for f in table.files(partition_filters=[(Col.RUN_DATE, "=", run_date.isoformat())])}


def rows_hash(rows: list[dict]) -> str:
    keys = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def partition_hashes(path) -> dict[str, str]:
    """{run_date: hash of its sorted rows} over the table's current version ('*': a table
    without run_date)."""
    by_date: dict[str, list[dict]] = {}
    for row in DeltaTable(str(path)).to_pyarrow_table().to_pylist():
        by_date.setdefault(str(row.get(Col.RUN_DATE, "*")), []).append(row)
    return {d: rows_hash(rows) for d, rows in by_date.items()}


# ---- a row of another run date -------------------------------------------------------

def test_publish_holding_a_row_of_another_run_date_is_refused_with_0_new_versions(spark,
                                                                                   tmp_path):
    path = tmp_path / "offers"
    DeltaRsWriter().replace_partition(frame(spark, offer_rows(D1)), path, schemas.OFFERS, D1)
    before = (history_length(path), partition_hashes(path))
    other_date = [{**r, Col.SUBSCRIBER_ID: "X" + r[Col.SUBSCRIBER_ID]}  # valid in every other way
                  for r in offer_rows(D2, subscribers=1, run_id="r2")]
    mixed = frame(spark, offer_rows(D1, run_id="r2") + other_date)
    with pytest.raises(Exception, match="run_date is not 2026-11-01.*nothing was committed"):
        DeltaRsWriter().replace_partition(mixed, path, schemas.OFFERS, D1,
                                          contract=OffersContract(CATALOGUE, K))
    new_versions = history_length(path) - before[0]
    print(f"another run date in the publish: {new_versions} new versions")
    assert new_versions == 0
    assert partition_hashes(path) == before[1]


# ---- backfill ------------------------------------------------------------------------

def test_backfill_of_an_older_run_date_after_a_newer_one_is_written_not_skipped(spark, tmp_path):
    path = tmp_path / "offers"
    newer, older = offer_rows(D2, run_id="new"), offer_rows(D1, subscribers=5, run_id="old")
    DeltaRsWriter().replace_partition(frame(spark, newer), path, schemas.OFFERS, D2)
    newer_files = partition_files(path, D2)
    time.sleep(0.05)  # an mtime that changed would differ
    rows = DeltaRsWriter().replace_partition(frame(spark, older), path, schemas.OFFERS, D1)
    assert rows == len(older)
    assert DeltaTable(str(path)).version() == 1
    assert partition_files(path, D2) == newer_files  # same files, same mtimes
    hashes = partition_hashes(path)
    expected = {str(D1): rows_hash([as_stored(r) for r in older]),
                str(D2): rows_hash([as_stored(r) for r in newer])}
    print(f"backfill: partitions {sorted(hashes)}, older rows {rows}")
    assert hashes == expected


# ---- the output contract --------------------------------------------------------------

def _break(rows, rule):
    offer, rank, score = Col.OFFER_ID, Col.RANK, Col.SCORE
    if rule == "offer_in_catalogue":
        rows[0][offer], rows[4][offer] = "O99", "NOT-AN-OFFER"
        return rows, 2
    if rule == "rank_in_range":
        rows[0][rank], rows[5][rank], rows[7][rank] = 0, K + 1, -3
        return rows, 3
    if rule == "duplicate_rank":  # S001 has ranks 1, 1, 3
        rows[K + 1][rank] = 1
        return rows, 1
    if rule == "skipped_rank":  # S002 has ranks 1, 2, 4 (K 4 here keeps 4 in range)
        rows[2 * K + 2][rank] = 4
        return rows, 1
    if rule == "score_finite":
        rows[0][score], rows[4][score], rows[8][score] = float("nan"), float("inf"), float("-inf")
        return rows, 3
    raise ValueError(rule)


@pytest.mark.parametrize("broken, rule, unit", [
    ("offer_in_catalogue", "offer_in_catalogue", "rows"),
    ("rank_in_range", "rank_in_range", "rows"),
    ("duplicate_rank", "ranks_unique_and_contiguous", "subscribers"),
    ("skipped_rank", "ranks_unique_and_contiguous", "subscribers"),
    ("score_finite", "score_finite", "rows"),
])
def test_output_contract_refuses_a_breaking_publish_before_any_file_or_version(
        spark, tmp_path, broken, rule, unit):
    path = tmp_path / "offers"
    k = 4 if broken == "skipped_rank" else K
    DeltaRsWriter().replace_partition(frame(spark, offer_rows(D1)), path, schemas.OFFERS, D1)
    before = (history_length(path), partition_hashes(path), len(maintenance.data_files(path)))
    rows, count = _break(offer_rows(D1, run_id="bad"), broken)
    with pytest.raises(PublishError) as refused:
        DeltaRsWriter().replace_partition(frame(spark, rows), path, schemas.OFFERS, D1,
                                          contract=OffersContract(CATALOGUE, k))
    message = str(refused.value)
    print(f"contract {broken}: {message}")
    assert f"{rule}: {count} {unit}" in message and "nothing was committed" in message
    assert "S00" not in message and "O99" not in message  # names rules and counts, no values
    assert history_length(path) == before[0]
    assert partition_hashes(path) == before[1]
    assert len(maintenance.data_files(path)) == before[2]  # refused before any task wrote


def test_output_contract_counts_every_rule_at_once_and_passes_valid_rows(spark):
    contract = OffersContract(CATALOGUE, K)
    valid = offer_rows(D1, subscribers=6)
    short = [{**r, Col.SUBSCRIBER_ID: "T" + r[Col.SUBSCRIBER_ID]}  # ranks 1..2 only
             for r in offer_rows(D1, subscribers=2, run_id="r2") if r[Col.RANK] <= 2]
    assert contract.violations(frame(spark, valid + short, parts=4)) == {
        "offer_in_catalogue": 0, "rank_in_range": 0, "score_finite": 0,
        "ranks_unique_and_contiguous": 0}
    rows = valid
    rows[0][Col.OFFER_ID] = "O99"          # one offer outside the catalogue
    rows[1][Col.SCORE] = float("nan")      # one NaN score
    rows[K + 2][Col.RANK] = 2              # S001: ranks 1, 2, 2
    rows[2 * K][Col.RANK] = K + 5          # S002: rank out of range (its others stay 2, 3)
    assert contract.violations(frame(spark, rows, parts=4)) == {
        "offer_in_catalogue": 1, "rank_in_range": 1, "score_finite": 1,
        "ranks_unique_and_contiguous": 2}


def test_output_contract_checks_ranks_beyond_62_with_a_second_mask_word(spark):
    catalogue = tuple(f"P{i:03d}" for i in range(80))
    contract = OffersContract(catalogue, 70)
    rows = offer_rows(D1, subscribers=2, k=70, offers=catalogue)
    assert contract.violations(frame(spark, rows))["ranks_unique_and_contiguous"] == 0
    rows[69][Col.RANK] = 65  # S000: rank 65 twice, 70 missing
    assert contract.violations(frame(spark, rows))[
        "ranks_unique_and_contiguous"] == 1


@pytest.mark.parametrize("broken", [None, "offer_in_catalogue", "rank_in_range", "duplicate_rank",
                                    "skipped_rank", "score_finite", "random"])
def test_output_contract_per_batch_agrees_with_the_spark_check(spark, broken):
    """The score stage counts the contract inside its writing tasks, one batch of whole
    subscribers at a time (OffersContract.batch_violations): the same counts as the Spark job."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    k = 4 if broken == "skipped_rank" else K
    rows = offer_rows(D1, subscribers=20, k=K)
    if broken == "random":
        rng = random.Random(7)
        for row in rng.sample(rows, 15):
            column = rng.choice([Col.OFFER_ID, Col.RANK, Col.SCORE])
            row[column] = {Col.OFFER_ID: "O99", Col.RANK: rng.randint(-1, K + 1),
                           Col.SCORE: rng.choice([float("nan"), float("inf"), 0.3])}[column]
    elif broken is not None:
        rows, _ = _break(rows, broken)
    contract = OffersContract(CATALOGUE, k)
    batch = pa.RecordBatch.from_pylist([as_stored(r) for r in rows],
                                       schema=to_arrow_schema(schemas.OFFERS))
    expected = contract.violations(frame(spark, rows))
    assert contract.batch_violations(batch) == expected
    assert any(expected.values()) == (broken is not None)


# ---- the clean-up command ------------------------------------------------------------------

def _plant_orphan(table: Path, like: str, subdir: str) -> Path:
    """What a writer killed before its commit leaves: a complete Parquet file no log names."""
    target = table / subdir / f"part-{uuid.uuid4().hex}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(table / like, target)
    return target


def test_cleanup_removes_only_files_no_version_references(spark, tmp_path):
    root = tmp_path / "wh"
    path = root / "offers"
    DeltaRsWriter().replace_partition(frame(spark, offer_rows(D1)), path, schemas.OFFERS, D1)
    DeltaRsWriter().replace_partition(frame(spark, offer_rows(D1, run_id="r2")), path,
                                      schemas.OFFERS, D1)
    DeltaRsWriter().replace_partition(frame(spark, offer_rows(D2)), path, schemas.OFFERS, D2)
    v0_rows = DeltaTable(str(path), version=0).to_pyarrow_table().num_rows
    some = DeltaTable(str(path)).files()[0]
    planted = [_plant_orphan(path, some, f"run_date={D1}"), _plant_orphan(path, some, "")]
    (path / "run_date=2026-11-01" / "notes.txt").write_text("not a data file")
    _plant_orphan(root / "models", "../offers/" + some, "")  # not a Delta table: never touched
    before = partition_hashes(path)

    listed = maintenance.clean_warehouse(root, min_age=0, dry_run=True)
    assert [r.table for r in listed] == [path]
    assert sorted(f.path for f in listed[0].orphans) == sorted(
        p.relative_to(path).as_posix() for p in planted)
    assert all(p.exists() for p in planted)  # a dry run deletes nothing

    done = maintenance.clean_warehouse(root, min_age=0, dry_run=False)
    print(maintenance.report(done, root, dry_run=False, min_age=0))
    assert done[0].removed_files == 2
    assert done[0].removed_bytes == sum(f.size for f in listed[0].orphans)
    assert not any(p.exists() for p in planted)
    assert maintenance.find_orphans(path, 0).orphans == ()
    assert partition_hashes(path) == before
    # files of earlier versions stay: time travel to version 0 still reads
    assert DeltaTable(str(path), version=0).to_pyarrow_table().num_rows == v0_rows
    assert len(list((root / "models").glob("*.parquet"))) == 1


def test_cleanup_keeps_young_files_and_files_committed_after_the_listing(spark, tmp_path):
    path = tmp_path / "offers"
    DeltaRsWriter().replace_partition(frame(spark, offer_rows(D1)), path, schemas.OFFERS, D1)
    some = DeltaTable(str(path)).files()[0]
    late = _plant_orphan(path, some, f"run_date={D1}")
    young = maintenance.find_orphans(path, min_age=3600)
    assert young.orphans == () and len(young.too_recent) == 1

    found = maintenance.find_orphans(path, min_age=0)
    assert [f.path for f in found.orphans] == [late.relative_to(path).as_posix()]
    # a slow writer commits the file between the listing and the deletion
    stats = get_file_stats_from_metadata(pq.read_metadata(late), num_indexed_cols=32,
                                         columns_to_collect_stats=None)
    relative = late.relative_to(path).as_posix()
    DeltaTable(str(path))._table.create_write_transaction(
        [AddAction(relative, late.stat().st_size, {Col.RUN_DATE: D1.isoformat()},
                   int(time.time() * 1000), True, json.dumps(stats, default=str))],
        "append", [Col.RUN_DATE], DeltaTable(str(path)).schema().to_pyarrow(), None, None)
    done = maintenance.remove_orphans(found)
    assert done.removed_files == 0 and late.exists()
    assert DeltaTable(str(path)).to_pyarrow_table().num_rows == (
        len(offer_rows(D1)) + pq.read_metadata(late).num_rows)


def test_vacuum_job_help_explains_orphans_and_min_age():
    out = subprocess.run([sys.executable, "jobs/vacuum.py", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "orphan" in out.stdout and "--min-age-minutes" in out.stdout and "--dry-run" in out.stdout


# ---- slow: one tiny warehouse, real processes killed -------------------------------------------

RUN = dt.date(2026, 11, 23)
SUBMIT_ARGS = ("--master local[2] --driver-memory 1g --conf spark.ui.enabled=false "
               "--conf spark.sql.shuffle.partitions=2 pyspark-shell")
PHASES = ("spark", "publishing", "commit", "committed", "done")


@dataclass
class Tiny:
    root: Path
    conf_a: Path      # the pipeline's own config
    conf_b: Path      # the same with another experiment salt: another run id, other arms
    staged: Path      # the pipeline's offers rows of RUN, for the publishing target
    hash_a: str       # RUN's offers as the pipeline (config a) published them

    @property
    def offers(self) -> Path:
        return self.root / "offers"


@pytest.fixture(scope="module")
def tiny(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("publish")
    root = base / "wh"
    cfg = config.load(REPO / "conf/local.yaml").with_overrides(**{
        "warehouse": str(root), "generator.subscribers": 300})
    pipeline.run(spark, cfg, RUN)
    conf_a, conf_b = base / "a.yaml", base / "b.yaml"
    common = (f"extends: {REPO / 'conf/local.yaml'}\nwarehouse: {root}\n"
              "generator: {subscribers: 300}\n")
    conf_a.write_text(common)
    conf_b.write_text(common + "experiment: {salt: kill-test-b}\n")
    assert config.load(conf_a).fingerprint() == cfg.fingerprint()  # same run id as the pipeline
    staged = base / "staged.parquet"
    pq.write_table(DeltaTable(str(root / "offers")).to_pyarrow_table(
        partitions=[(Col.RUN_DATE, "=", RUN.isoformat())]), staged)
    return Tiny(root, conf_a, conf_b, staged, partition_hashes(root / "offers")[str(RUN)])


def staged_hash(tiny: Tiny, run_date: dt.date, label: str) -> str:
    """The partition's hash once the target published the staged rows as `label`."""
    rows = pq.read_table(tiny.staged).to_pylist()
    return rows_hash([as_stored({**r, Col.RUN_DATE: run_date, Col.RUN_ID: label}) for r in rows])


@dataclass
class Launched:
    proc: subprocess.Popen
    started: float
    log: Path
    marks: dict[str, float] = field(default_factory=dict)
    events: dict[str, threading.Event] = field(
        default_factory=lambda: {p: threading.Event() for p in PHASES})

    def last_phase(self) -> str:
        return max(self.marks, key=self.marks.get) if self.marks else "startup"


def launch(cmd: list[str], log: Path) -> Launched:
    """Start `cmd` in a session of its own (the JVM and Python workers join it)."""
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "PYSPARK_SUBMIT_ARGS": SUBMIT_ARGS}
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err,
                                text=True, start_new_session=True)
    launched = Launched(proc, time.monotonic(), log)

    def read_markers():
        for line in proc.stdout:
            if line.startswith("PHASE "):
                name = line.split()[1]
                launched.marks[name] = time.monotonic()
                launched.events[name].set()

    threading.Thread(target=read_markers, daemon=True).start()
    return launched



def kill_session(launched: Launched) -> bool:
    """SIGKILL the process group now; wait for the rest of the session. True if it was alive."""
    alive = launched.proc.poll() is None
    try:
        os.killpg(launched.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    launched.proc.wait()
    deadline = time.monotonic() + 60
    while session_members(launched.proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in session_members(launched.proc.pid):  # stragglers of ours, by pid
        os.kill(pid, signal.SIGKILL)
    return alive


def kill_after(launched: Launched, mark: str | None, delay: float) -> tuple[bool, float]:
    """Kill `delay` seconds after phase `mark` (None: after the launch): (it was alive, when)."""
    if mark is not None:
        while not launched.events[mark].wait(0.02):
            if launched.proc.poll() is not None:
                break
    start = launched.marks.get(mark, launched.started) if mark else launched.started
    time.sleep(max(0.0, start + delay - time.monotonic()))
    return kill_session(launched), time.monotonic() - launched.started


def kill_on_new_file(launched: Launched, table: Path, delay: float) -> tuple[bool, float]:
    """Kill `delay` seconds after the first data file that was not in `table` at the launch
    appears: the score job's tasks write the files of its publish before the driver commits
    them, so this aims at the job's own writing phase. (it was alive, when)"""
    before = set(table.rglob("*.parquet"))
    while launched.proc.poll() is None and not set(table.rglob("*.parquet")) - before:
        time.sleep(0.02)
    time.sleep(delay)
    return kill_session(launched), time.monotonic() - launched.started


def finish(launched: Launched, timeout: float = 900) -> float:
    """Wait for an un-killed run; its duration."""
    rc = launched.proc.wait(timeout=timeout)
    kill_session(launched)  # nothing should be left, but never leak a JVM
    assert rc == 0, launched.log.read_text()[-3000:]
    return time.monotonic() - launched.started


@dataclass(frozen=True)
class State:
    version: int
    hashes: dict
    attempts: frozenset  # (attempt_id, status) rows of `runs`
    duplicates: int      # (run_date, subscriber_id, rank) keys held by more than one row


def state(tiny: Tiny) -> State:
    offers = DeltaTable(str(tiny.offers))  # opens: the log is readable
    keys = offers.to_pyarrow_table(columns=[Col.RUN_DATE, Col.SUBSCRIBER_ID, Col.RANK])
    counts = keys.group_by([Col.RUN_DATE, Col.SUBSCRIBER_ID, Col.RANK]).aggregate(
        [([], "count_all")])
    runs = DeltaTable(str(tiny.root / "runs")).to_pyarrow_table(
        columns=[Col.ATTEMPT_ID, Col.STATUS]).to_pylist()
    return State(offers.version(), partition_hashes(tiny.offers),
                 frozenset((r[Col.ATTEMPT_ID], r[Col.STATUS]) for r in runs),
                 sum(1 for n in counts.column("count_all").to_pylist() if n > 1))


def outcome(before: State, after: State, run_date: dt.date, new_hash: str) -> str:
    """'old' or 'new', after checking everything a reader may rely on after a kill."""
    d = str(run_date)
    assert after.version in (before.version, before.version + 1)
    assert after.duplicates == 0
    assert {k: v for k, v in after.hashes.items() if k != d} == \
        {k: v for k, v in before.hashes.items() if k != d}  # other dates untouched
    if after.version == before.version:
        assert after.hashes.get(d) == before.hashes.get(d)  # nothing of the attempt visible
        result = "old"
    else:
        assert after.hashes.get(d) == new_hash  # all of it, nothing else
        result = "new"
    statuses = {status for _, status in after.attempts - before.attempts}
    if result == "old":
        assert RunStatus.SUCCEEDED not in statuses  # runs never shows success without offers
    return result


def target(tiny: Tiny, run_date: dt.date, label: str) -> list[str]:
    return [sys.executable, str(REPO / "tests/helpers/publish_kill_target.py"), "--conf", str(tiny.conf_a),
            "--staged", str(tiny.staged), "--catalogue-date", RUN.isoformat(),
            "--run-date", run_date.isoformat(), "--label", label]


def score_job(conf: Path) -> list[str]:
    return [sys.executable, str(REPO / "jobs/score.py"), "--conf", str(conf),
            "--run-date", RUN.isoformat()]


@pytest.mark.slow
def test_kill_9_while_publishing_leaves_old_or_new_offers_never_success_and_cleanup_removes_orphans(
        tiny, tmp_path):
    """20 kills of the publish path (target) and 5
    of the real score job (3 at random moments, 2 once its first data file is in the table),
    predicate overwrite (RUN again) and append (new dates)."""
    seed = 20261123
    rng = random.Random(seed)
    tally: dict[str, int] = {}

    def record(kind: str, mode: str, case: str, kill: tuple[bool, float], launched: Launched,
               result: str):
        killed, at = kill
        key = f"{kind}/{mode}/{case}/{'killed' if killed else 'finished'}/{result}"
        tally[key] = tally.get(key, 0) + 1
        print(f"  {kind:<6} {mode:<10} {case:<9} killed={killed!s:<5} at {at:5.1f}s, last "
              f"phase {launched.last_phase():<10} -> {result}", flush=True)

    # the real score job: one un-killed run (config b) to time it and know its output, then
    # kills at uniform random delays over that duration, alternating configs a and b
    before = state(tiny)
    seconds_score = finish(launch(score_job(tiny.conf_b), tmp_path / "score-cal.log"))
    after = state(tiny)
    assert outcome(before, after, RUN, after.hashes[str(RUN)]) == "new"
    assert RunStatus.SUCCEEDED in {s for _, s in after.attempts - before.attempts}
    expected = {tiny.conf_a: tiny.hash_a, tiny.conf_b: after.hashes[str(RUN)]}
    assert expected[tiny.conf_a] != expected[tiny.conf_b]
    for i in range(6):
        if sum(n for k, n in tally.items() if k.startswith("score/") and "/killed/" in k) == 3:
            break
        conf = (tiny.conf_a, tiny.conf_b)[i % 2]
        before = state(tiny)
        launched = launch(score_job(conf), tmp_path / f"score-{i}.log")
        kill = kill_after(launched, None, rng.uniform(0, seconds_score))
        record("score", "anywhere", "overwrite", kill, launched,
               outcome(before, state(tiny), RUN, expected[conf]))
    # most of the job's run is start-up and scoring: two kills aimed at its writing phase
    for i, delay in enumerate((0.0, rng.uniform(0.0, 2.0))):
        conf = (tiny.conf_a, tiny.conf_b)[i % 2]
        before = state(tiny)
        launched = launch(score_job(conf), tmp_path / f"score-writing-{i}.log")
        kill = kill_on_new_file(launched, tiny.offers, delay)
        record("score", "writing", "overwrite", kill, launched,
               outcome(before, state(tiny), RUN, expected[conf]))

    # the publish path: one un-killed run (append) to time it, then 20 kills aimed at phases
    before = state(tiny)
    cal = launch(target(tiny, RUN + dt.timedelta(days=200), "cal"), tmp_path / "target-cal.log")
    seconds_total = finish(cal)
    seconds_publish = cal.marks["commit"] - cal.marks["publishing"]
    assert outcome(before, state(tiny), RUN + dt.timedelta(days=200),
                   staged_hash(tiny, RUN + dt.timedelta(days=200), "cal")) == "new"
    modes = {"anywhere": (None, lambda: rng.uniform(0, seconds_total)),
             "writing": ("publishing", lambda: rng.uniform(0, seconds_publish)),
             "commit": ("commit", lambda: 0.0),
             "committed": ("committed", lambda: 0.0)}
    # 20 kills of a live process: an attempt that ended before its drawn delay counts as a
    # finished run (still checked) and another attempt follows
    i = 0
    while sum(n for k, n in tally.items() if k.startswith("target/") and "/killed/" in k) < 20:
        assert i < 40, f"only {i} attempts; kills keep missing the process: {tally}"
        mode = list(modes)[i % 4]
        case = "overwrite" if (i // 4) % 2 == 0 else "append"
        run_date = RUN if case == "overwrite" else RUN + dt.timedelta(days=100 + i)
        label = f"kill{i:02d}"
        before = state(tiny)
        launched = launch(target(tiny, run_date, label), tmp_path / f"target-{i}.log")
        mark, delay = modes[mode]
        kill = kill_after(launched, mark, delay())
        result = outcome(before, state(tiny), run_date, staged_hash(tiny, run_date, label))
        record("target", mode, case, kill, launched, result)
        i += 1

    # the clean-up command removes what the killed writers left, and nothing else
    tables = maintenance.delta_tables(tiny.root)
    content = {t: partition_hashes(t) for t in tables}
    orphans = sum(len(r.orphans) for r in maintenance.clean_warehouse(tiny.root, 0, dry_run=True))
    vacuum = subprocess.run([sys.executable, str(REPO / "jobs/vacuum.py"), "--conf",
                             str(tiny.conf_a), "--min-age-minutes", "0"], cwd=REPO,
                            env={**os.environ, "PYSPARK_SUBMIT_ARGS": SUBMIT_ARGS},
                            capture_output=True, text=True, timeout=600)
    assert vacuum.returncode == 0, vacuum.stderr[-3000:]
    left = sum(len(r.orphans) for r in maintenance.clean_warehouse(tiny.root, 0, dry_run=True))
    kills = sum(n for k, n in tally.items() if "/killed/" in k)
    print(f"seed {seed}; score job {seconds_score:.1f}s, publish target {seconds_total:.1f}s "
          f"(publish phase {seconds_publish:.1f}s)")
    print(f"kills {kills} of {sum(tally.values())} attempts; outcomes "
          f"old {sum(n for k, n in tally.items() if k.endswith('/old'))}, "
          f"new {sum(n for k, n in tally.items() if k.endswith('/new'))}; {tally}")
    print(f"orphan files before clean-up {orphans}, after {left}\n{vacuum.stdout}")
    writing = sum(n for k, n in tally.items()
                  if k.startswith("score/writing/") and "/killed/" in k)
    print(f"score job kills aimed at its writing phase that found it alive: {writing} of 2")
    assert writing >= 1
    assert kills == 23 + writing  # 3 + the writing ones of the score job, 20 of the target
    assert orphans > 0 and left == 0
    assert {t: partition_hashes(t) for t in tables} == content


@pytest.mark.slow
def test_rerun_of_a_date_3_times_and_after_a_kill_adds_one_version_each_no_duplicates(
        spark, tiny, tmp_path):
    """Reruns of one date replace it; another date's files are never touched."""
    other = RUN + dt.timedelta(days=50)
    rows = spark.read.schema(schemas.OFFERS).parquet(str(tiny.staged))

    def publish(run_date: dt.date, label: str) -> None:
        df = rows.withColumn(Col.RUN_DATE, F.lit(run_date)).withColumn(Col.RUN_ID, F.lit(label))
        catalogue = tuple(sorted(set(rows.toPandas()[Col.OFFER_ID])))  # what was offered
        DeltaRsWriter().replace_partition(df, tiny.offers, schemas.OFFERS, run_date,
                                          contract=OffersContract(catalogue, 10))

    publish(other, "other")
    other_files = partition_files(tiny.offers, other)
    versions = []
    for j in range(3):
        before = state(tiny)
        publish(RUN, f"rerun{j}")
        versions.append(outcome(before, state(tiny), RUN, staged_hash(tiny, RUN, f"rerun{j}")))
        assert partition_files(tiny.offers, other) == other_files
    before_kill = state(tiny)
    launched = launch(target(tiny, RUN, "killed"), tmp_path / "target.log")
    killed, _ = kill_after(launched, "commit", 0.0)
    after_kill = state(tiny)
    kill_result = outcome(before_kill, after_kill, RUN, staged_hash(tiny, RUN, "killed"))
    publish(RUN, "after-kill")
    final = state(tiny)
    versions.append(outcome(after_kill, final, RUN, staged_hash(tiny, RUN, "after-kill")))
    print(f"reruns: {versions} (each one version), killed run {killed} -> {kill_result}, "
          f"duplicates {final.duplicates}, other date's files unchanged "
          f"{partition_files(tiny.offers, other) == other_files}")
    assert versions == ["new"] * 4 and final.duplicates == 0
    assert partition_files(tiny.offers, other) == other_files
