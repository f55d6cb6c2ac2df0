"""Offline ranking metrics for every scored subscriber, computed on executors.

Each Spark task scores its subscribers, finds the full-ranking position of every held-out offer
(ties broken by offer index, as in production ranking) and the top-K list, and turns them into
one row of metrics per subscriber. Accuracy metrics all derive from those positions:

- precision@k = hits/k, recall@k = hits/|held out|, hit_rate@k = 1 if any hit;
- map@k: average precision, sum over hits at rank r of (hits up to r)/r, / min(|held out|, k);
- ndcg@k: sum over hits of 1/log2(r+1), / the ideal sum for min(|held out|, k) hits;
- mrr: 1 / rank of the best held-out offer (no cutoff); auc: share of (held out, other
  eligible offer) pairs ranked the right way round.
Beyond accuracy, from the top-K list: diversity@k (1 - mean pairwise cosine similarity of the
listed offers' feature vectors), novelty@k (mean -log2 popularity share) and, aggregated in
Spark, coverage@k (share of the catalogue in anyone's list). Slow reference versions of every
formula live in tests/evaluation/test_offline_metrics.py.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core.columns import Col
from telcorec.models.scoring import Scorer, masked_keys

AT_K = ("precision", "recall", "hit_rate", "map", "ndcg", "diversity", "novelty")
NO_CUTOFF = ("mrr", "auc")  # written with k = 0
HELD_IDX = "held_idx"
COHORT = "cohort"
HISTORY_GROUP = "history_group"  # a subscriber's history length: history_0, history_1-2, history_3+


def history_groups(histories: pd.Series) -> np.ndarray:
    """history_0 / history_1-2 / history_3+ by the number of offers in each history."""
    n = histories.map(lambda h: 0 if h is None else len(h)).to_numpy()
    return np.where(n == 0, "history_0", np.where(n <= 2, "history_1-2", "history_3+"))
TOP_IDX = "top_idx"


def metric_columns(ks: tuple[int, ...]) -> list[str]:
    return [f"{m}@{k}" for k in ks for m in AT_K] + list(NO_CUTOFF)


def held_out_ranks(keys: np.ndarray, held: pd.Series) -> pd.DataFrame:
    """Full-ranking position (1 = best) of every held-out offer, one row per (row, offer)."""
    lengths = held.map(len).to_numpy()
    rows = np.repeat(np.arange(len(held)), lengths)
    items = np.concatenate([np.asarray(h, dtype=np.int64) for h in held]) if rows.size else \
        np.empty(0, np.int64)
    own = keys[rows, items]
    rank = 1 + (keys[rows] > own[:, None]).sum(axis=1)
    return pd.DataFrame({"row": rows, "rank": rank})


def accuracy(ranks: pd.DataFrame, n_rows: int, candidates: np.ndarray,
             ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Per-row accuracy metrics from held-out ranks (rows without held-out offers get NaN)."""
    r = ranks.sort_values(["row", "rank"]).reset_index(drop=True)
    rows, rank = r["row"].to_numpy(), r["rank"].to_numpy().astype(np.float64)
    m = np.bincount(rows, minlength=n_rows).astype(np.float64)
    position = r.groupby("row").cumcount().to_numpy() + 1.0  # 1 = best held-out offer
    out: dict[str, np.ndarray] = {}

    def per_row(values: np.ndarray) -> np.ndarray:
        return np.bincount(rows, weights=values, minlength=n_rows)

    with np.errstate(divide="ignore", invalid="ignore"):
        for k in ks:
            hit = rank <= k
            hits = per_row(hit.astype(np.float64))
            ideal = np.array([np.sum(1 / np.log2(np.arange(2, int(min(x, k)) + 2))) for x in m])
            out[f"precision@{k}"] = np.where(m > 0, hits / k, np.nan)
            out[f"recall@{k}"] = np.where(m > 0, hits / m, np.nan)
            out[f"hit_rate@{k}"] = np.where(m > 0, (hits > 0).astype(np.float64), np.nan)
            out[f"map@{k}"] = np.where(m > 0, per_row(np.where(hit, position / rank, 0.0))
                                       / np.minimum(m, k), np.nan)
            out[f"ndcg@{k}"] = np.where(m > 0, per_row(np.where(hit, 1 / np.log2(rank + 1), 0.0))
                                        / ideal, np.nan)
        best = np.full(n_rows, np.inf)
        np.minimum.at(best, rows, rank)
        out["mrr"] = np.where(m > 0, 1.0 / best, np.nan)
        negatives = candidates[rows] - m[rows]
        below = candidates[rows] - rank - (m[rows] - position)
        auc = per_row(np.where(negatives > 0, below / negatives, np.nan))
        out["auc"] = np.where((m > 0) & (candidates > m), auc / m, np.nan)
    return out


