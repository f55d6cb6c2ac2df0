"""Settings of the feature and interactions stages."""
from __future__ import annotations

from dataclasses import dataclass

from telcorec.core.config.loader import check


@dataclass(frozen=True)
class FeaturesConfig:
    intensity_bins: int = 5
    stable_cv: float = 0.3
    trend_months: int = 3
    trend_band: float = 0.10
    renewal_days: int = 90
    business_hours: tuple[int, ...] = (9, 17)
    constrained_ratio: float = 0.9
    wasteful_ratio: float = 0.3
    churn_model: str = "auto"
    churn_bands: tuple[float, ...] = (0.3, 0.6)
    churn_holdout: float = 0.2
    fit_stats: bool = True
    late_days: int = 3

    def __post_init__(self) -> None:
        check(self.intensity_bins == 5, "features.intensity_bins",
               "must be 5 (the labels very_low .. very_high are defined for five bins)")
        check(self.stable_cv > 0, "features.stable_cv", "must be > 0")
        check(1 <= self.trend_months <= 12, "features.trend_months", "must be in [1, 12]")
        check(0 < self.trend_band < 1, "features.trend_band", "must be in (0, 1)")
        check(self.renewal_days >= 1, "features.renewal_days", "must be >= 1")
        check(len(self.business_hours) == 2
               and 0 <= self.business_hours[0] < self.business_hours[1] <= 24,
               "features.business_hours", "must be [start, end) hours with 0 <= start < end <= 24")
        check(0 < self.wasteful_ratio < self.constrained_ratio, "features.wasteful_ratio",
               "must be in (0, features.constrained_ratio)")
        check(self.churn_model in ("auto", "rule"), "features.churn_model",
               "must be auto (a classifier when the data has a churn label, else the rule) or rule")
        check(len(self.churn_bands) == 2 and 0 < self.churn_bands[0] < self.churn_bands[1] < 1,
               "features.churn_bands", "must be two increasing probabilities in (0, 1)")
        check(0 < self.churn_holdout < 0.5, "features.churn_holdout", "must be in (0, 0.5)")
        # below 29, a day is settled before it can move from the first 30-day month to the next
        check(0 <= self.late_days <= 28, "features.late_days",
              "must be in [0, 28] (days of CDR aggregated again each run, for late arrivals)")


@dataclass(frozen=True)
class InteractionsConfig:
    """Implicit confidence c = 1 + alpha * normalised usage (Hu, Koren, Volinsky 2008), optionally
    times exp(-days / decay_days), and the train/test split."""
    alpha: float = 40.0
    time_decay: bool = False
    decay_days: float = 30.0
    usage_quantile: float = 0.99
    split: str = "leave_one_out"
    cutoff_days: int = 90
    test_share: float = 0.2
    # an offer the subscriber accepted (`responses`) is a pair of at least this confidence
    accepted_weight: float = 41.0

    def __post_init__(self) -> None:
        check(self.alpha >= 0, "interactions.alpha", "must be >= 0")
        check(self.accepted_weight >= 1, "interactions.accepted_weight",
               "must be >= 1 (the confidence of a pair seen once)")
        check(self.decay_days > 0, "interactions.decay_days", "must be > 0")
        check(0 < self.usage_quantile <= 1, "interactions.usage_quantile", "must be in (0, 1]")
        check(self.split in ("leave_one_out", "temporal", "random"), "interactions.split",
               "must be leave_one_out (latest pair per subscriber), temporal or random")
        check(self.cutoff_days >= 1, "interactions.cutoff_days", "must be >= 1")
        check(0 < self.test_share < 1, "interactions.test_share", "must be in (0, 1)")
