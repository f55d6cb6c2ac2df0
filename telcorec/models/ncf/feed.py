"""Petastorm between Spark and the PyTorch workers.

`make_spark_converter` materialises a DataFrame as Parquet under the warehouse's
`_petastorm_cache`; each worker opens `make_torch_dataloader` on its own shard (`cur_shard=rank,
shard_count=world_size`) for one epoch (`num_epochs=1`; without it the loader never ends).

Petastorm shards by Parquet row group, so ranks can get different numbers of rows. Every rank
therefore runs the same fixed number of steps per epoch, taken from the row-group sizes: any
shard holds at least floor(groups / world) row groups, so at least the sum of that many of the
smallest groups; steps = that bound // batch_size. Examples are written one row group per file
in a multiple of world_size files of near-equal size, which makes the bound tight.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq
import torch
from pyarrow import fs as pafs
from pyspark.sql import DataFrame, SparkSession

CACHE_DIR = "_petastorm_cache"
ROWS_PER_FILE = 1_000_000     # ~50 MB uncompressed at 13 int columns: one row group each
ROW_GROUP_BYTES = 256 << 20   # larger than any file above, so a file is one row group


@contextlib.contextmanager
def known_warnings_ignored() -> Iterator[None]:
    """Petastorm 0.12 on pyarrow 14 warns on every call about pyarrow's legacy dataset API
    (known and harmless, see STACK.md), and its batched loader about read-only arrays (the
    batches are never written to)."""
    with warnings.catch_warnings():
        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category,
                                    module=r"(pyarrow|petastorm)(\..*)?$")
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable",
                                category=UserWarning)
        yield


def use_cache_under(spark: SparkSession, warehouse_root: Path) -> str:
    """Point Petastorm's converter cache at <warehouse>/_petastorm_cache; returns the URL."""
    from petastorm.spark import SparkDatasetConverter

    url = (Path(warehouse_root) / CACHE_DIR).resolve().as_uri()
    spark.conf.set(SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF, url)
    return url


def file_count(rows: int, world_size: int, rows_per_file: int = ROWS_PER_FILE) -> int:
    """A multiple of world_size, each file at most rows_per_file rows (few, not tiny, files)."""
    per_rank = max(1, math.ceil(rows / (world_size * rows_per_file)))
    return per_rank * world_size


def make_converter(df: DataFrame):
    from petastorm.spark import make_spark_converter

    # dtype=None: the examples are int and float32 already, nothing to convert
    with known_warnings_ignored():
        return make_spark_converter(df, parquet_row_group_size_bytes=ROW_GROUP_BYTES,
                                    dtype=None)


def row_group_rows(file_urls: list[str]) -> list[int]:
    """Rows of every row group of the materialised dataset (Parquet footers only)."""
    out = []
    for url in file_urls:
        filesystem, path = pafs.FileSystem.from_uri(url)
        with filesystem.open_input_file(path) as handle:
            meta = pq.ParquetFile(handle).metadata
            out += [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    return out


def steps_per_epoch(group_rows: list[int], world_size: int, batch_size: int) -> int:
    """Full batches every rank is guaranteed to have, whatever row groups Petastorm gives it."""
    if len(group_rows) < world_size:
        raise ValueError(f"the training examples have {len(group_rows)} Parquet row groups for "
                         f"{world_size} processes; every process needs one. Lower ncf.processes.")
    smallest = sorted(group_rows)[:len(group_rows) // world_size]
    steps = sum(smallest) // batch_size
    if steps == 0:
        raise ValueError(f"a worker's shard holds {sum(smallest)} examples, less than one batch "
                         f"of ncf.batch_size = {batch_size}; lower ncf.batch_size or "
                         "ncf.processes.")
    return steps


@contextlib.contextmanager
def shard_batches(converter, batch_size: int, rank: int, world_size: int,
                  seed: int) -> Iterator[Iterator[dict[str, torch.Tensor]]]:
    """One epoch of this rank's shard as batches of tensors (row groups shuffled by `seed`).

    One reader thread keeps the order deterministic; rows were shuffled when written.
    """
    from petastorm.pytorch import BatchedDataLoader

    with known_warnings_ignored(), converter.make_torch_dataloader(
            batch_size=batch_size, num_epochs=1, cur_shard=rank, shard_count=world_size,
            workers_count=1, seed=seed, shuffle_row_groups=True,
            data_loader_fn=BatchedDataLoader) as loader:
        yield iter(loader)
