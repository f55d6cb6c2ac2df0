"""One LightFM hybrid model per shard of subscribers, trained inside Spark tasks.

Subscribers are hashed into `train.shards` shards, laid out one shard per partition, and
`groupBy(...).applyInPandas` hands each shard's training interactions (with the subscribers'
categorical features) to a task of its own, which fits a model against the shared offer
feature space and writes its arrays under the warehouse.
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
from dataclasses import asdict, dataclass
from pathlib import Path

import lightfm
import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark import TaskContext
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core.columns import SUBSCRIBER_CATEGORICALS, Col, Split
from telcorec.core.config import EarlyStoppingConfig, TrainConfig, variant_model_name
from telcorec.io import artifacts
from telcorec.io.artifacts import MANIFEST
from telcorec.models.encoding import Vocabulary
from telcorec.models.lightfm.model import LightFMRecommender
from telcorec.models.shards import PARTITION_KEY, one_shard_per_partition, with_shard

log = logging.getLogger(__name__)
SHARD_RESULT = T.StructType([
    T.StructField(Col.MODEL, T.StringType()), T.StructField(Col.SHARD, T.IntegerType()), T.StructField("path", T.StringType()),
    T.StructField("users", T.LongType()), T.StructField("interactions", T.LongType()),
    T.StructField("seconds", T.DoubleType()), T.StructField("data_sha256", T.StringType()),
    T.StructField("best_epoch", T.IntegerType()),
])


def training_rows(interactions: DataFrame, features: DataFrame, cfg: TrainConfig) -> DataFrame:
    train = interactions.filter(F.col(Col.SPLIT) == Split.TRAIN)
    keyed = with_shard(features, cfg)
    return (train.select(Col.SUBSCRIBER_ID, Col.OFFER_IDX, Col.WEIGHT)
            .join(keyed.select(Col.SUBSCRIBER_ID, Col.SHARD, *SUBSCRIBER_CATEGORICALS),
                  on=Col.SUBSCRIBER_ID, how="inner"))


def item_feature_matrix(offers: pd.DataFrame, vocab: Vocabulary) -> sp.csr_matrix:
    """Offer features (categoricals + identity), rows in offer_idx order."""
    offers = offers.sort_values(Col.OFFER_IDX)
    return vocab.encode(offers, identity=offers[Col.OFFER_ID])


def _fingerprint(users: np.ndarray, items: np.ndarray) -> str:
    order = np.lexsort((items, users))
    digest = hashlib.sha256(users[order].tobytes())
    digest.update(items[order].tobytes())
    return digest.hexdigest()


def validation_mask(codes: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Seeded choice of validation subscribers: all pairs of about `share` of them.

    Subscribers are represented by their features only, so a held-out subscriber is scored
    exactly as a new one would be; most hold one or two plans, so holding out single pairs
    per subscriber would leave almost nothing to validate on."""
    users = np.unique(codes)
    digest = pd.util.hash_array(users.astype(np.int64) * 1_000_003 + seed)
    chosen = users[(digest % np.uint64(1 << 32)).astype(np.float64) / float(1 << 32) < share]
    return np.isin(codes, chosen)


@dataclass(frozen=True)
class ShardData:
    """One shard's rows as LightFM matrices: (train without the validation subscribers'
    pairs, validation pairs, all training pairs, user features, item features)."""
    shard: int
    matrices: tuple
    users: int
    interactions: int
    validation_pairs: int
    data_sha256: str


def shard_matrices(pdf: pd.DataFrame, user_vocab: Vocabulary, item_features: sp.csr_matrix,
                   stopping: EarlyStoppingConfig, seed: int, validate: bool) -> ShardData:
    """The matrices one task trains on; with `validate`, the early-stopping validation
    subscribers (validation_mask, seeded by seed + shard) are held out, so the tune stage
    measures its trials on exactly the split the train stage's early stopping uses."""
    shard = int(pdf[Col.SHARD].iloc[0])
    codes, subscriber_ids = pd.factorize(pdf[Col.SUBSCRIBER_ID], sort=True)
    # every row of a subscriber carries the same features: take the first row of each,
    # in code order so that row i of the feature matrix is subscriber code i
    first_rows = pdf.iloc[np.unique(codes, return_index=True)[1]]
    shape = (len(subscriber_ids), item_features.shape[0])
    items = pdf[Col.OFFER_IDX].to_numpy(np.int64)
    weights = pdf[Col.WEIGHT].to_numpy(np.float32)
    held = (validation_mask(codes, stopping.validation_share, seed + shard)
            if validate else np.zeros(len(codes), dtype=bool))
    matrices = (sp.coo_matrix((weights[~held], (codes[~held], items[~held])), shape=shape),
                sp.csr_matrix((np.ones(held.sum(), np.float32), (codes[held], items[held])),
                              shape=shape),
                sp.coo_matrix((weights, (codes, items)), shape=shape),
                user_vocab.encode(first_rows), item_features)
    return ShardData(shard, matrices, shape[0], int(len(codes)), int(held.sum()),
                     _fingerprint(codes.astype(np.int64), items))


