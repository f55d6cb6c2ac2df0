"""The train stage: every configured LightFM variant on every shard of subscribers, one Spark task
per shard (telcorec/models/lightfm/training.py), then one manifest per variant beside the
shard models."""
from __future__ import annotations

import datetime as dt
import json
import logging

from pyspark.sql import SparkSession

from telcorec.core.columns import OFFER_CATEGORICALS, SUBSCRIBER_CATEGORICALS, Col
from telcorec.core.config import Config, TrainConfig
from telcorec.io import runs
from telcorec.io.artifacts import MANIFEST, TUNED_BEST, record_training_run
from telcorec.io.warehouse import Warehouse
from telcorec.models.encoding import fit_vocabulary
from telcorec.models.lightfm.training import train_lightfm, training_rows, write_manifest
from telcorec.stages.context import StageContext

log = logging.getLogger(__name__)


def latest_tuned(wh: Warehouse, run_date: dt.date) -> dict | None:
    """The newest best configuration the tune stage persisted at or before `run_date`."""
    found = []
    for path in wh.tuning_dir(run_date).parent.glob(f"run_date=*/{TUNED_BEST}"):
        day = dt.date.fromisoformat(path.parent.name.split("=", 1)[1])
        if day <= run_date:
            found.append((day, path))
    return json.loads(max(found)[1].read_text()) if found else None

def tuned_overrides(wh: Warehouse, run_date: dt.date, cfg: TrainConfig) -> dict[str, dict]:
    """{model name: tuned knobs} for train.lightfm_from_tuning; {} (YAML values, said so in
    the log) when nothing was tuned yet or the tuned variant is not trained."""
    best = latest_tuned(wh, run_date)
    if best is None or best["variant"] not in cfg.models:
        log.warning("train.lightfm_from_tuning: no tuning result at or before %s under %s for "
                    "train.models %s; training with the YAML hyperparameters (run the tune "
                    "stage with tuning.enabled: true)", run_date, wh.tuning_dir(run_date).parent,
                    list(cfg.models))
        return {}
    log.info("%s: hyperparameters %s from tuning trial %d of run date %s (validation %s %.4f)",
             best["model"], best["params"], best["trial"], best["run_date"], best["metric"],
             best["value"])
    return {best["model"]: best["params"]}

def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict:
    ctx = StageContext.open(spark, cfg, run_date)
    wh, writer, read = ctx.wh, ctx.writer, ctx.read
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
