"""What every stage opens with, built once: the session, the config, the run date, the warehouse
(paths checked), the Delta writer chosen for this session and a reader of the run date's
partitions."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.core.config import Config
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import Writer, choose


@dataclass(frozen=True)
class StageContext:
    spark: SparkSession
    cfg: Config
    run_date: dt.date
    wh: Warehouse
    writer: Writer  # Spark's Delta source or delta-rs (writer.choose)

    @classmethod
    def open(cls, spark: SparkSession, cfg: Config, run_date: dt.date) -> "StageContext":
        return cls(spark, cfg, run_date, Warehouse.from_config(cfg.warehouse, cfg.inputs.path),
                   choose(spark, cfg.storage.writer))

    def read(self, name: str) -> DataFrame:
        """The run date's partition of the warehouse table `name`, with its declared schema."""
        return self.writer.read(self.spark, self.wh.table(name), schemas.TABLES[name],
                                [self.run_date])

    def history(self, name: str, start: dt.date | None, end: dt.date) -> DataFrame:
        """Rows of `name` with start <= run_date < end (start None: from the first), no rows
        when the table does not exist yet (the first run of a warehouse)."""
        schema = schemas.TABLES[name]
        path = self.wh.table(name)
        if not self.writer.exists(self.spark, path):
            return self.spark.createDataFrame([], schema)
        rows = self.writer.read(self.spark, path, schema)
        within = F.col(Col.RUN_DATE) < F.lit(end)
        if start is not None:
            within &= F.col(Col.RUN_DATE) >= F.lit(start)
        return rows.where(within)

    def previous_published(self) -> dt.date | None:
        """The newest run date before this one that published offers (one small aggregation)."""
        return self.history("offers", None, self.run_date).agg(F.max(Col.RUN_DATE)).first()[0]
