"""Stage 4, train: one LightFM hybrid model per shard of subscribers, trained inside Spark tasks.

Subscribers are hashed into `train.shards` shards. `groupBy(shard).applyInPandas` hands each
shard's training interactions (with the subscribers' categorical features) to one task, which
fits a model against the shared offer feature space and writes its arrays under the warehouse.
The driver receives one small row per shard. With user features only (no per-subscriber identity
embeddings) every shard model scores any subscriber, including ones it never saw.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import platform
import time
from pathlib import Path

import lightfm
import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark import TaskContext
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec import schemas, storage
from telcorec.columns import OFFER_CATEGORICALS, SUBSCRIBER_CATEGORICALS, Col, Split
from telcorec.config import Config, LightFMConfig
from telcorec.encoding import Vocabulary, fit_vocabulary
from telcorec.models import artifacts
from telcorec.models.lightfm_model import LightFMRecommender
from telcorec.warehouse import Warehouse

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
SHARD_RESULT = T.StructType([
    T.StructField(Col.SHARD, T.IntegerType()), T.StructField("path", T.StringType()),
    T.StructField("users", T.LongType()), T.StructField("interactions", T.LongType()),
    T.StructField("seconds", T.DoubleType()), T.StructField("data_sha256", T.StringType()),
])


def model_name(cfg: LightFMConfig) -> str:
    return "lightfm_" + cfg.loss.replace("-", "")


def shard_of(subscriber_id: Column, shards: int) -> Column:
    """Stable shard of a subscriber: the same id lands in the same shard on every run."""
    return F.pmod(F.xxhash64(subscriber_id), F.lit(shards)).cast("int")


def training_rows(interactions: DataFrame, features: DataFrame, shards: int) -> DataFrame:
    train = interactions.filter(F.col(Col.SPLIT) == Split.TRAIN)
    return (train.select(Col.SUBSCRIBER_ID, Col.OFFER_IDX, Col.WEIGHT)
            .join(features.select(Col.SUBSCRIBER_ID, *SUBSCRIBER_CATEGORICALS),
                  on=Col.SUBSCRIBER_ID, how="inner")
            .withColumn(Col.SHARD, shard_of(F.col(Col.SUBSCRIBER_ID), shards)))


def item_feature_matrix(offers: pd.DataFrame, vocab: Vocabulary) -> sp.csr_matrix:
    """Offer features (categoricals + identity), rows in offer_idx order."""
    offers = offers.sort_values(Col.OFFER_IDX)
    return vocab.encode(offers, identity=offers[Col.OFFER_ID])


def _fingerprint(users: np.ndarray, items: np.ndarray) -> str:
    order = np.lexsort((items, users))
    digest = hashlib.sha256(users[order].tobytes())
    digest.update(items[order].tobytes())
    return digest.hexdigest()


def make_shard_trainer(params: dict, user_vocab: Vocabulary, item_features: sp.csr_matrix,
                       out_dir: str):
    """The function each task runs on one shard's rows; returns one small summary row."""

    def train(pdf: pd.DataFrame) -> pd.DataFrame:
        started = time.monotonic()
        shard = int(pdf[Col.SHARD].iloc[0])
        codes, subscriber_ids = pd.factorize(pdf[Col.SUBSCRIBER_ID], sort=True)
        # every row of a subscriber carries the same features: take the first row of each,
        # in code order so that row i of the feature matrix is subscriber code i
        first_rows = pdf.iloc[np.unique(codes, return_index=True)[1]]
        n_users, n_items = len(subscriber_ids), item_features.shape[0]
        items = pdf[Col.OFFER_IDX].to_numpy(np.int32)
        matrix = sp.coo_matrix((pdf[Col.WEIGHT].to_numpy(np.float32), (codes, items)),
                               shape=(n_users, n_items))
        context = TaskContext.get()
        threads = context.cpus() if context is not None else 1
        model = LightFMRecommender(**params).fit(
            matrix, user_vocab.encode(first_rows), item_features, num_threads=threads)
        path = Path(out_dir) / f"shard={shard:04d}"
        data_sha = _fingerprint(codes.astype(np.int64), items.astype(np.int64))
        artifacts.save(path, model.arrays(), {
            "shard": shard, "params": model.get_params(), "users": n_users,
            "interactions": int(matrix.nnz), "data_sha256": data_sha,
            "epoch_seconds": model.epoch_seconds, "threads": threads,
            "versions": {"lightfm": lightfm.__version__, "numpy": np.__version__,
                         "python": platform.python_version()}})
        return pd.DataFrame([{Col.SHARD: shard, "path": str(path), "users": n_users,
                              "interactions": int(matrix.nnz),
                              "seconds": time.monotonic() - started, "data_sha256": data_sha}])

    return train


