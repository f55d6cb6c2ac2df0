import numpy as np
import pytest

from telcorec.core.columns import Col
from telcorec.evaluation.offline import ranking_metrics


def reference(recs, truth, k):
    """Slow and obvious precision@k and recall@k averaged over subscribers with held-out items."""
    precision, recall = [], []
    for sub, items in truth.items():
        top = [o for o, r in recs.get(sub, []) if r <= k]
        hits = len(set(top) & items)
        precision.append(hits / k)
        recall.append(hits / len(items))
    return np.mean(precision), np.mean(recall)


def frames(spark, recs, truth, segments):
    r = spark.createDataFrame([(s, o, rank) for s, lst in recs.items() for o, rank in lst],
                              f"{Col.SUBSCRIBER_ID} string, {Col.OFFER_ID} string, {Col.RANK} int")
    t = spark.createDataFrame([(s, o) for s, items in truth.items() for o in items],
                              f"{Col.SUBSCRIBER_ID} string, {Col.OFFER_ID} string")
    g = spark.createDataFrame(list(segments.items()), f"{Col.SUBSCRIBER_ID} string, {Col.SEGMENT} string")
    return r, t, g


def test_metrics_exact_on_literal_rows(spark):
    recs = {"A": [("O1", 1), ("O2", 2)], "B": [("O3", 1), ("O4", 2)]}
    truth = {"A": {"O2"}, "B": {"O9", "O3"}, "C": {"O1"}}  # C got no recommendations: 0 hits
    got = ranking_metrics(*frames(spark, recs, truth, {"A": "x", "B": "x", "C": "y"}), (1, 2))
    values = {(m, k, s): v for m, k, s, v in got}
    assert values[("precision", 1, "all")] == pytest.approx(1 / 3)
    assert values[("precision", 2, "all")] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert values[("recall", 2, "all")] == pytest.approx((1 + 0.5 + 0) / 3)
    assert values[("recall", 1, "x")] == pytest.approx(0.25)
    assert values[("precision", 2, "y")] == 0.0


def test_metrics_agree_with_reference_on_random_inputs(spark):
    rng = np.random.default_rng(3)
    offers = [f"O{i}" for i in range(15)]
    recs = {f"S{i}": [(str(o), r + 1) for r, o in enumerate(rng.choice(offers, 10, replace=False))]
            for i in range(60)}
    truth = {f"S{i}": {str(o) for o in rng.choice(offers, rng.integers(1, 4), replace=False)}
             for i in range(0, 70, 1)}
    got = ranking_metrics(*frames(spark, recs, truth, {s: "all_one" for s in truth}), (3, 10))
    values = {(m, k, s): v for m, k, s, v in got}
    for k in (3, 10):
        p, r = reference(recs, truth, k)
        assert values[("precision", k, "all")] == pytest.approx(p)
        assert values[("recall", k, "all")] == pytest.approx(r)
