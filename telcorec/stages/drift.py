"""The drift stage (after score): the run date against the previous published run, and the
features against those of the served model's training date, to the run date's partition of
`drift` (telcorec/evaluation/drift.py): PSI of every model input feature and of the served
scores, offer-mix PSI, and the change in accepted rows of every input table."""
from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import DataFrame, SparkSession

from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.core.config import Config
from telcorec.evaluation import drift
from telcorec.models.scoring import trained_on
from telcorec.stages.context import StageContext

log = logging.getLogger(__name__)
INPUT_TABLES = (*schemas.INPUTS, *schemas.FEEDBACK)
PREVIOUS, TRAINING = "previous", "training"


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict:
    ctx = StageContext.open(spark, cfg, run_date)
    d = cfg.drift
    rows = []

    def add(kind: str, values: dict[str, float], reference: str, ref_date: dt.date,
            metric: str, threshold: float) -> None:
        rows.extend((run_date, kind, name, reference, ref_date, metric, value, threshold,
                     name in drift.alerts(values, threshold)) for name, value in values.items())

    def partition(name: str, day: dt.date) -> DataFrame:
        return ctx.history(name, day, day + dt.timedelta(days=1))

    features = ctx.read("subscriber_features")
    trained = trained_on(ctx.wh, run_date, cfg.scoring.model)  # an ensemble: none found
    if trained != run_date:
        add("feature", drift.feature_psi(features, partition("subscriber_features", trained), d.bins),
            TRAINING, trained, "psi", d.psi_alert)
    previous = ctx.previous_published()
    if previous is not None:
        add("feature", drift.feature_psi(features, partition("subscriber_features", previous), d.bins),
            PREVIOUS, previous, "psi", d.psi_alert)
        offers, before = ctx.read("offers"), partition("offers", previous)
        add("score", drift.column_psi(offers, before, [Col.SCORE], [], d.bins), PREVIOUS,
            previous, "psi", d.psi_alert)
        add("offer_mix", drift.column_psi(offers, before, [], [Col.OFFER_ID], d.bins),
            PREVIOUS, previous, "psi", d.offer_mix_alert)
        volumes = {t: drift.relative_change(ctx.read(t).count(), partition(t, previous).count())
                   for t in INPUT_TABLES}
        add("volume", volumes, PREVIOUS, previous, "relative_change", d.volume_alert)
    table = spark.createDataFrame(rows, schemas.DRIFT)
    ctx.writer.replace_partition(table, ctx.wh.table("drift"), schemas.DRIFT, run_date)
    flagged = sorted(f"{r[1]}:{r[2]} ({r[3]})" for r in rows if r[8])
    if flagged:
        log.warning("drift on %s: %s", run_date, ", ".join(flagged))
    return {"rows": len(rows), "alerts": flagged}
