"""A fixed negatives file (`inputs.interactions.negatives`): per user, the items its held-out
item is ranked against, instead of sampled ones (as the NCF authors publish theirs).

Layout: one row per (user, negative item), in the events' format (CSV or Parquet), its two
columns mapped like the events' (`columns: {user: ..., item: ...}`); ids as in the events file.
The NCF authors' `*.test.negative` (one line per user: "(user,item)" then 99 items, tab
separated) becomes this layout with one line of shell, see conf/interactions_example.yaml.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from telcorec.core.columns import Col
from telcorec.core.config import InteractionsSourceConfig
from telcorec.io.writer import Writer
from telcorec.sources.files import read_source, require_path, resolve
from telcorec.sources.parse import CORRUPT, UNDECODABLE, require_mapped, text
from telcorec.sources.preflight import CsvSource

KEY = "inputs.interactions.negatives"
NEGATIVE_KEYS = ("user", "item")


def read_negatives(spark: SparkSession, cfg: InteractionsSourceConfig,
                   writer: Writer) -> DataFrame:
    """(subscriber_id, offer_id) per row of the file, as strings; NULL where a value is
    missing or the line is malformed (the caller counts those rows)."""
    source = cfg.negatives
    cols = source.columns
    path = require_path(resolve(cfg.path, source.path), f"{KEY}.path")
    raw = read_source(spark, cfg.format, CsvSource(path, KEY, cfg.csv, "inputs.interactions.csv",
                                                   tuple(cols.values())), writer)
    require_mapped(raw, cols, f"{KEY}.columns", where=str(path))
    broken = F.lit(False)  # a malformed or undecodable line names nobody
    if CORRUPT in raw.columns:
        broken = broken | F.col(CORRUPT).isNotNull()
    if UNDECODABLE in raw.columns:
        broken = broken | F.coalesce(F.col(UNDECODABLE), F.lit(False))
    user, item = (text(F.col(f"`{cols[k]}`")) for k in NEGATIVE_KEYS)
    return raw.select(F.when(~broken, user).alias(Col.SUBSCRIBER_ID),
                      F.when(~broken, item).alias(Col.OFFER_ID))
