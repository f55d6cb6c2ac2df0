"""Business rules on literal rows: exact survivors, counts that add up, fatigue.
(The campaign cap: tests/offers/test_campaign_cap.py.)"""
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.testing import assertDataFrameEqual

from telcorec.core import config
from telcorec.core.columns import Col
from telcorec.core.config import EligibilityRule, FatigueConfig, RuleCondition
from telcorec.core.exceptions import ConfigError
from telcorec.offers import rules

RUN = dt.date(2026, 11, 23)
DEFAULT_RULES = config.load("conf/base.yaml").rules.eligibility  # the shipped business rules

# O0 residential prepaid, O1 family bundle, O2 business plan, O3 premium prepaid
OFFERS = pd.DataFrame({
    Col.OFFER_ID: ["O0", "O1", "O2", "O3"],
    Col.PLAN_TYPE: ["residential", "residential", "business", "premium"],
    Col.PAYMENT_TYPE: ["prepaid", "postpaid", "postpaid", "prepaid"],
    Col.FAMILY: ["no", "yes", "no", "no"],
    Col.NETWORK: ["4G", "4G", "5G", "5G"],
})


def subscribers(**overrides):
    base = {
        Col.SUBSCRIBER_ID: ["prepaid", "business", "family", "nulls"],
        Col.SEGMENT: ["youth", "business", "family", None],
        Col.PAYMENT_TYPE: ["prepaid", "postpaid", "postpaid", None],
        Col.HOUSEHOLD: ["single", "couple", "family", None],
        Col.DEVICE_TIER: ["basic", "flagship", "mid", None],
        Col.EXCLUDE_IDX: [np.array([0]), np.array([], dtype=int), np.array([1]), None],
        Col.FATIGUE_IDX: [np.array([], dtype=int), np.array([0, 3]), np.array([], dtype=int),
                          np.array([], dtype=int)],
    }
    return pd.DataFrame({**base, **overrides})


def survivors(masks):
    keep = rules.allowed(masks)
    return {sid: [OFFERS[Col.OFFER_ID][j] for j in np.flatnonzero(row)]
            for sid, row in zip(subscribers()[Col.SUBSCRIBER_ID], keep)}


def test_default_rules_leave_exactly_the_allowed_offers():
    masks = rules.removal_masks(subscribers(), OFFERS, DEFAULT_RULES)
    assert list(masks) == ["consent", "current_plan", "prepaid_offers_for_prepaid",
                           "business_plans_for_business", "family_bundles_for_families", "fatigue"]
    assert survivors(masks) == {
        "prepaid": ["O3"],             # O0 current plan; O1, O2 postpaid
        "business": ["O2"],            # O1 family bundle (couple); O0, O3 shown recently
        "family": ["O0", "O3"],        # O1 current plan; O2 business plan
        "nulls": ["O0", "O3"],         # NULL matches no `when` and fails every `require`
    }


def test_counts_attribute_each_pair_to_the_first_rule_and_add_up():
    counts = rules.removed_counts(rules.removal_masks(subscribers(), OFFERS, DEFAULT_RULES))
    assert counts == {"candidate_pairs": 16, "consent": 0, "current_plan": 2,
                      "prepaid_offers_for_prepaid": 2, "business_plans_for_business": 2,
                      "family_bundles_for_families": 2, "fatigue": 2, "eligible_pairs": 6,
                      "subscribers_without_offers": 0}
    # business: O0 and O3 are both shown recently; prepaid: O2 is postpaid *and* business, and
    # counts for the prepaid rule (first) only
    removed = sum(v for k, v in counts.items() if k not in ("candidate_pairs", "eligible_pairs",
                                                            "subscribers_without_offers"))
    assert removed + counts["eligible_pairs"] == counts["candidate_pairs"]


def test_an_empty_when_applies_to_every_pair_and_subscribers_left_without_offers_are_counted():
    only_4g = EligibilityRule("only_4g", when=RuleCondition(),
                              require=RuleCondition(offer={Col.NETWORK: ("4G",)}))
    masks = rules.removal_masks(subscribers(), OFFERS, (only_4g,))
    assert survivors(masks) == {"prepaid": ["O1"], "business": ["O1"], "family": ["O0"],
                                "nulls": ["O0", "O1"]}
    strict = EligibilityRule("flagship_only", require=RuleCondition(
        subscriber={Col.DEVICE_TIER: ("flagship",)}))
    counts = rules.removed_counts(rules.removal_masks(subscribers(), OFFERS, (strict,)))
    assert counts["subscribers_without_offers"] == 3


