"""What every stage opens with, built once: the session, the config, the run date, the warehouse
(paths checked), the Delta writer chosen for this session and a reader of the run date's
partitions."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from telcorec.core import schemas
from telcorec.core.config import Config
from telcorec.io import storage
from telcorec.io.warehouse import Warehouse


@dataclass(frozen=True)
class StageContext:
    spark: SparkSession
    cfg: Config
    run_date: dt.date
    wh: Warehouse
    writer: str  # "delta-rs" or "spark" (storage.choose_writer)

    @classmethod
    def open(cls, spark: SparkSession, cfg: Config, run_date: dt.date) -> "StageContext":
        return cls(spark, cfg, run_date, Warehouse.from_config(cfg.warehouse, cfg.inputs.path),
                   storage.choose_writer(spark, cfg.storage.writer))

    def read(self, name: str) -> DataFrame:
        """The run date's partition of the warehouse table `name`, with its declared schema."""
        return storage.read_table(self.spark, self.wh.table(name), schemas.TABLES[name],
                                  self.run_date, self.writer)
