"""Stage 0 (demo only), generate: write the synthetic operator's input tables.

Runs when `inputs.source: generated`. The tables land where an operator's own tables would be
read from (`inputs.path`), so every later stage is the same for real and generated data.
Generation is deterministic, so regenerating for the same run date reproduces the same tables.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession

from telcorec import schemas, storage
from telcorec.config import Config
from telcorec.synthetic.generate import generate
from telcorec.warehouse import Warehouse


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, int]:
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    writer = storage.choose_writer(spark, cfg.storage.writer)
    tables = generate(spark, cfg.generator, cfg.seed, run_date)
    written = {}
    for name, schema in schemas.GENERATED.items():
        written[name] = storage.replace_table(getattr(tables, name), wh.input_table(name), schema,
                                              writer)
    storage.replace_table(tables.truth, wh.truth_table(), schemas.SUBSCRIBER_TRUTH, writer)
    return written
