"""Business rules on literal rows: exact survivors, counts that add up, fatigue and the cap."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.testing import assertDataFrameEqual

from telcorec import config, rules
from telcorec.columns import Col
from telcorec.config import CampaignCapConfig, EligibilityRule, FatigueConfig, RuleCondition
from telcorec.exceptions import ConfigError

RUN = dt.date(2026, 11, 23)
DEFAULT_RULES = config.from_dict({}).rules.eligibility

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


def test_count_removed_on_executors_equals_local_counts(spark):
    rows = pd.concat([subscribers()] * 5, ignore_index=True)
    rows[Col.SUBSCRIBER_ID] = [f"S{i}" for i in range(len(rows))]
    for c in (Col.EXCLUDE_IDX, Col.FATIGUE_IDX):
        rows[c] = [None if a is None else [int(x) for x in a] for a in rows[c]]
    df = spark.createDataFrame(rows, "subscriber_id string, segment string, payment_type string, "
                               "household string, device_tier string, exclude_idx array<int>, "
                               "fatigue_idx array<int>").repartition(3)
    local = rules.removed_counts(rules.removal_masks(subscribers(), OFFERS, DEFAULT_RULES))
    assert rules.count_removed(df, OFFERS, DEFAULT_RULES) == {k: v * 5 for k, v in local.items()}


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


def test_cap_gives_slots_by_rank_then_score_and_refills_from_spare_candidates(spark):
    # three subscribers, K = 2 plus one spare candidate each; X is everyone's first choice
    rows = [("S1", "X", 1, 0.9), ("S1", "Y", 2, 0.8), ("S1", "Z", 3, 0.1),
            ("S2", "X", 1, 0.7), ("S2", "Z", 2, 0.6), ("S2", "Y", 3, 0.5),
            ("S3", "X", 1, 0.7), ("S3", "Y", 2, 0.3), ("S3", "Z", 3, 0.2)]
    df = spark.createDataFrame(rows, f"{Col.SUBSCRIBER_ID} string, {Col.OFFER_ID} string, "
                                     f"{Col.RANK} int, {Col.SCORE} double")
    marked = rules.mark_capped(df, 2)
    capped = {(r[Col.SUBSCRIBER_ID], r[Col.OFFER_ID])
              for r in marked.where(marked[rules.CAMPAIGN_CAP]).collect()}
    # X: three rank-1 rows, S2 and S3 tie at 0.7 (the subscriber id decides); Y: S1 and S3
    # rank it 2nd, S2 3rd; Z: S2 2nd, then S3 (0.2) before S1 (0.1) at rank 3
    assert capped == {("S3", "X"), ("S2", "Y"), ("S1", "Z")}
    assertDataFrameEqual(rules.top_k_uncapped(marked, 2), spark.createDataFrame(
        [("S1", "X", 1, 0.9), ("S1", "Y", 2, 0.8), ("S2", "X", 1, 0.7), ("S2", "Z", 2, 0.6),
         ("S3", "Y", 1, 0.3), ("S3", "Z", 2, 0.2)],  # S3's spare candidate fills in
        df.schema))
    # a cap of one: S2 keeps one offer, S3 none (fewer than K, never another subscriber's)
    assertDataFrameEqual(rules.top_k_uncapped(rules.mark_capped(df, 1), 2),
                         spark.createDataFrame([("S1", "X", 1, 0.9), ("S1", "Y", 2, 0.8),
                                                ("S2", "Z", 1, 0.6)], df.schema))


def test_cap_limit_takes_the_stricter_of_share_and_count():
    assert rules.cap_limit(CampaignCapConfig(max_share=1.0, max_subscribers=0), 1000) is None
    assert rules.cap_limit(CampaignCapConfig(max_share=0.25), 1001) == 250
    assert rules.cap_limit(CampaignCapConfig(max_share=0.5, max_subscribers=300), 1000) == 300
    assert rules.cap_limit(CampaignCapConfig(max_share=1.0, max_subscribers=40), 1000) == 40


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


def test_rules_default_to_base_yaml_and_a_child_config_replaces_the_list(tmp_path):
    assert config.load("conf/base.yaml").rules == config.from_dict({}).rules
    (tmp_path / "mine.yaml").write_text(
        f"extends: {config.Path('conf/base.yaml').resolve()}\n"
        "rules:\n  eligibility: []\n  campaign_cap: {max_share: 1.0}\n")
    mine = config.load(tmp_path / "mine.yaml").rules
    assert mine.eligibility == () and not mine.campaign_cap.enabled
    assert mine.fatigue == FatigueConfig()
