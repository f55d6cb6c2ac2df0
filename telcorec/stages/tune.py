"""The tune stage (when tuning.enabled or ensemble.tune_weights): LightFM hyperparameter trials, one
Spark task each, into the `trials` table and best.json; ensemble weights searched on the
validation split (telcorec/models/lightfm/tuning.py)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from telcorec.core.columns import OFFER_CATEGORICALS, SUBSCRIBER_CATEGORICALS, Col
from telcorec.core.config import Config
from telcorec.io.artifacts import TUNED_BEST
from telcorec.io.warehouse import Warehouse
from telcorec.models.encoding import fit_vocabulary
from telcorec.models.lightfm import training
from telcorec.models.lightfm.tuning import search, tune_weights
from telcorec.stages.context import StageContext


def tuning_rows(interactions: DataFrame, features: DataFrame, cfg: Config) -> DataFrame:
    """The first shard's training pairs (the split column's `train` rows only, never `test`)."""
    return (training.training_rows(interactions, features, cfg.train)
            .where(F.col(Col.SHARD) == 0))

def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict:
    ctx = StageContext.open(spark, cfg, run_date)
    wh, read = ctx.wh, ctx.read
    features = read("subscriber_features")
    offer_df = read("offer_features")
    rows = tuning_rows(read("interactions"), features, cfg)
    # the same vocabularies the train stage fits, so trials see the features it will see
    user_vocab = fit_vocabulary(features, SUBSCRIBER_CATEGORICALS)
    item_features = training.item_feature_matrix(
        offer_df.toPandas(), fit_vocabulary(offer_df, OFFER_CATEGORICALS, identity=Col.OFFER_ID))
    out: dict = {}
    if cfg.tuning.enabled:
        out.update(search(rows, cfg, user_vocab, item_features, wh, run_date))
    if cfg.ensemble.tune_weights:
        out["weights"] = tune_weights(rows, cfg, user_vocab, item_features, wh, run_date)
    return out

def best_path(wh: Warehouse, run_date: dt.date) -> Path:
    return wh.tuning_dir(run_date) / TUNED_BEST
