import math

from telcorec.core.config import GateConfig
from telcorec.publish.gate import OutputStats, check

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
