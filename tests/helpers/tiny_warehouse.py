"""A tiny warehouse for stages that read features and interactions (NCF, tuning): 240
subscribers in 4 segments whose held plans follow the segment, written straight to Delta."""
import datetime as dt

import numpy as np
import pandas as pd
from pyspark.sql import types as T

from telcorec.core import config, schemas
from telcorec.core.columns import SUBSCRIBER_CATEGORICALS, Col, Split
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter

RUN = dt.date(2026, 11, 23)
SEGMENTS = ("youth", "family", "business", "senior")
N_SUBS, N_OFFERS = 240, 12


def _fill(frame: pd.DataFrame, schema: T.StructType) -> pd.DataFrame:
    """Give every schema column a value: ours where set, a neutral constant elsewhere."""
    defaults = {T.StringType: "x", T.DoubleType: 0.0, T.IntegerType: 0, T.LongType: 0,
                T.BooleanType: False, T.DateType: RUN}
    for f in schema.fields:
        if f.name not in frame:
            frame[f.name] = defaults[type(f.dataType)]
    return frame[schema.fieldNames()]


def write(spark, wh, name, frame, schema):
    df = schemas.conform(spark.createDataFrame(_fill(frame, schema), schema), schema)
    DeltaRsWriter().replace_partition(df, wh.table(name), schema, RUN)


def tiny_warehouse(spark, root):
    """240 subscribers in 4 segments; each segment holds plans from its own 3 of 12 offers, so
    the segment feature predicts the held-out plan; 10 cold-start subscribers hold none."""
    rng = np.random.default_rng(0)
    cfg = config.load("conf/base.yaml").with_overrides(warehouse=str(root))
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    ids = [f"S{i:04d}" for i in range(N_SUBS)]
    segment = [SEGMENTS[i % 4] for i in range(N_SUBS)]
    features = pd.DataFrame({Col.SUBSCRIBER_ID: ids, Col.SEGMENT: segment,
                             Col.REGION: rng.choice(["North", "South"], N_SUBS)})
    for column in SUBSCRIBER_CATEGORICALS:
        if column not in features:
            features[column] = "medium"
    write(spark, wh, "subscriber_features", features, schemas.SUBSCRIBER_FEATURES)
    offers = pd.DataFrame({Col.OFFER_ID: [f"O{j:02d}" for j in range(N_OFFERS)],
                           Col.OFFER_IDX: np.arange(N_OFFERS, dtype=np.int32),
                           Col.PLAN_TYPE: ["postpaid" if j % 2 else "prepaid"
                                           for j in range(N_OFFERS)],
                           Col.PRICE_TIER: [["budget", "standard", "premium"][j % 3]
                                            for j in range(N_OFFERS)]})
    write(spark, wh, "offer_features", offers, schemas.OFFER_FEATURES)
    write(spark, wh, "subscriber_index", pd.DataFrame(
        {Col.SUBSCRIBER_ID: ids, Col.SUBSCRIBER_IDX: np.arange(N_SUBS, dtype=np.int64)}),
        schemas.SUBSCRIBER_INDEX)
    rows = []
    for i in range(N_SUBS - 10):
        own = 3 * (i % 4) + rng.permutation(3)
        n = int(rng.integers(1, 4))
        for step, offer in enumerate(own[:n]):
            rows.append({Col.SUBSCRIBER_ID: ids[i], Col.SUBSCRIBER_IDX: i,
                         Col.OFFER_ID: f"O{offer:02d}", Col.OFFER_IDX: int(offer),
                         Col.WEIGHT: 1.0, Col.EVENT_DATE: dt.date(2024, 1 + step, 1),
                         Col.SPLIT: Split.TEST if n >= 2 and step == n - 1 else Split.TRAIN})
    write(spark, wh, "interactions", pd.DataFrame(rows), schemas.INTERACTIONS)
    return cfg, wh