def task_threads() -> int:
    """LightFM's OpenMP threads: the cores Spark gave this task, so that threads do not fight."""
    context = TaskContext.get()
    return context.cpus() if context is not None else 1


def _fit_variant(params: dict, matrices: tuple, threads: int,
                 stopping: EarlyStoppingConfig) -> LightFMRecommender:
    """Early stopping picks the epoch count on the validation pairs; the model is then refit
    on all training pairs for that many epochs, so no training pair is wasted."""
    train, validation, everything, user_features, item_features = matrices
    probe = LightFMRecommender(**params).fit(
        train, user_features, item_features, num_threads=threads, validation=validation,
        every=stopping.every, patience=stopping.patience, k=stopping.k)
    if not stopping.every or validation.nnz == 0:
        return probe
    final = LightFMRecommender(**{**params, "epochs": probe.best_epoch}).fit(
        everything, user_features, item_features, num_threads=threads)
    final.history, final.best_epoch = probe.history, probe.best_epoch
    return final


def make_shard_trainer(variants: dict[str, dict], stopping: EarlyStoppingConfig,
                       user_vocab: Vocabulary, item_features: sp.csr_matrix, out_root: str,
                       seed: int):
    """The function each task runs on one shard's rows: fits every variant, writes their
    arrays under out_root/<model>/shard=NNNN, returns one small row per variant."""

    def train(pdf: pd.DataFrame) -> pd.DataFrame:
        data = shard_matrices(pdf, user_vocab, item_features, stopping, seed,
                              validate=bool(stopping.every))
        shard, threads = data.shard, task_threads()
        out = []
        for name, params in variants.items():
            started = time.monotonic()
            model = _fit_variant(params, data.matrices, threads, stopping)
            path = Path(out_root) / name / f"shard={shard:04d}"
            artifacts.save(path, model.arrays(), {
                "model": name, "shard": shard, "params": model.get_params(),
                "users": data.users, "interactions": data.interactions,
                "validation_pairs": data.validation_pairs, "best_epoch": model.best_epoch,
                "history": model.history, "data_sha256": data.data_sha256,
                "epoch_seconds": model.epoch_seconds, "threads": threads,
                "versions": {"lightfm": lightfm.__version__, "numpy": np.__version__,
                             "python": platform.python_version()}})
            out.append({Col.MODEL: name, Col.SHARD: shard, "path": str(path),
                        "users": data.users, "interactions": data.interactions,
                        "seconds": time.monotonic() - started, "data_sha256": data.data_sha256,
                        "best_epoch": model.best_epoch})
        return pd.DataFrame(out)

    return train


def variant_params(cfg: TrainConfig, seed: int,
                   tuned: dict[str, dict] | None = None) -> dict[str, dict]:
    """Hyperparameters per model name: the YAML's, with the tuned knobs of `tuned` on top."""
    return {variant_model_name(v): {**asdict(cfg.variant(v)),
                                    **(tuned or {}).get(variant_model_name(v), {}), "seed": seed}
            for v in cfg.models}


def train_lightfm(rows: DataFrame, offers: pd.DataFrame, user_vocab: Vocabulary,
                  item_vocab: Vocabulary, cfg: TrainConfig, seed: int,
                  out_root: Path, tuned: dict[str, dict] | None = None) -> list[dict]:
    """Train every configured variant on every shard; the driver gets one row per pair."""
    variants = variant_params(cfg, seed, tuned)
    trainer = make_shard_trainer(variants, cfg.early_stopping, user_vocab,
                                 item_feature_matrix(offers, item_vocab), str(out_root), seed)
    results = (one_shard_per_partition(rows, cfg.shards).groupBy(PARTITION_KEY)
               .applyInPandas(trainer, SHARD_RESULT).collect())
    return sorted((r.asDict() for r in results), key=lambda r: (r[Col.MODEL], r[Col.SHARD]))


def write_manifest(out_dir: Path, name: str, run_date: dt.date, cfg: TrainConfig,
                   results: list[dict], user_vocab: Vocabulary, item_vocab: Vocabulary,
                   offers: pd.DataFrame, feature_stats_version: str) -> dict:
    digest = hashlib.sha256("".join(r["data_sha256"] for r in results).encode())
    for r in results:
        meta = json.loads((Path(r["path"]) / artifacts.META).read_text())
        digest.update(meta["arrays_sha256"].encode())
    manifest = {
        "model": name, "model_version": f"{name}-{run_date.isoformat()}-{digest.hexdigest()[:10]}",
        "run_date": run_date.isoformat(), "shards": cfg.shards, "shard_key": cfg.shard_key,
        "shard_paths": {str(r[Col.SHARD]): Path(r["path"]).name for r in results},
        "user_vocabulary": user_vocab.to_json(), "item_vocabulary": item_vocab.to_json(),
        "offer_ids": offers.sort_values(Col.OFFER_IDX)[Col.OFFER_ID].tolist(),
        # the offer features the item vocabulary encodes, so scoring rebuilds the same rows
        "offer_rows": offers.sort_values(Col.OFFER_IDX)[[Col.OFFER_ID, *item_vocab.columns]]
        .to_dict(orient="records"),
        "feature_stats_version": feature_stats_version, "shard_results": results,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    return manifest


