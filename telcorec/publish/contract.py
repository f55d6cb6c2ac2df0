"""The output contract of `offers`, enforced on every publish before anything is committed.

Rules (each violation is counted; the message names the rule and the count, never a row value,
since rows carry subscriber ids):
- `offer_in_catalogue`: every offer id is one of the run date's active catalogue;
- `rank_in_range`: every rank is within 1..K;
- `ranks_unique_and_contiguous`: per subscriber the ranks are exactly 1..n (n <= K rows), so no
  two rows share a rank and none is skipped;
- `score_finite`: no NaN or infinite score.

`Writer.replace_partition(..., contract=...)` (telcorec/io/writer.py) calls `enforce` on the
DataFrame it is about to write; a violation raises `PublishError` and the table keeps its
version. The score stage, which writes its rows in the same tasks that compute them, counts the
same rules per written batch (`batch_violations`, every row of a subscriber in one batch) and
calls `refuse` on the sums before it commits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from telcorec.core.columns import Col
from telcorec.core.exceptions import PublishError

_WORD = 62  # rank bits per 64-bit mask word (bit 0 unused, bit 63 left clear: no sign issues)


@dataclass(frozen=True)
class OffersContract:
    catalogue: tuple[str, ...]  # the active offer ids of the run date
    k: int                      # ranks 1..k per subscriber

    def __post_init__(self):
        if not self.catalogue:
            raise ValueError("an offers contract needs the active catalogue's offer ids")
        if self.k < 1:
            raise ValueError(f"an offers contract needs k >= 1, got {self.k}")

    def violations(self, df: DataFrame) -> dict[str, int]:
        """Rows (or, for rank uniqueness, subscribers) breaking each rule: one Spark job.

        Rank uniqueness needs every row of a subscriber together, which the caller's
        partitioning does not promise (scoring's rows come per subscriber batch, or from a
        window by subscriber after the campaign cap; a test may repartition at random). So the
        rows are grouped by subscriber. The per-subscriber ranks go into bit masks combined with
        `bit_or`, an associative aggregate that Spark pre-combines in each task: the shuffle
        carries about one small row per subscriber and task, not one per (subscriber, rank)
        pair as `countDistinct` would, and when the rows already come hash-partitioned by
        subscriber (the window) there is no extra shuffle at all.
        """
        rank = F.col(Col.RANK)
        in_range = rank.between(1, self.k)
        score = F.col(Col.SCORE)
        per_row = {
            "offer_in_catalogue": ~F.col(Col.OFFER_ID).isin(list(self.catalogue)),
            "rank_in_range": ~in_range,
            "score_finite": F.isnan(score) | score.isin(float("inf"), float("-inf")),
        }
        words = (self.k + _WORD - 1) // _WORD
        masks = [F.bit_or(F.when(in_range & (rank > w * _WORD) & (rank <= (w + 1) * _WORD),
                                 # 2^b is exact in a double up to b = 62
                                 F.pow(F.lit(2.0), rank - w * _WORD).cast("long"))
                          .otherwise(F.lit(0).cast("long"))).alias(f"mask{w}")
                 for w in range(words)]
        per_subscriber = df.groupBy(Col.SUBSCRIBER_ID).agg(
            F.count(F.lit(1)).alias("n"),
            F.max(F.when(in_range, rank)).alias("top"),
            F.sum(in_range.cast("long")).alias("in_range"),
            *masks,
            *[F.sum(bad.cast("long")).alias(name) for name, bad in per_row.items()])
        row = per_subscriber.agg(
            *[F.sum(name).alias(name) for name in per_row],
            F.sum(_ranks_broken(words).cast("long")).alias("ranks_unique_and_contiguous"),
        ).first()
        return {name: int(row[name] or 0) for name in
                (*per_row, "ranks_unique_and_contiguous")}

    def batch_violations(self, batch: pa.RecordBatch) -> dict[str, int]:
        """`violations` of one batch of rows, in the task that writes them: exact when every
        row of a subscriber is in this batch (the score stage's batches hold whole subscribers,
        each subscriber in one batch), since rank uniqueness is judged per subscriber."""
        rank = batch.column(Col.RANK).to_numpy(zero_copy_only=False).astype(np.int64)
        score = batch.column(Col.SCORE).to_numpy(zero_copy_only=False).astype(np.float64)
        offer = pd.Index(batch.column(Col.OFFER_ID).to_pandas())
        in_range = (rank >= 1) & (rank <= self.k)
        codes, _ = pd.factorize(batch.column(Col.SUBSCRIBER_ID).to_pandas(), sort=False)
        n = int(codes.max()) + 1 if len(codes) else 0
        counted = np.bincount(codes[in_range], minlength=n)
        top = np.zeros(n, dtype=np.int64)
        np.maximum.at(top, codes[in_range], rank[in_range])
        distinct = np.bincount(pd.unique(pd.Series(codes[in_range] * (self.k + 1)
                                                   + rank[in_range])) // (self.k + 1),
                               minlength=n)
        return {"offer_in_catalogue": int((~offer.isin(self.catalogue)).sum()),
                "rank_in_range": int((~in_range).sum()),
                "score_finite": int((~np.isfinite(score)).sum()),
                "ranks_unique_and_contiguous": int(((distinct != counted)
                                                    | (top != counted)).sum())}

    def enforce(self, df: DataFrame, table: str = "offers") -> None:
        """Raise PublishError naming every broken rule and its count; nothing is committed."""
        self.refuse(self.violations(df), table)

    def refuse(self, violations: dict[str, int], table: str = "offers") -> None:
        """Raise PublishError naming every rule `violations` counts as broken."""
        broken = {name: n for name, n in violations.items() if n}
        if broken:
            detail = ", ".join(f"{name}: {n:,} {'subscribers' if name.startswith('ranks') else 'rows'}"
                               for name, n in broken.items())
            raise PublishError(
                f"the rows to publish to '{table}' break its output contract ({detail}); nothing "
                f"was committed. Check the scoring stage's output against k={self.k} and the "
                f"{len(self.catalogue)} active offers of the run date.")


def _ranks_broken(words: int) -> Column:
    """Per subscriber: its in-range ranks are not exactly {1..m} for m = their count (a
    duplicated rank sets fewer bits than rows; a skipped one puts the top rank above m)."""
    bits = F.lit(0)
    for w in range(words):
        bits = bits + F.bit_count(F.col(f"mask{w}"))
    return (bits != F.col("in_range")) | (F.coalesce(F.col("top"), F.lit(0)) != F.col("in_range"))
