"""What the rules and the cap leave room for: the counts the quality gate's row check bounds the
rows with, and the start-up check of scoring.k against the catalogue, the rules and the cap."""
import numpy as np
import pandas as pd
import pytest

from telcorec.core import config
from telcorec.core.columns import Col
from telcorec.core.exceptions import ConfigError
from telcorec.offers import rules
from telcorec.publish import fit
from telcorec.publish.gate import possible_rows

BASE = config.load("conf/base.yaml")
# O0 residential prepaid, O1 family bundle, O2 business plan, O3 premium prepaid
OFFERS = pd.DataFrame({
    Col.OFFER_ID: ["O0", "O1", "O2", "O3"],
    Col.PLAN_TYPE: ["residential", "residential", "business", "premium"],
    Col.PAYMENT_TYPE: ["prepaid", "postpaid", "postpaid", "prepaid"],
    Col.FAMILY: ["no", "yes", "no", "no"],
})
SUBSCRIBERS = pd.DataFrame({
    Col.SUBSCRIBER_ID: ["prepaid", "business", "family", "nulls"],
    Col.SEGMENT: ["youth", "business", "family", None],
    Col.PAYMENT_TYPE: ["prepaid", "postpaid", "postpaid", None],
    Col.HOUSEHOLD: ["single", "couple", "family", None],
    Col.EXCLUDE_IDX: [np.array([0]), np.array([], dtype=int), np.array([1]), None],
    Col.FATIGUE_IDX: [np.array([], dtype=int), np.array([0, 3]), np.array([], dtype=int),
                      np.array([], dtype=int)],
})


def test_room_counts_per_subscriber_up_to_k_and_per_offer():
    allowed = rules.allowed(rules.removal_masks(SUBSCRIBERS, OFFERS, BASE.rules.eligibility))
    # left: prepaid [O3], business [O2], family [O0, O3], nulls [O0, O3]
    assert rules.room_counts(allowed, k=1) == (4, {0: 2, 2: 1, 3: 3})
    fillable, eligible = rules.room_counts(allowed, k=5)
    assert fillable == 1 + 1 + 2 + 2
    per_offer = [eligible.get(o, 0) for o in range(len(OFFERS))]
    # a cap of one subscriber per offer: O1 is left to nobody, so 3 rows at most, not 4
    assert possible_rows(fillable, per_offer, cap=1) == 3


def groups(rows):
    """Subscribers per combination of the shipped rules' subscriber columns."""
    return pd.DataFrame(rows, columns=[Col.HOUSEHOLD, Col.PAYMENT_TYPE, Col.SEGMENT, fit.COUNT])


def with_k(k, max_share=0.5):
    return BASE.with_overrides(**{"scoring.k": k, "evaluation.ks": [1],
                                  "gate.k": 1, "rules.campaign_cap.max_share": max_share})


def test_k_above_the_catalogue_is_refused_naming_the_key():
    errors, _ = fit.k_problems(with_k(5), OFFERS, groups([("family", "postpaid", "family", 10)]))
    [error] = errors
    assert "scoring.k is 5 but the run date's catalogue has only 4 offers" in error
    assert "set scoring.k to at most 3" in error


def test_k_the_cap_and_rules_cannot_fill_warns_with_the_key_to_change():
    assert fit.rule_columns(BASE) == [Col.HOUSEHOLD, Col.PAYMENT_TYPE, Col.SEGMENT]
    families = groups([("family", "postpaid", "family", 10)])  # O2 is left out: business only
    assert fit.k_problems(with_k(3, max_share=1.0), OFFERS, families) == ([], [])
    _, [plan, short] = fit.k_problems(with_k(4, max_share=1.0), OFFERS, families)
    assert "gets at most 3; set scoring.k to 3 or fewer" in plan
    assert "leave 10 of 10 subscribers fewer than scoring.k=4 offers (fewest: 3)" in short
    _, [cap] = fit.k_problems(with_k(1, max_share=0.2), OFFERS, families)
    assert "0.8 offers per subscriber on average, fewer than scoring.k=1" in cap
    assert "rules.campaign_cap.max_share" in cap
    mixed = groups([("family", "postpaid", "family", 10), ("single", "prepaid", "youth", 5)])
    _, [short] = fit.k_problems(with_k(3, max_share=1.0), OFFERS, mixed)
    assert "leave 5 of 15 subscribers fewer than scoring.k=3 offers (fewest: 2)" in short
    assert "lower scoring.k or review rules.eligibility" in short


def test_check_k_aggregates_with_spark_and_refuses_before_anything_runs(spark):
    features = spark.createDataFrame(SUBSCRIBERS[[Col.SUBSCRIBER_ID, Col.SEGMENT,
                                                  Col.PAYMENT_TYPE, Col.HOUSEHOLD]])
    with pytest.raises(ConfigError, match="scoring.k"):
        fit.check_k(with_k(5), features, OFFERS)
    assert fit.check_k(with_k(2, max_share=1.0), features, OFFERS) == []
    warnings = fit.check_k(with_k(3, max_share=1.0), features, OFFERS)
    assert warnings == ["the eligibility rules leave 2 of 4 subscribers fewer than "
                        "scoring.k=3 offers (fewest: 2): they get fewer rows; lower scoring.k "
                        "or review rules.eligibility to fill every list"]
