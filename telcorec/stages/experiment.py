"""The experiment stage: the A/B results of the offers published in the window before the run
date (experiment.window_days), from `offers`, their arms and the `responses` ingested up to the
run date, written to the run date's partition of `experiment_results`
(telcorec/evaluation/experiment.py). Aggregates only reach the driver."""
from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.core.config import Config
from telcorec.evaluation import campaign_report
from telcorec.evaluation.experiment import (
    ALL,
    arm_counts,
    per_subscriber,
    price_uplift,
    result_rows,
)
from telcorec.offers.experiments import with_arm
from telcorec.stages.context import StageContext


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict:
    ctx = StageContext.open(spark, cfg, run_date)
    start = run_date - dt.timedelta(days=cfg.experiment.window_days)
    offers = ctx.history("offers", start, run_date)
    responses = ctx.history("responses", None, run_date + dt.timedelta(days=1)).where(
        F.col(Col.OFFER_RUN_DATE) >= F.lit(start))
    population = with_arm(ctx.read("subscriber_features").select(Col.SUBSCRIBER_ID, Col.SEGMENT),
                          cfg.experiment)
    revenue = price_uplift(responses, ctx.history("subscriber_features", start, run_date),
                           ctx.history("offer_features", start, run_date))
    counts = arm_counts(per_subscriber(population, offers, responses, revenue))
    rows = result_rows(counts, cfg.experiment, run_date, start)
    table = spark.createDataFrame(rows, schemas.EXPERIMENT_RESULTS) if rows else \
        spark.createDataFrame([], schemas.EXPERIMENT_RESULTS)
    ctx.writer.replace_partition(table, ctx.wh.table("experiment_results"),
                                 schemas.EXPERIMENT_RESULTS, run_date)
    campaign_report.write(ctx.wh, cfg, run_date)  # with this date's rows: after the write
    overall = {r[Col.ARM]: r for r in rows if r[Col.SEGMENT] == ALL}
    return {arm: {k: r[k] for k in (Col.OFFERED, Col.ACCEPTED, Col.CONVERSION, Col.UPLIFT_ABS,
                                    Col.UPLIFT_ABS_LOW, Col.UPLIFT_ABS_HIGH, Col.P_VALUE,
                                    Col.SRM_OK)}
            for arm, r in sorted(overall.items())}
