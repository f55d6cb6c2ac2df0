"""Re-ranking arithmetic on a three-offer catalogue worked out by hand, and the vectorised
greedy (MMR) ranking against a slow, obvious implementation."""
import numpy as np
import pandas as pd
import pytest

from telcorec.core import config
from telcorec.core.columns import Col
from telcorec.core.config import RerankConfig, RerankWeights
from telcorec.core.exceptions import ConfigError
from telcorec.offers import rerank

# O0 and O1 share 4 of 6 attributes; O2 shares only `family` with either
OFFERS = pd.DataFrame({
    Col.OFFER_ID: ["O0", "O1", "O2"], Col.PRICE: [10.0, 20.0, 30.0],
    Col.DATA_GB: [2.0, 10.0, 40.0], Col.OFFER_VALUE: [0.2, 0.5, 1.4],
    Col.PLAN_TYPE: ["residential", "residential", "business"],
    Col.PAYMENT_TYPE: ["prepaid", "prepaid", "postpaid"], Col.NETWORK: ["4G", "4G", "5G"],
    Col.FAMILY: ["no", "no", "no"], Col.PRICE_TIER: ["budget", "standard", "luxury"],
    Col.DATA_TIER: ["light", "medium", "heavy"],
})
TERMS = rerank.OfferTerms.from_offers(OFFERS)
ALL = np.ones((1, 3), dtype=bool)


def test_offer_terms():
    np.testing.assert_allclose(TERMS.similarity, [[1, 4 / 6, 1 / 6], [4 / 6, 1, 1 / 6],
                                                  [1 / 6, 1 / 6, 1]])
    np.testing.assert_allclose(TERMS.value, [0.0, 0.25, 1.0])


def test_relevance_is_min_max_over_allowed_offers_and_keeps_nan():
    raw = np.array([[1.0, 3.0, 2.0], [5.0, 1.0, 3.0], [2.0, np.nan, 4.0], [7.0, 7.0, 9.0]])
    allowed = np.array([[1, 1, 1], [0, 1, 1], [1, 1, 1], [1, 1, 0]], dtype=bool)
    got = rerank.relevance(raw, allowed)
    np.testing.assert_allclose(got[0], [0.0, 1.0, 0.5])
    np.testing.assert_allclose(got[1, 1:], [0.0, 1.0])   # 5.0 is not allowed: not the max
    np.testing.assert_allclose(got[2], [0.0, np.nan, 1.0])
    np.testing.assert_allclose(got[3, :2], [1.0, 1.0])   # all allowed offers equal


def test_revenue_is_price_uplift_over_the_current_plan_or_the_median():
    got = rerank.revenue(TERMS, pd.Series(["O0", "O2", None, "RETIRED"]))
    np.testing.assert_allclose(got, [[0.0, 0.5, 1.0], [-1.0, -0.5, 0.0],
                                     [-0.5, 0.0, 0.5], [-0.5, 0.0, 0.5]])


def test_retention_is_churn_times_coverage_and_value():
    got = rerank.retention(TERMS, pd.Series([0.4, None, 0.5]), pd.Series([8.0, 8.0, None]))
    # coverage (0.25, 1, 1) and value (0, 0.25, 1): retention value (0.125, 0.625, 1)
    np.testing.assert_allclose(got, [[0.05, 0.25, 0.4], [0, 0, 0], [0.25, 0.3125, 0.5]])


def test_default_weights_rank_by_final_score_with_diversity_from_the_offers_above():
    batch = pd.DataFrame({Col.CURRENT_OFFER_ID: ["RETIRED"], Col.CHURN_PROBABILITY: [0.4],
                          Col.DATA_GB_MONTH: [8.0]})
    weights = rerank.weights_for(pd.Series(["youth"]), RerankConfig(), np.array([False]))
    got = rerank.rank(np.array([[1.0, 3.0, 2.0]]), ALL, batch, TERMS, weights, depth=3)
    # rank 1: O1 = .4 x 1 + .3 x 0 + .2 x .25 + .1 x 1 = .55 (O2 .53, O0 -.04)
    # rank 2: O2 = .4 x .5 + .3 x .5 + .2 x .4 + .1 x (1 - 1/6) = .51333 (O0 -.10667)
    # rank 3: O0 = .4 x 0 - .3 x .5 + .2 x .05 + .1 x (1 - 4/6) = -.10667
    assert got.offers.tolist() == [[1, 2, 0]]
    np.testing.assert_allclose(got.final, [[0.55, 0.43 + 0.1 * 5 / 6, -0.14 + 0.1 / 3]])
    np.testing.assert_allclose(got.components[0], [[1.0, 0.0, 0.25, 1.0],
                                                   [0.5, 0.5, 0.4, 5 / 6],
                                                   [0.0, -0.5, 0.05, 1 / 3]])