def train_lightfm(rows: DataFrame, offers: pd.DataFrame, user_vocab: Vocabulary,
                  item_vocab: Vocabulary, cfg: LightFMConfig, seed: int,
                  out_dir: Path) -> list[dict]:
    params = {**{k: getattr(cfg, k) for k in ("loss", "no_components", "learning_rate",
                                                "item_alpha", "user_alpha", "max_sampled",
                                                "epochs", "k", "n")}, "seed": seed}
    trainer = make_shard_trainer(params, user_vocab, item_feature_matrix(offers, item_vocab),
                                 str(out_dir))
    results = rows.groupBy(Col.SHARD).applyInPandas(trainer, SHARD_RESULT).collect()
    return sorted((r.asDict() for r in results), key=lambda r: r[Col.SHARD])


def write_manifest(out_dir: Path, name: str, run_date: dt.date, shards: int, results: list[dict],
                   user_vocab: Vocabulary, item_vocab: Vocabulary, offers: pd.DataFrame,
                   feature_stats_version: str) -> dict:
    digest = hashlib.sha256("".join(r["data_sha256"] for r in results).encode())
    for r in results:
        meta = json.loads((Path(r["path"]) / artifacts.META).read_text())
        digest.update(meta["arrays_sha256"].encode())
    manifest = {
        "model": name, "model_version": f"{name}-{run_date.isoformat()}-{digest.hexdigest()[:10]}",
        "run_date": run_date.isoformat(), "shards": shards, "shard_key": "xxhash64(subscriber_id)",
        "shard_paths": {str(r[Col.SHARD]): Path(r["path"]).name for r in results},
        "user_vocabulary": user_vocab.to_json(), "item_vocabulary": item_vocab.to_json(),
        "offer_ids": offers.sort_values(Col.OFFER_IDX)[Col.OFFER_ID].tolist(),
        # the offer features the item vocabulary encodes, so scoring rebuilds the same rows
        "offer_rows": offers.sort_values(Col.OFFER_IDX)[[Col.OFFER_ID, *item_vocab.columns]]
        .to_dict(orient="records"),
        "feature_stats_version": feature_stats_version, "shard_results": results,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    return manifest


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict:
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    writer = storage.choose_writer(spark, cfg.storage.writer)
    features = storage.read_table(spark, wh.table("subscriber_features"),
                                  schemas.SUBSCRIBER_FEATURES, run_date, writer)
    offer_df = storage.read_table(spark, wh.table("offer_features"), schemas.OFFER_FEATURES,
                                  run_date, writer)
    interactions = storage.read_table(spark, wh.table("interactions"), schemas.INTERACTIONS,
                                      run_date, writer)
    offers = offer_df.toPandas()  # the catalogue: tens to hundreds of rows
    user_vocab = fit_vocabulary(features, SUBSCRIBER_CATEGORICALS)
    item_vocab = fit_vocabulary(offer_df, OFFER_CATEGORICALS, identity=Col.OFFER_ID)
    name = model_name(cfg.train.lightfm)
    out_dir = wh.models(run_date, name)
    rows = training_rows(interactions, features, cfg.train.shards)
    results = train_lightfm(rows, offers, user_vocab, item_vocab, cfg.train.lightfm, cfg.seed,
                            out_dir)
    stats_version = json.loads(wh.feature_stats(run_date).read_text())["version"]
    manifest = write_manifest(out_dir, name, run_date, cfg.train.shards, results, user_vocab,
                              item_vocab, offers, stats_version)
    log.info("trained %s: %d shards, %d interactions", manifest["model_version"], len(results),
             sum(r["interactions"] for r in results))
    return {"model_version": manifest["model_version"], "shards": len(results),
            "train_interactions": sum(r["interactions"] for r in results)}
