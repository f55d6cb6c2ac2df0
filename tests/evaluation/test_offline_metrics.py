"""Every offline metric against a slow, obvious implementation on random inputs."""
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from telcorec.core.columns import Col
from telcorec.evaluation.metrics import COHORT, HELD_IDX, TOP_IDX, evaluate_frame, per_subscriber

KS = (1, 3, 5)


@dataclass
class MatrixScorer:
    matrix: np.ndarray
    name: str = "matrix"

    @property
    def offer_ids(self):
        return [f"O{i}" for i in range(self.matrix.shape[1])]

    def score(self, batch):
        return self.matrix[batch["row"].to_numpy()]


def reference(scores, exclude, held, k, vectors, share):
    """Sort the eligible offers by (-score, index); compute each metric from its definition."""
    eligible = [j for j in range(len(scores)) if j not in set(exclude)]
    ranking = sorted(eligible, key=lambda j: (-scores[j], j))
    rank = {j: i + 1 for i, j in enumerate(ranking)}
    top = ranking[:k]
    rel = set(held)
    hits = [j for j in top if j in rel]
    out = {"precision": len(hits) / k, "recall": len(hits) / len(rel),
           "hit_rate": float(bool(hits))}
    ap, found = 0.0, 0
    for i, j in enumerate(top, start=1):
        if j in rel:
            found += 1
            ap += found / i
    out["map"] = ap / min(len(rel), k)
    dcg = sum(1 / math.log2(i + 1) for i, j in enumerate(top, start=1) if j in rel)
    out["ndcg"] = dcg / sum(1 / math.log2(i + 1) for i in range(1, min(len(rel), k) + 1))
    out["mrr"] = 1 / min(rank[j] for j in rel)
    negatives = [j for j in eligible if j not in rel]
    pairs = [(p, n) for p in rel for n in negatives]
    out["auc"] = sum(rank[p] < rank[n] for p, n in pairs) / len(pairs)
    sims = [vectors[a] @ vectors[b] for a in top for b in top if a != b]
    out["diversity"] = 1 - np.mean(sims) if sims else math.nan
    out["novelty"] = np.mean([-math.log2(share[j]) for j in top])
    return out


@pytest.mark.parametrize("offset, spread", [(0.0, 1.0), (5.0, 0.0), (1e8, 1.0)],
                         ids=["ties", "one-score", "far-from-zero"])
@pytest.mark.parametrize("seed", range(4))
def test_metrics_agree_with_reference(seed, offset, spread):
    rng = np.random.default_rng(seed)
    n, m = 40, 12
    # ties on purpose; a model that gives every offer one score (5.0) must rank them by index,
    # not put every held-out offer first, and so must scores far from zero
    scores = offset + spread * rng.integers(0, 5, size=(n, m)).astype(float)
    exclude, held = [], []
    for _ in range(n):
        perm = rng.permutation(m)
        exclude.append(perm[:rng.integers(0, 4)])
        held.append(perm[4:4 + rng.integers(1, 4)])
    vectors = rng.random((m, 6))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    share = rng.random(m) + 0.01
    share /= share.sum()
    batch = pd.DataFrame({"row": np.arange(n), Col.SUBSCRIBER_ID: [f"S{i}" for i in range(n)],
                          Col.SEGMENT: "x", COHORT: "warm", Col.EXCLUDE_IDX: exclude,
                          HELD_IDX: held})
    got = evaluate_frame(batch, MatrixScorer(scores), KS, vectors, share)
    for i in range(n):
        for k in KS:
            want = reference(scores[i], exclude[i], held[i], k, vectors, share)
            for metric in ("precision", "recall", "hit_rate", "map", "ndcg", "diversity",
                           "novelty"):
                assert got[f"{metric}@{k}"][i] == pytest.approx(want[metric], nan_ok=True), (
                    metric, k, i)
        want = reference(scores[i], exclude[i], held[i], 1, vectors, share)
        assert got["mrr"][i] == pytest.approx(want["mrr"])
        assert got["auc"][i] == pytest.approx(want["auc"])
        expected_top = sorted([j for j in range(m) if j not in set(exclude[i])],
                              key=lambda j: (-scores[i][j], j))[:max(KS)]
        assert list(got[TOP_IDX][i]) == expected_top


def test_per_subscriber_on_executors_equals_local(spark):
    rng = np.random.default_rng(9)
    n, m = 30, 8
    scores = rng.random((n, m))
    vectors = np.eye(m)
    share = np.full(m, 1 / m)
    rows = [(i, f"S{i}", "x", "warm", [int(i % m)], [int((i + 1) % m)]) for i in range(n)]
    df = spark.createDataFrame(rows, f"row int, {Col.SUBSCRIBER_ID} string, {Col.SEGMENT} string, "
                               f"{COHORT} string, {Col.EXCLUDE_IDX} array<int>, {HELD_IDX} array<int>")
    got = per_subscriber(df.repartition(3), MatrixScorer(scores), KS, vectors, share).toPandas()
    local = evaluate_frame(df.toPandas(), MatrixScorer(scores), KS, vectors, share)
    got = got.sort_values(Col.SUBSCRIBER_ID).reset_index(drop=True)
    local = local.sort_values(Col.SUBSCRIBER_ID).reset_index(drop=True)
    for column in ("precision@5", "ndcg@3", "auc", "mrr", "diversity@5"):
        np.testing.assert_allclose(got[column], local[column])
