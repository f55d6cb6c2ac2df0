import math

from telcorec.core.config import GateConfig
from telcorec.publish.gate import OutputStats, check, possible_rows

GOOD = OutputStats(rows=1000, subscribers=100, k=10, distinct_offers=30, catalogue_size=60,
                   non_finite_scores=0)
CURRENT = {"lightfm_warp:precision@5": 0.14, "popularity:precision@5": 0.05}


def test_healthy_run_passes_first_time_and_against_itself():
    assert check(GateConfig(), "lightfm_warp", CURRENT, None, GOOD) == []
    assert check(GateConfig(), "lightfm_warp", CURRENT, dict(CURRENT), GOOD) == []


def test_drop_against_last_published_is_refused_only_beyond_the_margin():
    published = {"lightfm_warp:precision@5": 0.155}
    assert check(GateConfig(), "lightfm_warp", CURRENT, published, GOOD) == []  # -9.7%
    published = {"lightfm_warp:precision@5": 0.16}
    [reason] = check(GateConfig(), "lightfm_warp", CURRENT, published, GOOD)  # -12.5%
    assert "more than 10% below the last published 0.1600" in reason


def test_model_that_does_not_beat_popularity_is_refused():
    current = {"lightfm_warp:precision@5": 0.05, "popularity:precision@5": 0.05}
    [reason] = check(GateConfig(), "lightfm_warp", current, None, GOOD)
    assert "does not beat popularity" in reason
    lift = GateConfig(min_lift_over_popularity=2.0)
    assert check(lift, "lightfm_warp", CURRENT, None, GOOD)  # 0.14 < 0.05 x 3


def test_missing_or_nan_metric_is_refused():
    assert "run the evaluate stage" in check(GateConfig(), "lightfm_warp", {}, None, GOOD)[0]
    nan = {"lightfm_warp:precision@5": math.nan}
    assert check(GateConfig(), "lightfm_warp", nan, None, GOOD)


def test_output_anomalies_are_each_reported():
    bad = OutputStats(rows=800, subscribers=100, k=10, distinct_offers=2, catalogue_size=60,
                      non_finite_scores=3)
    reasons = check(GateConfig(), "lightfm_warp", CURRENT, None, bad)
    assert len(reasons) == 3
    assert "only 800 offer rows" in reasons[0]
    assert "coverage 3.3% below 5%" in reasons[1]
    assert "3 offer rows have NaN" in reasons[2]


def test_drift_refuses_only_when_on_and_names_the_features():
    from telcorec.publish.gate import drift_reasons
    psi = {"data_gb_month": 0.41, "segment": 0.02, "sms_month": 0.26}
    assert drift_reasons(psi, 0.0) == []  # off by default
    (reason,) = drift_reasons(psi, 0.25)
    assert "data_gb_month 0.410, sms_month 0.260" in reason and "segment" not in reason
    assert drift_reasons(psi, 0.5) == []


# The IBM Telco table's run: 7,039 subscribers, 13 offers, a cap of half the subscribers per
# offer (3,519), K = 10: the cap lets at most 13 x 3,519 = 45,747 rows through, 65% of 70,390.
IBM = dict(subscribers=7039, k=10, distinct_offers=13, catalogue_size=13, non_finite_scores=0)
IBM_POSSIBLE = possible_rows(fillable=7039 * 10, eligible_per_offer=[7039] * 13, cap=3519)


def test_possible_rows_is_the_smaller_of_what_subscribers_and_offers_can_take():
    assert IBM_POSSIBLE == 13 * 3519
    # rules that leave most subscribers 4 offers bound the rows before the cap does
    assert possible_rows(fillable=7000 * 4 + 39 * 10, eligible_per_offer=[7039] * 13,
                         cap=3519) == 28390
    # an offer the rules leave only 100 subscribers can take only 100 rows, capped or not
    assert possible_rows(fillable=500, eligible_per_offer=[100, 300], cap=200) == 300
    assert possible_rows(fillable=500, eligible_per_offer=[100, 300], cap=None) == 500


def test_a_cap_that_cannot_fill_k_is_no_reason_to_refuse():
    full = OutputStats(rows=45747, possible_rows=IBM_POSSIBLE, **IBM)
    assert check(GateConfig(), "lightfm_warp", CURRENT, None, full) == []
    # the check before the cap was counted: subscribers x K, which refused this very run
    [reason] = check(GateConfig(), "lightfm_warp", CURRENT, None,
                     OutputStats(rows=45747, **IBM))
    assert "only 45747 offer rows for 7039 subscribers x K=10, of 70390" in reason


def test_rows_missing_beyond_what_the_rules_and_cap_allow_are_still_refused():
    short = OutputStats(rows=int(0.85 * IBM_POSSIBLE), possible_rows=IBM_POSSIBLE, **IBM)
    [reason] = check(GateConfig(), "lightfm_warp", CURRENT, None, short)
    assert f"of {IBM_POSSIBLE} the rules and the campaign cap allow" in reason
    assert "gate.min_row_share" in reason
    # a bound above subscribers x K (a miscount) never lowers the bar below subscribers x K
    over = OutputStats(rows=850, subscribers=100, k=10, distinct_offers=30, catalogue_size=60,
                       non_finite_scores=0, possible_rows=5000)
    assert check(GateConfig(), "lightfm_warp", CURRENT, None, over)
