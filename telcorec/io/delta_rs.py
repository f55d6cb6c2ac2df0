"""Every call into delta-rs (`deltalake`): the one module of the package that imports it.

The delta-rs writer's tasks write Parquet files straight into a table directory
(telcorec/io/task_files.py); `commit` then adds them to the table in one Delta transaction.
deltalake 0.18 has no public call that commits files written elsewhere, so `commit` uses the
same internal entry points its own `write_deltalake(engine="pyarrow")` uses; the version is
pinned in setup.py and the tests read every write back. The other functions are public calls:
the files and statistics a table's log holds, and the small driver-side tables (metrics, runs,
trials) read and written whole.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import time
from pathlib import Path
from typing import Iterator, Sequence

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError
from deltalake.writer import AddAction, get_file_stats_from_metadata

from telcorec.core.columns import Col
from telcorec.core.exceptions import PublishError

_STATS_COLUMNS = 32  # as delta-rs: min/max statistics for the first 32 columns


def is_delta_table(path: str | Path) -> bool:
    return (Path(path) / "_delta_log").is_dir()


def table_version(table_path: str | Path) -> int:
    """The table's current version, -1 when there is none yet: where a write starts from."""
    return DeltaTable(str(table_path)).version() if is_delta_table(table_path) else -1


def file_stats(path: Path) -> str:
    """The statistics of a written Parquet file as the Delta log keeps them (JSON)."""
    stats = get_file_stats_from_metadata(pq.read_metadata(str(path)),
                                         num_indexed_cols=_STATS_COLUMNS,
                                         columns_to_collect_stats=None)
    return json.dumps(stats, default=str)


def commit(table_path: str, schema: pa.Schema, files: list[dict], partition_col: str | None,
           partition_value: str | None, read_version: int) -> None:
    """One atomic Delta commit of `files` (path, size, stats) already in the table directory.

    Optimistic concurrency: `read_version` is the table version the write started from (-1: no
    table yet). If another commit touched the same partition (any file, when the table is
    unpartitioned) after it, this commit is refused and the other run's rows stay as they are.
    delta-rs's own conflict check misses the case that matters most: two overwrites of a
    partition that did not exist yet both commit (neither removes a file, so nothing conflicts)
    and the partition then holds both runs' rows (measured in tests/test_concurrency_and_faults).

    The check and the commit run under an exclusive lock on the table, so no writer using this
    module can commit between them. Residual risk: a writer that does not go through this
    module (another engine, or a host that does not share this file system's locks) is not held
    back by the lock; delta-rs then still refuses overlapping removes, but not a blind append.
    """
    from deltalake._internal import write_new_deltalake

    now_ms = int(time.time() * 1000)
    values = {partition_col: partition_value} if partition_col else {}
    actions = [AddAction(f["path"], f["size"], values, now_ms, True, f["stats"]) for f in files]
    partition_by = [partition_col] if partition_col else []
    filters = [(partition_col, "=", partition_value)] if partition_col else None
    with commit_lock(table_path):
        if not is_delta_table(table_path):
            write_new_deltalake(table_path, schema, actions, "overwrite", partition_by,
                                None, None, None, None, None)
            return
        table = DeltaTable(table_path)
        _refuse_concurrent_commit(table_path, table.version(), read_version, filters)
        table._table.create_write_transaction(actions, "overwrite", partition_by, schema,
                                              filters, None)