def beyond_accuracy(top: np.ndarray, item_vectors: np.ndarray, popularity_share: np.ndarray,
                    k: int) -> dict[str, np.ndarray]:
    """diversity@k and novelty@k of each row's top-k list (shorter lists use what they have)."""
    lists = top[:, :k]
    valid = lists >= 0
    safe = np.where(valid, lists, 0)
    g = item_vectors[safe] * valid[..., None]
    sims = np.einsum("nif,njf->nij", g, g)
    n = valid.sum(axis=1).astype(np.float64)
    pairs = n * (n - 1)
    off_diagonal = sims.sum(axis=(1, 2)) - np.einsum("nii->n", sims)
    with np.errstate(divide="ignore", invalid="ignore"):
        diversity = np.where(pairs > 0, 1 - off_diagonal / pairs, np.nan)
        info = np.where(valid, -np.log2(popularity_share[safe]), 0.0)
        novelty = np.where(n > 0, info.sum(axis=1) / n, np.nan)
    return {f"diversity@{k}": diversity, f"novelty@{k}": novelty}


def evaluate_frame(batch: pd.DataFrame, scorer: Scorer, ks: tuple[int, ...],
                   item_vectors: np.ndarray, popularity_share: np.ndarray) -> pd.DataFrame:
    """One row of metrics per subscriber of the batch, plus its top-K offer indices."""
    exclude = batch[Col.EXCLUDE_IDX] if Col.EXCLUDE_IDX in batch else None
    keys = masked_keys(np.asarray(scorer.score(batch), dtype=np.float64), exclude)
    k_max = min(max(ks), keys.shape[1])
    top = np.argpartition(-keys, k_max - 1, axis=1)[:, :k_max]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(keys, top, 1), axis=1), 1)
    top = np.where(np.isneginf(np.take_along_axis(keys, top, 1)), -1, top)
    candidates = np.isfinite(keys).sum(axis=1).astype(np.float64)
    out = accuracy(held_out_ranks(keys, batch[HELD_IDX]), len(batch), candidates, ks)
    for k in ks:
        out.update(beyond_accuracy(top, item_vectors, popularity_share, k))
    frame = pd.DataFrame({Col.SUBSCRIBER_ID: batch[Col.SUBSCRIBER_ID].to_numpy(),
                          Col.SEGMENT: batch[Col.SEGMENT].to_numpy(),
                          COHORT: batch[COHORT].to_numpy(),
                          # a batch without histories (a scorer tested alone) is in no group
                          HISTORY_GROUP: (history_groups(batch[Col.HISTORY_IDX])
                                          if Col.HISTORY_IDX in batch else None), **out})
    frame[TOP_IDX] = list(top.astype(np.int32))
    return frame


def per_subscriber(subscribers: DataFrame, scorer: Scorer, ks: tuple[int, ...],
                   item_vectors: np.ndarray, popularity_share: np.ndarray) -> DataFrame:
    """Metrics of every subscriber row (needs held_idx, exclude_idx, history_idx, segment and
    cohort columns)."""
    schema = T.StructType(
        [T.StructField(Col.SUBSCRIBER_ID, T.StringType()), T.StructField(Col.SEGMENT, T.StringType()),
         T.StructField(COHORT, T.StringType()), T.StructField(HISTORY_GROUP, T.StringType())]
        + [T.StructField(c, T.DoubleType()) for c in metric_columns(ks)]
        + [T.StructField(TOP_IDX, T.ArrayType(T.IntegerType()))])
    shared = subscribers.sparkSession.sparkContext.broadcast(
        (scorer, item_vectors, popularity_share))

    def evaluate(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        local, vectors, share = shared.value
        for batch in batches:
            yield evaluate_frame(batch, local, ks, vectors, share)

    return subscribers.mapInPandas(evaluate, schema)


def exact_mean(column: str | Column) -> Column:
    """The mean of a double column, bit-identical however the rows are partitioned.

    F.avg adds doubles in the order partial sums reach the final aggregation, which changes from
    run to run and with spark.sql.shuffle.partitions: the metrics then differed in their last
    bits (up to 7e-15) between two identical runs. Decimal addition is exact, so its order does
    not matter; 18 decimals keep every digit a metric needs."""
    value = F.col(column) if isinstance(column, str) else column
    return F.avg(value.cast(T.DecimalType(38, 18))).cast(T.DoubleType())


def summarise(rows: DataFrame, ks: tuple[int, ...], catalogue_size: int,
              groups: dict[str, str]) -> list[tuple[str, int, str, float]]:
    """(metric, k, group, value) averaged per group; `groups` maps a label column to use for
    each group family ("all" -> constant). Coverage is counted over the union of lists."""
    out = []
    for label, column in groups.items():
        key = F.lit("all") if column == "all" else F.col(column)
        grouped = rows.withColumn("_group", key)
        aggs = [exact_mean(c).alias(c) for c in metric_columns(ks)]
        for row in grouped.groupBy("_group").agg(*aggs).collect():  # one row per group
            if row["_group"] is None:
                continue
            for name in metric_columns(ks):
                metric, _, k = name.partition("@")
                if row[name] is not None:
                    out.append((metric, int(k) if k else 0, str(row["_group"]), float(row[name])))
        for k in ks:
            listed = (grouped.select("_group", F.explode(F.slice(TOP_IDX, 1, k)).alias("i"))
                      .where(F.col("i") >= 0).groupBy("_group").agg(F.countDistinct("i").alias("n")))
            for row in listed.where(F.col("_group").isNotNull()).collect():  # one row per group
                out.append(("coverage", k, str(row["_group"]), row["n"] / catalogue_size))
    return out
