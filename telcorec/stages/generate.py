"""The generate stage (demo only): write the synthetic operator's input tables.

Runs when `inputs.source: generated`. The tables land where an operator's own tables would be
read from (`inputs.path`), so every later stage is the same for real and generated data.
Generation is deterministic, so regenerating for the same run date reproduces the same tables.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession

from telcorec.core import schemas
from telcorec.core.config import Config
from telcorec.stages.context import StageContext
from telcorec.synthetic.generate import generate


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, int]:
    ctx = StageContext.open(spark, cfg, run_date)
    wh, writer = ctx.wh, ctx.writer
    tables = generate(spark, cfg.generator, cfg.seed, run_date,
                      kept_days=cfg.ingest.cdr_window_days)
    written = {}
    for name, schema in schemas.GENERATED.items():
        written[name] = writer.replace_table(getattr(tables, name), wh.input_table(name), schema)
    writer.replace_table(tables.truth, wh.truth_table(), schemas.SUBSCRIBER_TRUTH)
    return written
