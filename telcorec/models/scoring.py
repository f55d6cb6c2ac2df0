"""Scorers: every model, ensemble and baseline behind one interface, and the top-K kernel.

The score stage (telcorec/publish/passes.py) and the evaluation use them. The offer side (and each shard model's subscriber-feature embeddings: small, sized by the
feature vocabulary, not by subscribers) is broadcast once. Each Spark task turns its
subscribers' features into representations, multiplies them with the offer matrix (BLAS),
masks the excluded offers and keeps the top K with a partial sort. No subscriber x offer cross
join is ever materialised in Spark.

Every model and baseline is a `Scorer` (the contract: telcorec/models/contract.py): given a
pandas batch of subscribers it returns an (n x offers) score matrix in offer_idx order, so
ranking, exclusion and evaluation are shared. `REGISTRY` maps a model name's family to the
class that loads a saved model and to how the score stage finds it in the warehouse.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core.columns import Col
from telcorec.core.config import Config, parse_model_name
from telcorec.core.config import model_names as configured_names
from telcorec.core.exceptions import DataError
from telcorec.io import artifacts
from telcorec.io.artifacts import ENSEMBLE_WEIGHTS
from telcorec.io.warehouse import Warehouse
from telcorec.models.contract import SavedModel, Scorer
from telcorec.models.lightfm.scorer import LightFMScorer
from telcorec.models.topk import top_k_columns

RANKED = T.StructType([
    T.StructField(Col.SUBSCRIBER_ID, T.StringType(), False),
    T.StructField(Col.OFFER_ID, T.StringType(), False),
    T.StructField(Col.RANK, T.IntegerType(), False),
    T.StructField(Col.SCORE, T.DoubleType(), False),
])


def row_minmax(s: np.ndarray) -> np.ndarray:
    low, high = s.min(axis=1, keepdims=True), s.max(axis=1, keepdims=True)
    return (s - low) / np.where(high > low, high - low, 1.0)


def row_ranks(s: np.ndarray) -> np.ndarray:
    """1 = best, per row (ties by offer index)."""
    order = np.argsort(-s, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, s.shape[1] + 1)[None, :], axis=1)
    return ranks


@dataclass
class EnsembleScorer:
    """Several models scored together: `weighted` = sum of weight x per-subscriber min-max
    normalised scores; `rrf` = reciprocal rank fusion, sum of weight / (rrf_k + rank)."""
    name: str
    version: str
    offer_ids: list[str]
    members: list[Scorer]  # LightFM and/or NCF models over the same offer order
    weights: list[float]
    mode: str
    rrf_k: int = 60

    def score(self, batch: pd.DataFrame) -> np.ndarray:
        out = np.zeros((len(batch), len(self.offer_ids)), dtype=np.float64)
        for member, weight in zip(self.members, self.weights):
            s = np.asarray(member.score(batch), dtype=np.float64)
            out += weight * (row_minmax(s) if self.mode == "weighted"
                             else 1.0 / (self.rrf_k + row_ranks(s)))
        return out

    def save(self, directory: Path) -> Path:
        """Each member in a directory named after it, and ensemble.json (mode and weights)."""
        directory.mkdir(parents=True, exist_ok=True)
        for member in self.members:
            member.save(directory / member.name)
        spec = {"model": self.name, "model_version": self.version, "mode": self.mode,
                "rrf_k": self.rrf_k, "offer_ids": list(self.offer_ids),
                "members": [m.name for m in self.members], "weights": list(self.weights)}
        (directory / ENSEMBLE).write_text(json.dumps(spec, indent=2))
        return directory

    @classmethod
    def load(cls, directory: Path) -> "EnsembleScorer":
        path = directory / ENSEMBLE
        if not path.is_file():
            raise DataError(f"no {ENSEMBLE} in {directory}: save the ensemble there first")
        spec = json.loads(path.read_text())
        members = [load_saved(n, directory / n) for n in spec["members"]]
        return cls(spec["model"], spec["model_version"], spec["offer_ids"], members,
                   spec["weights"], spec["mode"], spec["rrf_k"])


ENSEMBLE = "ensemble.json"


def ensemble_of(name: str, members: list[Scorer], weights: list[float],
                rrf_k: int) -> EnsembleScorer:
    """The ensemble `name` (ensemble_weighted, ensemble_rrf) of trained members over one offer
    order; its version names the members' versions and the weights (re-tuned weights make
    another version)."""
    for member in members[1:]:
        if list(member.offer_ids) != list(members[0].offer_ids):
            raise DataError(f"{member.version} ranks offers in another order than "
                            f"{members[0].version}: retrain both")
    names = [m.name for m in members]
    tag = hashlib.sha256(json.dumps(dict(zip(names, weights)), sort_keys=True).encode())
    version = (f"{name}-" + "+".join(m.version.rsplit("-", 1)[-1] for m in members)
               + f"-w{tag.hexdigest()[:8]}")
    return EnsembleScorer(name, version, members[0].offer_ids, members, weights,
                          parse_model_name(name)[1], rrf_k)


@dataclass
class PopularityScorer:
    """Offers ranked by how many subscribers hold them (in the training data for evaluation,
    as their current plan for the control arm of scoring)."""
    offer_ids: list[str]
    counts: np.ndarray
    name: str = "popularity"
    version: str = "popularity"

    def score(self, batch: pd.DataFrame) -> np.ndarray:
        return np.broadcast_to(self.counts.astype(np.float32), (len(batch), len(self.counts)))

    def save(self, directory: Path) -> Path:
        return artifacts.save(directory, {"counts": np.asarray(self.counts)}, {
            "model": self.name, "model_version": self.version, "offer_ids": list(self.offer_ids)})

    @classmethod
    def load(cls, directory: Path) -> "PopularityScorer":
        arrays, meta = artifacts.load(directory)
        return cls(meta["offer_ids"], arrays["counts"], meta["model"], meta["model_version"])


def _excluded_at_neg_inf(s: np.ndarray, exclude: pd.Series | None) -> np.ndarray:
    """`s` with the excluded offers of each row at -inf (a copy only when any are excluded)."""
    if exclude is None or not len(exclude):
        return s
    lengths = exclude.map(lambda a: 0 if a is None else len(a)).to_numpy()
    if not lengths.sum():
        return s
    rows = np.repeat(np.arange(len(s)), lengths)
    cols = np.concatenate([np.asarray(a, dtype=np.int64) for a in exclude if a is not None
                           and len(a)])
    s = s.copy()
    s[rows, cols] = -np.inf
    return s


def masked_keys(score_matrix: np.ndarray, exclude: pd.Series | None) -> np.ndarray:
    """Ranking keys: excluded offers at -inf, and ties broken by the lower offer index (scores
    nudged down by index x a step far below any score difference a model produces: 1e-9 of
    the scores' range or magnitude), so the same scores always give the same ranking. The
    magnitude counts because a step below float64's resolution there would vanish: a model
    that scores every offer 0.5 (the content rules on data without attributes) would then rank
    every held-out offer first."""
    s = _excluded_at_neg_inf(np.array(score_matrix, dtype=np.float64), exclude)
    finite = s[np.isfinite(s)]
    spread = float(finite.max() - finite.min()) if finite.size else 0.0
    magnitude = float(np.abs(finite).max()) if finite.size else 0.0
    step = 1e-9 * max(spread, magnitude, 1e-6) / s.shape[1]
    return s - np.arange(s.shape[1]) * step


def top_k(score_matrix: np.ndarray, exclude: pd.Series | None, k: int) -> tuple[np.ndarray, ...]:
    """Row-wise top k (indices, scores), best first, equal scores by the lower offer index;
    excluded offers never appear (a row with fewer eligible offers ends in -inf scores); NaN
    ranks after every number, before the excluded offers, and keeps its NaN score. float32
    scores stay float32 (no widened copy of a batch x catalogue matrix)."""
    s = np.asarray(score_matrix)
    if s.dtype.kind != "f":
        s = s.astype(np.float64)
    masked = _excluded_at_neg_inf(s, exclude)
    nan = np.isnan(masked)
    # NaN (a broken model) below every number, above the excluded offers' -inf
    key = np.where(nan, np.finfo(s.dtype).min, masked) if nan.any() else masked
    idx = top_k_columns(key, k)
    best = np.take_along_axis(masked, idx, axis=1)
    return idx, np.where(np.take_along_axis(nan, idx, axis=1), np.nan, best)


def rank_frame(batch: pd.DataFrame, scorer: Scorer, k: int) -> pd.DataFrame:
    """Top-k rows for a batch. A NaN score is ranked last but kept (as NaN) in the output, so
    the quality gate sees it and refuses the run instead of publishing a silently odd ranking."""
    exclude = batch[Col.EXCLUDE_IDX] if Col.EXCLUDE_IDX in batch else None
    idx, best = top_k(np.asarray(scorer.score(batch), dtype=np.float64), exclude, k)
    keep = ~np.isneginf(best)
    offer_ids = np.asarray(scorer.offer_ids, dtype=object)
    return pd.DataFrame({
        Col.SUBSCRIBER_ID: np.repeat(batch[Col.SUBSCRIBER_ID].to_numpy(), idx.shape[1])[keep.ravel()],
        Col.OFFER_ID: offer_ids[idx[keep]],
        Col.RANK: np.tile(np.arange(1, idx.shape[1] + 1, dtype=np.int32), len(batch))[keep.ravel()],
        Col.SCORE: best[keep],
    })


def recommend(subscribers: DataFrame, scorer: Scorer, k: int) -> DataFrame:
    """Top-k offers for every row of `subscribers` (one row per subscriber), on executors."""
    broadcast = subscribers.sparkSession.sparkContext.broadcast(scorer)

    def ranked(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        local = broadcast.value
        for batch in batches:
            yield rank_frame(batch, local, k)

    return subscribers.mapInPandas(ranked, RANKED)


def trained_on(wh: Warehouse, run_date: dt.date, name: str) -> dt.date:
    """The newest run date at or before `run_date` with a trained `name` (train.every_days > 1
    leaves days without one); the run date itself when none is found (the load then fails
    naming that directory)."""
    found = [dt.date.fromisoformat(p.parent.name.split("=", 1)[1])
             for p in wh.models_root(run_date).parent.glob(f"run_date=*/{name}") if p.is_dir()]
    earlier = [d for d in found if d <= run_date]
    return max(earlier) if earlier else run_date


def _trained(wh: Warehouse, cfg: Config, run_date: dt.date, name: str) -> Scorer:
    """A trained model, the newest at or before the run date (`trained_on`)."""
    return load_saved(name, wh.models(trained_on(wh, run_date, name), name))


def _configured_ensemble(wh: Warehouse, cfg: Config, run_date: dt.date,
                         name: str) -> EnsembleScorer:
    """An ensemble of the trained models that have a weight in ensemble.weights (or, with
    ensemble.tune_weights, the weights the tune stage found for this mode)."""
    trained = set(model_names(cfg))
    names = sorted(n for n in cfg.ensemble.weights if n in trained)
    members = [load_scorer(wh, cfg, run_date, n) for n in names]
    mode, weights = parse_model_name(name)[1], cfg.ensemble.weights
    if cfg.ensemble.tune_weights:  # found on validation by the tune stage (telcorec/models/lightfm/tuning.py)
        tuned = wh.models_root(run_date) / ENSEMBLE_WEIGHTS
        found = json.loads(tuned.read_text())["modes"] if tuned.is_file() else {}
        if mode not in found:
            raise DataError(f"ensemble.tune_weights is true but {tuned} holds no {mode} "
                            f"weights: run the tune stage for run date {run_date} first, or "
                            "set ensemble.tune_weights: false to use ensemble.weights")
        weights = found[mode]["weights"]
    try:
        return ensemble_of(name, members, [weights[n] for n in names], cfg.ensemble.rrf_k)
    except DataError as exc:
        raise DataError(f"{exc} for run date {run_date}") from None


def _ncf_scorer() -> type:
    from telcorec.models.ncf.scorer import NCFScorer  # torch is imported only when NCF is used
    return NCFScorer


@dataclass(frozen=True)
class Family:
    """A model family of the name grammar: the class that saves and loads one model, and how
    the score and evaluate stages get the model of a run date from the warehouse."""
    saved: Callable[[], type[SavedModel]]
    from_warehouse: Callable[[Warehouse, Config, dt.date, str], Scorer]


REGISTRY: dict[str, Family] = {
    "lightfm": Family(lambda: LightFMScorer, _trained),
    "ncf": Family(_ncf_scorer, _trained),
    "ensemble": Family(lambda: EnsembleScorer, _configured_ensemble),
}


def load_scorer(wh: Warehouse, cfg: Config, run_date: dt.date, name: str) -> Scorer:
    """The model `name` for `run_date`: a trained LightFM variant or NCF model, or an ensemble
    of the trained models; a name outside the grammar is refused, naming the known ones."""
    return REGISTRY[parse_model_name(name)[0]].from_warehouse(wh, cfg, run_date, name)


def load_saved(name: str, directory: Path) -> SavedModel:
    """The model `name` saved under `directory` by its class's `save`."""
    return REGISTRY[parse_model_name(name)[0]].saved().load(directory)


def model_names(cfg: Config) -> list[str]:
    """Every model this config trains or combines, in a stable order."""
    return configured_names(cfg.train, cfg.ensemble, cfg.ncf)


def with_subscriber_index(features: DataFrame, index: DataFrame) -> DataFrame:
    """`subscriber_idx` beside the features, for models with per-subscriber ID embeddings (NCF
    with ncf.subscriber_ids); -1 for a subscriber the index lacks, which such a model scores
    from its features alone. Feature-only models ignore the column."""
    idx = index.select(Col.SUBSCRIBER_ID, Col.SUBSCRIBER_IDX)
    return (features.join(idx, on=Col.SUBSCRIBER_ID, how="left")
            .withColumn(Col.SUBSCRIBER_IDX, F.coalesce(Col.SUBSCRIBER_IDX, F.lit(-1))))
