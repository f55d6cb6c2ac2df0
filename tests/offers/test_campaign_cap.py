"""The campaign cap by thresholds (telcorec/offers/campaign_cap.py) against the obvious implementation:
a window numbering every candidate row of an offer (kept here as the slow reference)."""
import numpy as np
import pandas as pd
import pytest
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from telcorec.core.columns import Col
from telcorec.core.config import CampaignCapConfig
from telcorec.offers import campaign_cap, selection
from telcorec.offers.rerank import Ranking

CAPPED = "capped"


def reference_capped_top_k(candidates: DataFrame, limit: int, k: int) -> DataFrame:
    """The cap as first written: row_number over each offer's rows by (rank, score desc,
    subscriber id); rows past `limit` are capped; each subscriber keeps its first k others,
    renumbered."""
    by_offer = (Window.partitionBy(Col.OFFER_IDX)
                .orderBy(F.col(Col.RANK), F.col(Col.SCORE).desc(), F.col(Col.SUBSCRIBER_ID))
                .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    by_rank = (Window.partitionBy(Col.SUBSCRIBER_ID).orderBy(F.col(Col.RANK))
               .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    marked = candidates.withColumn(CAPPED, F.row_number().over(by_offer) > limit)
    return (marked.where(~F.col(CAPPED)).drop(CAPPED)
            .withColumn(Col.RANK, F.row_number().over(by_rank)).where(F.col(Col.RANK) <= k))


def matrices(rows: list[tuple[str, int, int, float]], depth: int):
    """(subscriber ids, offers (n x depth), final scores (n x depth)) of candidate rows."""
    ids = sorted({r[0] for r in rows})
    where = {s: i for i, s in enumerate(ids)}
    offers = np.full((len(ids), depth), -1, dtype=np.int64)
    final = np.full((len(ids), depth), np.nan)
    for sid, offer, rank, score in rows:
        offers[where[sid], rank - 1], final[where[sid], rank - 1] = offer, score
    return np.asarray(ids, dtype=object), offers, final


def by_thresholds(spark, rows, n_offers: int, depth: int, limit: int, k: int):
    """The production path: thresholds from the PLAN rows, then selection.kept per batch."""
    caps = campaign_cap.thresholds(spark.createDataFrame(rows, campaign_cap.PLAN), limit, n_offers)
    ids, offers, final = matrices(rows, depth)
    ranked = selection.Ranked(np.zeros(len(ids), bool), np.zeros(len(ids), object), {},
                              Ranking(offers, final, np.zeros((*offers.shape, 4))))
    r, position, rank, admitted = selection.kept(ranked, ids, k, caps)
    caps.check(dict(enumerate(admitted)))  # what the publishing pass checks
    got = {(ids[i], int(offers[i, p]), int(n)) for i, p, n in zip(r, position, rank)}
    return got, caps


def reference(spark, rows, limit: int, k: int):
    df = spark.createDataFrame(rows, campaign_cap.PLAN)
    return {(r[Col.SUBSCRIBER_ID], r[Col.OFFER_IDX], r[Col.RANK])
            for r in reference_capped_top_k(df, limit, k).collect()}


def test_cap_gives_slots_by_rank_then_score_and_refills_from_spare_candidates(spark):
    # three subscribers, K = 2 plus one spare candidate each; X (0) is everyone's first choice
    X, Y, Z = 0, 1, 2
    rows = [("S1", X, 1, 0.9), ("S1", Y, 2, 0.8), ("S1", Z, 3, 0.1),
            ("S2", X, 1, 0.7), ("S2", Z, 2, 0.6), ("S2", Y, 3, 0.5),
            ("S3", X, 1, 0.7), ("S3", Y, 2, 0.3), ("S3", Z, 3, 0.2)]
    got, caps = by_thresholds(spark, rows, 3, 3, limit=2, k=2)
    # X: three rank-1 rows, S2 and S3 tie at 0.7 (the subscriber id decides); Y: S1 and S3
    # rank it 2nd, S2 3rd; Z: S2 2nd, then S3 (0.2) before S1 (0.1) at rank 3
    assert got == {("S1", X, 1), ("S1", Y, 2), ("S2", X, 1), ("S2", Z, 2),
                   ("S3", Y, 1), ("S3", Z, 2)}  # S3's spare candidate fills in
    assert caps.capped_rows == 3 and list(caps.expected) == [2, 2, 2]
    # a cap of one: S2 keeps one offer, S3 none (fewer than K, never another subscriber's)
    assert by_thresholds(spark, rows, 3, 3, limit=1, k=2)[0] == {
        ("S1", X, 1), ("S1", Y, 2), ("S2", Z, 1)}
    assert by_thresholds(spark, rows, 3, 3, limit=0, k=2)[0] == set()


@pytest.mark.parametrize("limit", [1, 7, 40, 75, 150, 1000])
def test_thresholds_agree_with_the_window_reference_on_random_candidates(spark, limit):
    rng = np.random.default_rng(limit)
    n_subscribers, n_offers, depth, k = 150, 8, 5, 3
    rows = []
    for s in range(n_subscribers):
        picks = rng.permutation(n_offers)[:rng.integers(1, depth + 1)]  # some run out early
        scores = np.sort(np.round(rng.random(len(picks)), 1))[::-1]   # ties on purpose
        rows += [(f"S{s:04d}", int(o), r + 1, float(x))
                 for r, (o, x) in enumerate(zip(picks, scores))]
    got, caps = by_thresholds(spark, rows, n_offers, depth, limit, k)
    assert got == reference(spark, rows, limit, k)
    per_offer = pd.Series([o for _, o, _, _ in rows]).value_counts()
    assert caps.capped_rows == int(np.maximum(per_offer - limit, 0).sum())


def test_the_publishing_pass_refuses_scores_that_were_not_reproduced(spark):
    rows = [(f"S{s}", 0, 1, 0.5) for s in range(4)]
    caps = campaign_cap.thresholds(spark.createDataFrame(rows, campaign_cap.PLAN), 2, 1)
    caps.check({0: 2})
    with pytest.raises(RuntimeError, match="not reproduced between the two passes"):
        caps.check({0: 3})


def test_cap_limit_takes_the_stricter_of_share_and_count():
    limit = campaign_cap.cap_limit
    assert limit(CampaignCapConfig(max_share=1.0, max_subscribers=0), 1000) is None
    assert limit(CampaignCapConfig(max_share=0.25), 1001) == 250
    assert limit(CampaignCapConfig(max_share=0.5, max_subscribers=300), 1000) == 300
    assert limit(CampaignCapConfig(max_share=1.0, max_subscribers=40), 1000) == 40
