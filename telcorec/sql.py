"""`./spark-submit.sh sql`: every Delta table of the warehouse as a view, queried with Spark SQL."""
from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession

from telcorec import schemas, storage
from telcorec.warehouse import Warehouse

log = logging.getLogger(__name__)

TABLE_SCHEMAS = {
    "subscribers": schemas.validated(schemas.SUBSCRIBERS),
    "catalogue": schemas.validated(schemas.CATALOGUE),
    "subscriptions": schemas.validated(schemas.SUBSCRIPTIONS),
    "cdr": schemas.validated(schemas.CDR),
    "rejects": schemas.REJECTS,
    "subscriber_features": schemas.SUBSCRIBER_FEATURES,
    "offer_features": schemas.OFFER_FEATURES,
    "subscriber_index": schemas.SUBSCRIBER_INDEX,
    "interactions": schemas.INTERACTIONS,
    "offers": schemas.OFFERS,
    "metrics": schemas.METRICS,
}


def register_views(spark: SparkSession, wh: Warehouse, writer: str) -> list[str]:
    """Register each existing table (current snapshot) as a temporary view of the same name."""
    registered = []
    for name, schema in TABLE_SCHEMAS.items():
        if storage.is_delta_table(wh.table(name)):
            storage.read_table(spark, wh.table(name), schema, writer=writer) \
                .createOrReplaceTempView(name)
            registered.append(name)
    return registered


def query(spark: SparkSession, wh: Warehouse, writer: str, text: str) -> DataFrame:
    views = register_views(spark, wh, writer)
    if not views:
        log.warning("no tables under %s yet: run ./spark-submit.sh pipeline first", wh.root)
    log.info("views: %s", ", ".join(views))
    return spark.sql(text)
