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
import sys
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
from telcorec.io.artifacts import MANIFEST, TUNED_BEST
from telcorec.io.warehouse import Warehouse
from telcorec.models.encoding import Vocabulary
from telcorec.models.lightfm import history, loo
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

    For the features-only representation a held-out subscriber is scored exactly as a new one
    would be; most hold one or two plans, so holding out single pairs per subscriber would
    leave almost nothing to validate on."""
    users = np.unique(codes)
    digest = pd.util.hash_array(users.astype(np.int64) * 1_000_003 + seed)
    chosen = users[(digest % np.uint64(1 << 32)).astype(np.float64) / float(1 << 32) < share]
    return np.isin(codes, chosen)


def one_pair_each(codes: np.ndarray, items: np.ndarray, chosen: np.ndarray,
                  seed: int) -> np.ndarray:
    """Of the `chosen` pairs, one seeded pair per subscriber who has two or more: the
    validation pair of a history-aware model (the subscriber's other pairs are its history)."""
    key = pd.util.hash_array(codes.astype(np.int64) * 1_000_003 + items * 7_919 + seed)
    order = np.lexsort((key, codes))
    first = np.r_[True, codes[order][1:] != codes[order][:-1]]
    counts = np.bincount(codes, minlength=int(codes.max()) + 1 if len(codes) else 0)
    pick = np.zeros(len(codes), dtype=bool)
    pick[order[first]] = True
    return pick & chosen & (counts[codes] >= 2)


@dataclass(frozen=True)
class Fit:
    """What one LightFM fit takes: interactions (rows = user rows) and their user features."""
    interactions: sp.coo_matrix
    user_features: sp.csr_matrix


@dataclass(frozen=True)
class ShardData:
    """One shard's rows as LightFM matrices: `probe` without the validation pairs, the
    validation pairs (`validation`, rows aligned with probe's user rows) with the offers not to
    rank for them (`exclude`), and `full`, every training pair, for the refit."""
    shard: int
    probe: Fit
    validation: sp.csr_matrix
    exclude: sp.csr_matrix
    full: Fit
    item_features: sp.csr_matrix
    users: int
    interactions: int
    validation_pairs: int
    data_sha256: str


def _features_only(codes, items, weights, held, feature_rows, n_items) -> tuple:
    """One row per subscriber; validation subscribers' pairs held out whole."""
    shape = (feature_rows.shape[0], n_items)
    train = sp.coo_matrix((weights[~held], (codes[~held], items[~held])), shape=shape)
    validation = sp.csr_matrix((np.ones(held.sum(), np.float32), (codes[held], items[held])),
                               shape=shape)
    full = sp.coo_matrix((weights, (codes, items)), shape=shape)
    return (Fit(train, feature_rows), validation, train.tocsr(), Fit(full, feature_rows))


def _with_history(codes, items, weights, held, feature_rows, n_items, weight, seed) -> tuple:
    """Leave-one-out rows (telcorec/models/lightfm/history.py): one row per training pair, its
    history the subscriber's other offers (whole, or capped to a token budget:
    telcorec/models/lightfm/loo.py). The validation pairs (`held`) are in no probe row nor
    history; each gets a row of its own whose history is the subscriber's other offers, as
    scoring sees it, and those offers are excluded from its ranking."""
    def rows(c, i, w):
        user_features = loo.loo_user_matrix(feature_rows, c, i, n_items, weight,
                                            loo.history_cap(c), seed)
        fitted = sp.coo_matrix((w, (np.arange(len(c)), i)), shape=(len(c), n_items))
        return fitted, user_features

    full = Fit(*rows(codes, items, weights))
    keep = ~held
    fitted, probe_features = rows(codes[keep], items[keep], weights[keep])
    held_codes = codes[held]
    kept_codes, kept_items = codes[keep], items[keep]
    order = np.argsort(kept_codes, kind="stable")
    bounds = np.searchsorted(kept_codes[order], held_codes, side="left"), np.searchsorted(
        kept_codes[order], held_codes, side="right")
    contexts = [kept_items[order[lo:hi]] for lo, hi in zip(*bounds)]
    n_probe, n_val = fitted.shape[0], len(held_codes)
    val_rows = np.arange(n_probe, n_probe + n_val)
    shape = (n_probe + n_val, n_items)
    user_features = sp.vstack([probe_features, history.user_matrix(
        feature_rows[held_codes], contexts, n_items, weight)], format="csr")
    probe = Fit(sp.coo_matrix((fitted.data, (fitted.row, fitted.col)), shape=shape),
                user_features)
    validation = sp.csr_matrix((np.ones(n_val, np.float32), (val_rows, items[held])), shape=shape)
    lengths = np.fromiter((len(x) for x in contexts), dtype=np.int64, count=n_val)
    exclude = sp.csr_matrix(
        (np.ones(lengths.sum(), np.float32),
         (np.repeat(val_rows, lengths),
          np.concatenate(contexts).astype(np.int64) if n_val else np.empty(0, np.int64))),
        shape=shape)
    return probe, validation, exclude, full


def shard_matrices(pdf: pd.DataFrame, user_vocab: Vocabulary, item_features: sp.csr_matrix,
                   stopping: EarlyStoppingConfig, seed: int, validate: bool,
                   history_weight: float | None = None) -> ShardData:
    """The matrices one task trains on; with `validate`, the early-stopping validation pairs
    (seeded by seed + shard) are held out, so the tune stage measures its trials on exactly the
    split the train stage's early stopping uses. `history_weight`: None for the features-only
    representation, else the weight of the history tokens (a history-aware model)."""
    shard = int(pdf[Col.SHARD].iloc[0])
    # rows in a fixed order: they arrive in whatever order the shuffle delivered them, and
    # LightFM visits the pairs in matrix order (shuffled by its seeded generator)
    pdf = pdf.sort_values([Col.SUBSCRIBER_ID, Col.OFFER_IDX], kind="stable")
    codes, subscriber_ids = pd.factorize(pdf[Col.SUBSCRIBER_ID], sort=True)
    # every row of a subscriber carries the same features: take the first row of each,
    # in code order so that row i of the feature matrix is subscriber code i
    feature_rows = user_vocab.encode(pdf.iloc[np.unique(codes, return_index=True)[1]])
    items = pdf[Col.OFFER_IDX].to_numpy(np.int64)
    weights = pdf[Col.WEIGHT].to_numpy(np.float32)
    n_items = item_features.shape[0]
    held = (validation_mask(codes, stopping.validation_share, seed + shard)
            if validate else np.zeros(len(codes), dtype=bool))
    if history_weight is None:
        parts = _features_only(codes, items, weights, held, feature_rows, n_items)
    else:
        held = one_pair_each(codes, items, held, seed + shard)
        parts = _with_history(codes, items, weights, held, feature_rows, n_items,
                              history_weight, seed + shard)
    probe, validation, exclude, full = parts
    return ShardData(shard, probe, validation, exclude, full, item_features,
                     len(subscriber_ids), int(len(codes)), int(held.sum()),
                     _fingerprint(codes.astype(np.int64), items))


def task_threads() -> int:
    """LightFM's OpenMP threads: the cores Spark gave this task, so that threads do not fight."""
    context = TaskContext.get()
    return context.cpus() if context is not None else 1


# Below this share of the pairs held out for validation, the refit is skipped: it would repeat
# the whole fit to learn from a handful of pairs. A history-aware model holds out one pair of
# each validation subscriber (0.06% of MovieLens-1M's pairs); a features-only one holds out all
# pairs of a share of subscribers, which the refit does win back.
REFIT_MIN_SHARE = 0.01


def _fit_variant(params: dict, data: ShardData, threads: int,
                 stopping: EarlyStoppingConfig) -> LightFMRecommender:
    """Early stopping picks the epoch count on the validation pairs; the model is then refit
    on all training pairs for that many epochs, so no training pair is wasted (unless they
    are too few to be worth a second fit: REFIT_MIN_SHARE)."""
    probe = LightFMRecommender(**params).fit(
        data.probe.interactions, data.probe.user_features, data.item_features,
        num_threads=threads, validation=data.validation, exclude=data.exclude,
        every=stopping.every, patience=stopping.patience, k=stopping.k)
    if (not stopping.every or data.validation.nnz == 0
            or data.validation_pairs < REFIT_MIN_SHARE * data.interactions):
        return probe
    final = LightFMRecommender(**{**params, "epochs": probe.best_epoch}).fit(
        data.full.interactions, data.full.user_features, data.item_features,
        num_threads=threads)
    final.history, final.best_epoch = probe.history, probe.best_epoch
    return final


def _task_logging(level: int) -> None:
    # a Python worker that Spark started logs nowhere until told: its stderr reaches the
    # driver's console in local mode and the executor's log on a cluster
    root = logging.getLogger("telcorec")
    if not root.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s lightfm-task[pid %(process)d] %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
        root.setLevel(level)


def make_shard_trainer(variants: dict[str, dict], stopping: EarlyStoppingConfig,
                       user_vocab: Vocabulary, item_features: sp.csr_matrix, out_root: str,
                       seed: int, history_weight: float | None):
    """The function each task runs on one shard's rows: fits every variant, writes their
    arrays under out_root/<model>/shard=NNNN, returns one small row per variant."""
    level = logging.getLogger("telcorec").getEffectiveLevel()

    def train(pdf: pd.DataFrame) -> pd.DataFrame:
        _task_logging(level)
        started = time.monotonic()
        data = shard_matrices(pdf, user_vocab, item_features, stopping, seed,
                              validate=bool(stopping.every), history_weight=history_weight)
        shard, threads = data.shard, task_threads()
        log.info("shard %d: %d subscribers, %d pairs, %d user tokens in %d rows; matrices "
                 "built in %.1f s", shard, data.users, data.interactions,
                 data.full.user_features.nnz, data.full.user_features.shape[0],
                 time.monotonic() - started)
        out = []
        for name, params in variants.items():
            started = time.monotonic()
            log.info("shard %d: fitting %s (%d epochs at most, %d threads)", shard, name,
                     params["epochs"], threads)
            model = _fit_variant(params, data, threads, stopping)
            log.info("shard %d: %s fitted in %.1f s (best epoch %d)", shard, name,
                     time.monotonic() - started, model.best_epoch)
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


def train_lightfm(rows: DataFrame, offers: pd.DataFrame, user_vocab: Vocabulary,
                  item_vocab: Vocabulary, cfg: TrainConfig, seed: int,
                  out_root: Path, tuned: dict[str, dict] | None = None) -> list[dict]:
    """Train every configured variant on every shard; the driver gets one row per pair."""
    variants = variant_params(cfg, seed, tuned)
    trainer = make_shard_trainer(variants, cfg.early_stopping, user_vocab,
                                 item_feature_matrix(offers, item_vocab), str(out_root), seed,
                                 cfg.history)
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
        # None: features only; else the weight of the history tokens (models/lightfm/history.py)
        "history_weight": cfg.history,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    return manifest




def fit_local(rows: pd.DataFrame, offers: pd.DataFrame, user_vocab: Vocabulary,
              item_vocab: Vocabulary, cfg: TrainConfig, seed: int, out_root: Path,
              run_date: dt.date) -> list[str]:
    """Train every configured variant in this process on pandas `training_rows` (a shard
    column included): each shard by the function a Spark task of `train_lightfm` runs, then
    the manifest, so out_root/<model> is a model directory as the train stage writes it. For
    small data (tests, a notebook); the names of the models written come back."""
    trainer = make_shard_trainer(variant_params(cfg, seed), cfg.early_stopping, user_vocab,
                                 item_feature_matrix(offers, item_vocab), str(out_root), seed,
                                 cfg.history)
    results = pd.concat([trainer(part) for _, part in rows.groupby(Col.SHARD, sort=True)])
    names = sorted(results[Col.MODEL].unique())
    for name in names:
        mine = results[results[Col.MODEL] == name].sort_values(Col.SHARD)
        write_manifest(out_root / name, name, run_date, cfg, mine.to_dict(orient="records"),
                       user_vocab, item_vocab, offers, feature_stats_version="local")
    return names
