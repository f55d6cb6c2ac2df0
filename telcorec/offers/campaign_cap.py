"""The campaign cap: at most `limit` subscribers get any one offer, those who rank it highest.

Within an offer, candidate rows compete in the order (rank for the subscriber ascending, final
score descending, subscriber id ascending): the slots go to the subscribers who would see the
offer highest, and a spare candidate below rank K takes a slot only when fewer than `limit`
rows want the offer within their top K. The order is total (a subscriber holds an offer once),
so the choice is reproducible. The cap is never exceeded; an offer may end a little under it
when spare rows that held a slot are not published.

No window over all candidate rows is needed to apply it. Each offer's `limit`-th row in that
order (its threshold) is found from the narrow candidate rows (PLAN) in two small steps: the
row counts per (offer, rank) give the rank the limit falls in, and only the rows of that one
rank per offer are ordered by score and id. The thresholds, one per offer, are broadcast; a task
admits a candidate row when it does not come after its offer's threshold, and so the rows that
are published can be computed, explained and written in one pass (telcorec/publish/passes.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core.columns import Col
from telcorec.core.config import CampaignCapConfig

PLAN = T.StructType([
    T.StructField(Col.SUBSCRIBER_ID, T.StringType(), False),
    T.StructField(Col.OFFER_IDX, T.IntegerType(), False),
    T.StructField(Col.RANK, T.IntegerType(), False),
    T.StructField(Col.SCORE, T.DoubleType(), False),
])
_UNCAPPED = np.iinfo(np.int64).max  # threshold rank of an offer that fewer rows want than the cap


def cap_limit(cfg: CampaignCapConfig, subscribers: int) -> int | None:
    """Subscribers any one offer may reach in this run; None when no cap is configured."""
    if not cfg.enabled:
        return None
    limits = [math.floor(cfg.max_share * subscribers)] if cfg.max_share < 1 else []
    limits += [cfg.max_subscribers] if cfg.max_subscribers > 0 else []
    return min(limits)


def _after(score: np.ndarray, than: np.ndarray) -> np.ndarray:
    """`score` sorts before `than` in Spark's descending order (NaN is the largest double)."""
    return (np.isnan(score) & ~np.isnan(than)) | (score > than)


def _same(score: np.ndarray, than: np.ndarray) -> np.ndarray:
    return (np.isnan(score) & np.isnan(than)) | (score == than)


@dataclass(frozen=True)
class Thresholds:
    """Per offer index, the last candidate row admitted: its rank, final score and subscriber
    id (rank _UNCAPPED: every row of the offer is admitted; rank 0: none is)."""
    limit: int
    rank: np.ndarray
    score: np.ndarray
    subscriber: np.ndarray  # object (str)
    capped_rows: int        # candidate rows the cap removes: sum of max(0, wanted - limit)
    expected: np.ndarray    # per offer, candidate rows admitted: min(wanted, limit)

    @property
    def size(self) -> int:
        return len(self.rank)

    def admitted(self, offers: np.ndarray, ranks: np.ndarray, scores: np.ndarray,
                 subscribers: np.ndarray) -> np.ndarray:
        """Per candidate row (1-d arrays alike): it is at or before its offer's threshold."""
        rank, score = self.rank[offers], self.score[offers]
        at_rank = ranks == rank
        tied = at_rank & _same(scores, score)
        out = (ranks < rank) | (at_rank & _after(scores, score))
        if tied.any():  # only rows tied with a threshold on rank and score compare their ids
            out[tied] = subscribers[tied] <= self.subscriber[offers][tied]
        return out

    def check(self, admitted: dict[int, int]) -> None:
        """Refuse when the rows a pass admitted per offer are not what the thresholds admit
        (scores recomputed differently from the pass that found them)."""
        got = np.zeros(self.size, dtype=np.int64)
        for offer, n in admitted.items():
            got[offer] = n
        wrong = np.flatnonzero(got != self.expected)
        if wrong.size:
            raise RuntimeError(
                f"the campaign cap admitted other rows than its thresholds allow for "
                f"{wrong.size} offers (offer index {int(wrong[0])}: {int(got[wrong[0]])} "
                f"rows, expected {int(self.expected[wrong[0]])}): the scores were not "
                "reproduced between the two passes over the subscribers; nothing was published")


def thresholds(plan: DataFrame, limit: int, n_offers: int) -> Thresholds:
    """The thresholds of the candidate rows `plan` (PLAN columns; pass a persisted frame, it
    is read twice): two small Spark jobs, each returning at most offers x depth rows."""
    counts = np.zeros((n_offers, 1), dtype=np.int64)
    for row in plan.groupBy(Col.OFFER_IDX, Col.RANK).count().collect():
        if row[Col.RANK] >= counts.shape[1]:
            counts = np.pad(counts, ((0, 0), (0, row[Col.RANK] + 1 - counts.shape[1])))
        counts[row[Col.OFFER_IDX], row[Col.RANK]] = row["count"]
    wanted = counts.sum(axis=1)
    cumulative = np.cumsum(counts, axis=1)
    rank = np.full(n_offers, _UNCAPPED, dtype=np.int64)
    score = np.full(n_offers, np.nan)
    subscriber = np.full(n_offers, "", dtype=object)
    over = np.flatnonzero(wanted > limit)
    if limit == 0:
        rank[over] = 0
    elif over.size:
        # the rank the limit-th row is in, and how many rows of that rank still get a slot
        boundary = np.argmax(cumulative[over] >= limit, axis=1)
        room = limit - (cumulative[over, boundary] - counts[over, boundary])
        rank[over] = boundary
        last = _last_admitted(plan, over, boundary, room)
        for offer, (value, who) in last.items():
            score[offer], subscriber[offer] = value, who
    return Thresholds(limit, rank, score, subscriber,
                      int(np.maximum(wanted - limit, 0).sum()), np.minimum(wanted, limit))


def _last_admitted(plan: DataFrame, offers: np.ndarray, ranks: np.ndarray,
                   room: np.ndarray) -> dict[int, tuple[float, str]]:
    """Per capped offer, (score, subscriber id) of the room-th row at its boundary rank."""
    spark = plan.sparkSession
    cut = spark.createDataFrame(
        [(int(o), int(r), int(n)) for o, r, n in zip(offers, ranks, room)],
        T.StructType([T.StructField(Col.OFFER_IDX, T.IntegerType(), False),
                      T.StructField(Col.RANK, T.IntegerType(), False),
                      T.StructField("room", T.LongType(), False)]))
    order = (Window.partitionBy(Col.OFFER_IDX)
             .orderBy(F.col(Col.SCORE).desc(), F.col(Col.SUBSCRIBER_ID))
             .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    at_boundary = plan.join(F.broadcast(cut), on=[Col.OFFER_IDX, Col.RANK], how="inner")
    last = (at_boundary.withColumn("position", F.row_number().over(order))
            .where(F.col("position") == F.col("room")).collect())  # one row per capped offer
    return {r[Col.OFFER_IDX]: (r[Col.SCORE], r[Col.SUBSCRIBER_ID]) for r in last}
