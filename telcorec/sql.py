"""`./spark-submit.sh sql`: every Delta table of the warehouse as a view, queried with Spark SQL."""
from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession

from telcorec.core import schemas
from telcorec.io import storage
from telcorec.io.warehouse import Warehouse

log = logging.getLogger(__name__)


# Only offers of succeeded runs, and for each subscriber only the newest such run date: what a
# campaign tool should read. A run that failed or was rejected never shows here.
LATEST_OFFERS = """
CREATE OR REPLACE TEMPORARY VIEW latest_offers AS
WITH ok AS (SELECT DISTINCT run_date, run_id FROM runs WHERE status = 'succeeded'),
published AS (SELECT o.* FROM offers o JOIN ok ON o.run_date = ok.run_date AND o.run_id = ok.run_id),
newest AS (SELECT subscriber_id, max(run_date) AS run_date FROM published GROUP BY subscriber_id)
SELECT p.* FROM published p JOIN newest n
  ON p.subscriber_id = n.subscriber_id AND p.run_date = n.run_date
"""


def register_views(spark: SparkSession, wh: Warehouse, writer: str) -> list[str]:
    """Register each existing table (current snapshot) as a temporary view of the same name."""
    registered = []
    for name, schema in schemas.TABLES.items():
        if storage.is_delta_table(wh.table(name)):
            storage.read_table(spark, wh.table(name), schema, writer=writer) \
                .createOrReplaceTempView(name)
            registered.append(name)
    if {"offers", "runs"} <= set(registered):
        spark.sql(LATEST_OFFERS)
        registered.append("latest_offers")
    return registered


def query(spark: SparkSession, wh: Warehouse, writer: str, text: str) -> DataFrame:
    views = register_views(spark, wh, writer)
    if not views:
        log.warning("no tables under %s yet: run ./spark-submit.sh pipeline first", wh.root)
    log.info("views: %s", ", ".join(views))
    return spark.sql(text)
