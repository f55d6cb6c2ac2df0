"""The train stage: every configured LightFM variant on every shard of subscribers, one Spark task
per shard (telcorec/models/lightfm/training.py), then one manifest per variant beside the
shard models."""
from __future__ import annotations

import datetime as dt
import json
import logging

from pyspark.sql import SparkSession

from telcorec.core.columns import OFFER_CATEGORICALS, SUBSCRIBER_CATEGORICALS, Col
from telcorec.core.config import Config
from telcorec.io import runs
from telcorec.io.artifacts import MANIFEST, record_training_run
from telcorec.models.encoding import fit_vocabulary
from telcorec.models.lightfm.training import (
    train_lightfm,
    training_rows,
    tuned_overrides,
    write_manifest,
)
from telcorec.stages.context import StageContext

log = logging.getLogger(__name__)


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict:
    ctx = StageContext.open(spark, cfg, run_date)
    wh, read = ctx.wh, ctx.read
    features, offer_df, interactions = (read("subscriber_features"), read("offer_features"),
                                        read("interactions"))
    offers = offer_df.toPandas()  # the catalogue: tens to hundreds of rows
    user_vocab = fit_vocabulary(features, SUBSCRIBER_CATEGORICALS)
    item_vocab = fit_vocabulary(offer_df, OFFER_CATEGORICALS, identity=Col.OFFER_ID)
    out_root = wh.models_root(run_date)
    tuned = (tuned_overrides(wh, run_date, cfg.train) if cfg.train.lightfm_from_tuning
             else None)
    results = train_lightfm(training_rows(interactions, features, cfg.train), offers, user_vocab,
                            item_vocab, cfg.train, cfg.seed, out_root, tuned)
    stats_version = json.loads(wh.feature_stats(run_date).read_text())["version"]
    summary = {}
    for name in sorted({r[Col.MODEL] for r in results}):
        mine = [r for r in results if r[Col.MODEL] == name]
        manifest = write_manifest(out_root / name, name, run_date, cfg.train, mine, user_vocab,
                                  item_vocab, offers, stats_version)
        record_training_run(out_root / name / MANIFEST, runs.lineage(cfg, run_date))
        log.info("trained %s: %d shards, %d interactions, best epochs %s",
                 manifest["model_version"], len(mine), sum(r["interactions"] for r in mine),
                 [r["best_epoch"] for r in mine])
        summary[name] = manifest["model_version"]
    return {"models": summary, "shards": cfg.train.shards,
            "train_interactions": sum(r["interactions"] for r in results
                                      if r[Col.MODEL] == min(summary))}