def test_segment_weights_and_the_control_arm():
    cfg = RerankConfig(segments={"youth": RerankWeights(0.2, 0.0, 0.0, 0.8)})
    control = np.array([False, False, True])
    weights = rerank.weights_for(pd.Series(["youth", "senior", "youth"]), cfg, control)
    np.testing.assert_allclose(weights, [[0.2, 0, 0, 0.8], [0.4, 0.3, 0.2, 0.1], [1, 0, 0, 0]])
    batch = pd.DataFrame({Col.CURRENT_OFFER_ID: ["O1"] * 3, Col.CHURN_PROBABILITY: [0.0] * 3,
                          Col.DATA_GB_MONTH: [1.0] * 3})
    raw = np.array([[2.9, 3.0, 1.0]] * 3)
    got = rerank.rank(raw, np.ones((3, 3), dtype=bool), batch, TERMS, weights, depth=3)
    # diversity-heavy youth: O2 (.8 x 5/6) beats O0, too similar to O1 (.19 + .8 / 3)
    assert got.offers.tolist() == [[1, 2, 0], [1, 0, 2], [1, 0, 2]]
    np.testing.assert_allclose(got.final[2], [1.0, 0.95, 0.0])  # relevance alone


def test_disallowed_offers_never_appear_and_nan_is_last_but_kept():
    allowed = np.array([[True, False, True], [False, False, False]])
    raw = np.array([[np.nan, 1.0, 2.0], [1.0, 2.0, 3.0]])
    weights = np.tile([0.4, 0.3, 0.2, 0.1], (2, 1))
    got = rerank.greedy_rank((rerank.relevance(raw, allowed), np.zeros((2, 3)), np.zeros((2, 3))),
                             allowed, TERMS.similarity, weights, depth=3)
    assert got.offers.tolist() == [[2, 0, -1], [-1, -1, -1]]
    assert np.isnan(got.final[0, 1]) and np.isnan(got.final[0, 2])


def reference_mmr(parts, allowed, similarity, weights, depth):
    """Slow and obvious: per subscriber, pick the best remaining offer step by step."""
    out = []
    for i in range(allowed.shape[0]):
        picked, finals = [], []
        for _ in range(min(depth, allowed.shape[1])):
            best, best_j = -np.inf, -1
            for j in np.flatnonzero(allowed[i]):
                if j in picked:
                    continue
                closest = max((similarity[j, p] for p in picked), default=0.0)
                value = sum(weights[i, c] * parts[c][i, j] for c in range(3)) \
                    + weights[i, 3] * (1 - closest)
                if value > best:
                    best, best_j = value, j
            if best_j < 0:
                break
            picked.append(best_j)
            finals.append(best)
        out.append((picked, finals))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_greedy_rank_agrees_with_reference(seed):
    rng = np.random.default_rng(seed)
    n, m, depth = 30, 12, 6
    parts = tuple(rng.random((n, m)) for _ in range(3))
    allowed = rng.random((n, m)) < 0.7
    attrs = rng.integers(0, 3, size=(m, 6))
    similarity = (attrs[:, None, :] == attrs[None, :, :]).mean(axis=2)
    weights = rng.dirichlet(np.ones(4), size=n)
    got = rerank.greedy_rank(parts, allowed, similarity, weights, depth)
    for i, (picked, finals) in enumerate(reference_mmr(parts, allowed, similarity, weights, depth)):
        assert got.offers[i, :len(picked)].tolist() == picked
        assert (got.offers[i, len(picked):] == -1).all()
        np.testing.assert_allclose(got.final[i, :len(picked)], finals)
        assert np.all(np.diff(got.final[i, :len(picked)]) <= 1e-12)  # rank follows the score


@pytest.mark.parametrize("seed", range(3))
def test_greedy_rank_over_contenders_only_agrees_with_reference_on_a_wide_tied_catalogue(seed):
    # wide rows and a small diversity weight: most offers cannot be picked and are pruned;
    # scores on a coarse grid: many exact ties, which must still go to the lower offer index
    rng = np.random.default_rng(seed)
    n, m, depth = 40, 80, 5
    parts = tuple(rng.integers(0, 5, size=(n, m)) / 4 for _ in range(3))
    allowed = rng.random((n, m)) < 0.8
    allowed[0] = False          # a row with nothing allowed
    allowed[1, 3:] = False      # a row with fewer allowed offers than depth
    attrs = rng.integers(0, 2, size=(m, 4))
    similarity = (attrs[:, None, :] == attrs[None, :, :]).mean(axis=2)
    weights = np.column_stack([rng.dirichlet(np.ones(3), size=n) * 0.9, np.full(n, 0.1)])
    weights[2] = rerank.RELEVANCE_ONLY
    got = rerank.greedy_rank(parts, allowed, similarity, weights, depth)
    for i, (picked, finals) in enumerate(reference_mmr(parts, allowed, similarity, weights, depth)):
        assert got.offers[i, :len(picked)].tolist() == picked
        assert (got.offers[i, len(picked):] == -1).all()
        np.testing.assert_allclose(got.final[i, :len(picked)], finals)


@pytest.mark.parametrize("section, message", [
    ({"weights": {"relevance": 0.5, "revenue": 0.3, "retention": 0.2, "diversity": 0.1}},
     "rerank.weights': weights must sum to 1"),
    ({"segments": {"youth": {"relevance": 1.2, "revenue": -0.2, "retention": 0, "diversity": 0}}},
     "rerank.segments.youth': weights must be >= 0"),
    ({"weights": {"relevance": 1.0, "novelty": 0.0}}, "rerank.weights.novelty' is unknown"),
])
def test_bad_weights_are_refused(section, message):
    with pytest.raises(ConfigError, match=message):
        config.from_dict({"rerank": section})
