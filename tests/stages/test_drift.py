"""The drift stage on literal tables: one row per feature, score, offer mix and input volume
against the previous published run, and a rerun of the date replaces its partition."""
import datetime as dt

from pyspark.testing import assertDataFrameEqual

from helpers.rows import full_row
from telcorec.core import config, schemas
from telcorec.core.columns import SUBSCRIBER_CATEGORICALS, Col
from telcorec.evaluation.drift import NUMERIC_FEATURES
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter
from telcorec.stages import drift as stage

D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def put(spark, wh, name, rows, day):
    schema = schemas.TABLES[name]
    DeltaRsWriter().replace_partition(spark.createDataFrame(rows, schema), wh.table(name), schema,
                                      day)


def test_drift_rows_alerts_and_an_idempotent_rerun(spark, tmp_path):
    cfg = config.load("conf/base.yaml").with_overrides(warehouse=str(tmp_path / "wh"))
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    for day, n_cdr, usage in ((D1, 10, 1.0), (D2, 20, 1.0)):
        put(spark, wh, "subscriber_features", [full_row(
            schemas.SUBSCRIBER_FEATURES, **{Col.RUN_DATE: day, Col.SUBSCRIBER_ID: f"S{i}",
                                            Col.DATA_GB_MONTH: usage * i})
            for i in range(40)], day)
        put(spark, wh, "offers", [full_row(schemas.OFFERS, **{
            Col.RUN_DATE: day, Col.SUBSCRIBER_ID: f"S{i}", Col.OFFER_ID: "O1", Col.RANK: 1,
            Col.SCORE: i / 40}) for i in range(40)], day)
        for name in (*schemas.INPUTS, *schemas.FEEDBACK):
            rows = n_cdr if name == "cdr" else 4
            put(spark, wh, name, [full_row(schemas.TABLES[name], **{Col.RUN_DATE: day})] * rows,
                day)
    first = stage.run(spark, cfg, D2)
    written = DeltaRsWriter().read(spark, wh.table("drift"), schemas.DRIFT)
    got = {(r[Col.KIND], r[Col.FEATURE]): (r[Col.REFERENCE], r[Col.REFERENCE_DATE], r[Col.ALERT])
           for r in written.collect()}
    features = [*NUMERIC_FEATURES, *SUBSCRIBER_CATEGORICALS]
    assert set(got) == ({("feature", f) for f in features} | {("score", Col.SCORE),
                        ("offer_mix", Col.OFFER_ID)}
                        | {("volume", t) for t in (*schemas.INPUTS, *schemas.FEEDBACK)})
    assert {v[:2] for v in got.values()} == {("previous", D1)}  # no model: no training rows
    # only the CDR doubled (+100% > volume_alert 0.5); the same features and scores as before
    assert sorted(k for k, v in got.items() if v[2]) == [("volume", "cdr")]
    assert first == {"rows": len(got), "alerts": ["volume:cdr (previous)"]}
    assert stage.run(spark, cfg, D2) == first
    assertDataFrameEqual(DeltaRsWriter().read(spark, wh.table("drift"), schemas.DRIFT), written)