@contextlib.contextmanager
def commit_lock(table_path: str) -> Iterator[None]:
    # flock: released when the file is closed, and by the kernel when the process dies, so a
    # killed run never leaves the table locked. The leading "_" hides the file from Spark and
    # Delta readers, as it does _delta_log.
    Path(table_path).mkdir(parents=True, exist_ok=True)
    with open(Path(table_path) / "_telcorec_commit.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _refuse_concurrent_commit(table_path: str, latest: int, read_version: int,
                              filters: list | None) -> None:
    """Raise if a version after `read_version` changed the files of the partition in `filters`.

    Data files are never reused under another name, so a changed file set is exactly "another
    commit wrote or replaced this partition". Only the versions committed while this write ran
    are read, usually none.
    """
    if latest == read_version:
        return  # the usual case: nobody committed while this write ran
    before = set()
    if read_version >= 0:
        before = set(DeltaTable(table_path, version=read_version).files(filters))
    for version in range(read_version + 1, latest + 1):
        files = set(DeltaTable(table_path, version=version).files(filters))
        if files != before:
            where = f"{filters[0][0]}={filters[0][2]}" if filters else "the whole table"
            raise PublishError(
                f"another run wrote {where} of {table_path} (version {version}) while this one "
                f"was writing (it started from version {read_version}); nothing of this run was "
                "committed (its files are orphans, removed by jobs/vacuum.py); rerun it once "
                "the other run has ended")


def file_uris(table_path: str, run_dates: Sequence[str] | None = None
              ) -> tuple[pa.Schema, list[str]] | None:
    """(schema, data files) of the table's current snapshot, only the partitions of these run
    dates (ISO strings) when given; None when there is no table at `table_path`."""
    try:
        table = DeltaTable(table_path)
    except TableNotFoundError:
        return None
    filters = [(Col.RUN_DATE, "in", list(run_dates))] if run_dates is not None else None
    return table.schema().to_pyarrow(), table.file_uris(partition_filters=filters)


def partition_records(table_path: str, run_date: str) -> int:
    """Rows of one run date's partition from the log's per-file record counts (no data file
    is read); 0 when the table or the partition does not exist."""
    if not is_delta_table(table_path):
        return 0
    actions = DeltaTable(table_path).get_add_actions(flatten=True).to_pydict()
    return sum(int(rows) for rows, value in zip(actions["num_records"],
                                               actions[f"partition.{Col.RUN_DATE}"])
               if str(value) == run_date)


def current_files(table_path: str | Path) -> tuple[int, list[str]]:
    """(version, data files as the log spells them) of the table's current snapshot."""
    table = DeltaTable(str(table_path))
    return table.version(), table.files()


def write_small(rows: pa.Table, path: str | Path, predicate: str | None) -> None:
    """Write a small driver-side result (metrics, run records) in one commit.

    With a `predicate`, rows matching it are replaced (a rerun does not duplicate them); the
    predicate must be built from validated values only (dates via isoformat, names checked
    against the allowed pattern by the caller).
    """
    table_path = str(Path(path).resolve())
    if not is_delta_table(table_path):
        write_deltalake(table_path, rows, mode="append", partition_by=[Col.RUN_DATE],
                        engine="rust")
    elif predicate:
        write_deltalake(table_path, rows, mode="overwrite", predicate=predicate, engine="rust")
    else:
        write_deltalake(table_path, rows, mode="append", engine="rust")


def append_merging_schema(rows: pa.Table, path: str | Path) -> None:
    """Append rows that carry columns the table lacks yet (they are added; older rows read
    NULL there): an append, never a rewrite."""
    write_deltalake(str(Path(path).resolve()), rows, mode="append", schema_mode="merge",
                    engine="rust")


def column_names(path: str | Path) -> list[str]:
    return DeltaTable(str(path)).schema().to_pyarrow().names


def read_small(path: str | Path, columns: list[str] | None = None,
               partitions: list[tuple] | None = None) -> pa.Table:
    """A small table (rows per run, never per subscriber) read whole onto the driver."""
    return DeltaTable(str(path)).to_pyarrow_table(columns=columns, partitions=partitions)


def arrow_dataset(path: str | Path) -> ds.Dataset:
    """The current snapshot as a pyarrow dataset (read lazily, filters pushed down)."""
    return DeltaTable(str(Path(path).resolve())).to_pyarrow_dataset()