def test_fatigue_uses_top_ranks_of_the_window_before_the_run_date_only(spark):
    day = dt.timedelta(days=1)
    history = spark.createDataFrame([
        (RUN - 7 * day, "A", "O0", 1),   # first day of the window
        (RUN - 8 * day, "A", "O1", 1),   # before the window
        (RUN - day, "A", "O2", 2),       # below the shown ranks
        (RUN, "A", "O3", 1),             # this run date itself (a rerun must not see it)
        (RUN - 2 * day, "B", "O3", 1),
        (RUN - 3 * day, "B", "O3", 1),   # shown twice: one exclusion
        (RUN - day, "B", "O1", 1),
        (RUN - day, "C", "OX", 1),       # an offer no longer in the catalogue
    ], f"{Col.RUN_DATE} date, {Col.SUBSCRIBER_ID} string, {Col.OFFER_ID} string, {Col.RANK} int")
    offers = spark.createDataFrame([(o, i) for i, o in enumerate(OFFERS[Col.OFFER_ID])],
                                   f"{Col.OFFER_ID} string, {Col.OFFER_IDX} int")
    got = rules.fatigue_exclusions(history, offers, RUN, FatigueConfig(days=7, ranks=1))
    expected = spark.createDataFrame([("A", [0]), ("B", [1, 3])],
                                     f"{Col.SUBSCRIBER_ID} string, {Col.FATIGUE_IDX} array<int>")
    assertDataFrameEqual(got, expected)
    subs = spark.createDataFrame([("A",), ("Z",)], f"{Col.SUBSCRIBER_ID} string")
    assertDataFrameEqual(rules.with_fatigue(subs, got), spark.createDataFrame(
        [("A", [0]), ("Z", [])], f"{Col.SUBSCRIBER_ID} string, {Col.FATIGUE_IDX} array<int>"))


def test_fatigue_counts_recent_declines_and_acceptances(spark):
    day = dt.timedelta(days=1)
    responses = spark.createDataFrame([
        ("A", "O0", RUN - 30 * day, "declined"),  # first day of decline_days
        ("A", "O1", RUN - 31 * day, "declined"),  # before it
        ("A", "O2", RUN, "declined"),             # answered on the run date itself
        ("B", "O3", RUN - 5 * day, "accepted"),   # inside accept_days
        ("B", "O2", RUN - 6 * day, "accepted"),   # before it
        ("C", "O1", RUN - day, "ignored"),        # not an answer fatigue reads
    ], f"{Col.SUBSCRIBER_ID} string, {Col.OFFER_ID} string, {Col.RESPONDED_DATE} date, "
       f"{Col.OUTCOME} string")
    history = spark.createDataFrame([(RUN - day, "B", "O3", 1), (RUN - day, "D", "O1", 1)],
                                    f"{Col.RUN_DATE} date, {Col.SUBSCRIBER_ID} string, "
                                    f"{Col.OFFER_ID} string, {Col.RANK} int")
    offers = spark.createDataFrame([(o, i) for i, o in enumerate(OFFERS[Col.OFFER_ID])],
                                   f"{Col.OFFER_ID} string, {Col.OFFER_IDX} int")
    cfg = FatigueConfig(days=7, ranks=1, decline_days=30, accept_days=5)
    got = rules.fatigue_exclusions(history, offers, RUN, cfg, responses)
    assertDataFrameEqual(got, spark.createDataFrame(
        [("A", [0, 2]), ("B", [3]), ("D", [1])],
        f"{Col.SUBSCRIBER_ID} string, {Col.FATIGUE_IDX} array<int>"))
    # without published history (a first run) the answers still count; days 0 turn them off
    assertDataFrameEqual(rules.fatigue_exclusions(None, offers, RUN, cfg, responses),
                         spark.createDataFrame([("A", [0, 2]), ("B", [3])],
                                               f"{Col.SUBSCRIBER_ID} string, "
                                               f"{Col.FATIGUE_IDX} array<int>"))
    off = FatigueConfig(days=7, ranks=1, decline_days=0, accept_days=0)
    assert rules.fatigue_exclusions(None, offers, RUN, off, responses).count() == 0


@pytest.mark.parametrize("rule, message", [
    ({"name": "x", "when": {"subscriber": {"payment": ["prepaid"]}},
      "require": {"offer": {"payment_type": ["prepaid"]}}},
     "rules.eligibility.x.when.subscriber.payment': not a string column of subscriber features"),
    ({"name": "x", "require": {"offer": {"price": ["10"]}}},
     "rules.eligibility.x.require.offer.price': not a string column of offer features"),
    ({"name": "x", "require": {"offer": {"family": [True]}}},
     r"rules.eligibility\[\].require.offer.family\[\]': must be a string, got True"),  # yes
    ({"name": "x", "when": {"offer": {"family": ["yes"]}}},
     "rules.eligibility.x.require': name at least one"),
    ({"name": "Bad name", "require": {"offer": {"family": ["yes"]}}}, "the name must be"),
    ({"name": "fatigue", "require": {"offer": {"family": ["yes"]}}}, "taken by the built-in"),
    ({"name": "x", "require": {"offer": {"family": []}}}, "list at least one value"),
])
def test_bad_rules_are_refused_at_start_up_naming_the_key(rule, message):
    with pytest.raises(ConfigError, match=message):
        config.from_dict({"rules": {"eligibility": [rule]}})


def test_rules_live_in_base_yaml_and_a_child_config_replaces_the_list(tmp_path):
    # business content is configuration: the code has no eligibility rule of its own
    assert config.from_dict({}).rules.eligibility == ()
    assert [r.name for r in DEFAULT_RULES] == ["prepaid_offers_for_prepaid",
                                               "business_plans_for_business",
                                               "family_bundles_for_families"]
    (tmp_path / "mine.yaml").write_text(
        f"extends: {config.Path('conf/base.yaml').resolve()}\n"
        "rules:\n  eligibility: []\n  campaign_cap: {max_share: 1.0}\n")
    mine = config.load(tmp_path / "mine.yaml").rules
    assert mine.eligibility == () and not mine.campaign_cap.enabled
    assert mine.fatigue == config.load("conf/base.yaml").rules.fatigue
