"""Clean-up after a crash: remove the data files no Delta commit references.

A writer killed between writing its Parquet files and committing them leaves the table at its
last good version (nothing reads the files) but the files stay on disk. deltalake 0.18's
`vacuum()` only deletes files that a commit removed (tombstones) and has no `full` mode, so it
never removes them; this module does, for every Delta table under the warehouse.

What counts as an orphan, conservatively:
- a `.parquet` file under the table directory, outside hidden directories (`_delta_log`,
  `_change_data`, names starting with `_` or `.`), so deletion vectors, logs and lock files are
  never candidates;
- referenced by no version of the table still in the log (every `add` and `remove` of every
  commit and checkpoint): files of earlier versions stay, so time travel keeps working (the
  regular retention-based `vacuum()` is the tool for those);
- older than `min_age` seconds: a file younger than that may belong to a write still running
  (its commit has not happened yet), so it is kept unless the operator says no job is writing.
Just before deleting, under the table's commit lock, the log is read again at its newest version,
and a candidate that a commit made in the meantime references is kept.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pyarrow.parquet as pq

from telcorec.io.delta_rs import commit_lock, current_files, is_delta_table

log = logging.getLogger(__name__)

_COMMIT = re.compile(r"^\d{20}\.json$")
_CHECKPOINT = re.compile(r"^\d{20}\.checkpoint(\.\d+\.\d+)?\.parquet$")


@dataclass(frozen=True)
class DataFile:
    path: str    # relative to the table root, '/'-separated, as the Delta log writes it
    size: int
    mtime: float


@dataclass(frozen=True)
class TableCleanup:
    table: Path
    version: int                       # the version whose log was read
    orphans: tuple[DataFile, ...]      # unreferenced and old enough: removed (or, dry run, listed)
    too_recent: tuple[DataFile, ...]   # unreferenced but younger than min_age: kept
    removed_files: int = 0
    removed_bytes: int = 0

    @property
    def orphan_bytes(self) -> int:
        return sum(f.size for f in self.orphans)


def data_files(table: Path) -> list[DataFile]:
    """Every Parquet file of the table directory outside hidden directories."""
    found = []
    for dirpath, dirnames, filenames in os.walk(table, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(("_", "."))]
        for name in filenames:
            if name.startswith(("_", ".")) or not name.endswith(".parquet"):
                continue
            full = Path(dirpath) / name
            if full.is_symlink():
                continue  # never delete through a link
            stat = full.stat()
            found.append(DataFile(full.relative_to(table).as_posix(), stat.st_size,
                                  stat.st_mtime))
    return found


def referenced_files(table: Path) -> tuple[int, set[str]]:
    """(newest version, paths any retained version adds or removes), paths unquoted."""
    logdir = table / "_delta_log"
    paths: set[str] = set()
    for entry in sorted(logdir.iterdir()):
        if _COMMIT.match(entry.name):
            for line in entry.read_text().splitlines():
                action = json.loads(line) if line.strip() else {}
                for kind in ("add", "remove"):
                    if kind in action:
                        paths.add(unquote(action[kind]["path"]))
        elif _CHECKPOINT.match(entry.name):
            checkpoint = pq.read_table(entry, columns=["add", "remove"]).to_pydict()
            for kind in ("add", "remove"):
                paths.update(unquote(a["path"]) for a in checkpoint[kind] if a)
    version, current = current_files(table)  # also the snapshot's own view (trimmed logs)
    paths.update(unquote(p) for p in current)
    return version, paths


def find_orphans(table: Path, min_age: float, now: float | None = None) -> TableCleanup:
    """List the table's unreferenced data files (nothing is deleted)."""
    table = Path(table)
    listed = data_files(table)  # listed before the log is read: a file committed meanwhile
    version, referenced = referenced_files(table)  # is then among the referenced ones
    now = time.time() if now is None else now
    unreferenced = [f for f in listed if f.path not in referenced]
    return TableCleanup(table, version,
                        tuple(f for f in unreferenced if now - f.mtime >= min_age),
                        tuple(f for f in unreferenced if now - f.mtime < min_age))


def remove_orphans(found: TableCleanup) -> TableCleanup:
    """Delete `found.orphans` that the newest log still does not reference. The table's commit
    lock (telcorec/io/delta_rs.py's) is held from that last reading of the log to the last
    deletion, so no commit through it can come in between."""
    with commit_lock(str(found.table)):
        version, referenced = referenced_files(found.table)
        removed = [f for f in found.orphans if f.path not in referenced]
        for f in removed:
            (found.table / f.path).unlink(missing_ok=True)
    kept = len(found.orphans) - len(removed)
    if kept:
        log.warning("%s: %d files were committed by version <= %d since they were listed; kept",
                    found.table, kept, version)
    return TableCleanup(found.table, version, tuple(removed), found.too_recent, len(removed),
                        sum(f.size for f in removed))


def delta_tables(root: Path) -> list[Path]:
    """Every Delta table under `root` (a table's own subdirectories are not searched)."""
    tables = []
    for dirpath, dirnames, _ in os.walk(root, followlinks=False):
        if is_delta_table(dirpath):
            tables.append(Path(dirpath))
            dirnames[:] = []
        else:
            dirnames.sort()
    return sorted(tables)


def clean_warehouse(root: Path, min_age: float, dry_run: bool) -> list[TableCleanup]:
    """Find (and unless `dry_run`, remove) the orphans of every Delta table under `root`."""
    results = []
    for table in delta_tables(Path(root)):
        found = find_orphans(table, min_age)
        results.append(found if dry_run or not found.orphans else remove_orphans(found))
    return results


def report(results: list[TableCleanup], root: Path, dry_run: bool, min_age: float) -> str:
    """One line per table with orphans, then the totals."""
    verb = "would remove" if dry_run else "removed"
    lines = []
    for r in results:
        if not (r.orphans or r.too_recent):
            continue
        files, size = ((len(r.orphans), r.orphan_bytes) if dry_run
                       else (r.removed_files, r.removed_bytes))
        line = f"  {r.table.relative_to(root)}: {verb} {files:,} files, {size:,} bytes"
        if r.too_recent:
            line += f"; kept {len(r.too_recent):,} younger than {min_age / 60:g} min"
        lines.append(line)
        if dry_run:
            lines += [f"    {f.path}  {f.size:,} bytes" for f in r.orphans]
    total = sum(len(r.orphans) if dry_run else r.removed_files for r in results)
    young = sum(len(r.too_recent) for r in results)
    lines.append(f"{len(results)} Delta tables under {root}: {verb} {total:,} orphan files"
                 + (f"; {young:,} younger than {min_age / 60:g} min kept (pass "
                    "--min-age-minutes 0 once no job is writing)" if young else ""))
    return "\n".join(lines)
