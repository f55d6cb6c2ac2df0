"""Settings of what the score stage does to every subscriber's candidates: K and the model, cold
start, business rules (eligibility, fatigue, campaign cap), re-ranking, reasons and experiment arms."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from telcorec.core import schemas
from telcorec.core.config.loader import check


@dataclass(frozen=True)
class ScoringConfig:
    k: int = 10
    model: str = "lightfm_warp"

    def __post_init__(self) -> None:
        check(1 <= self.k <= 100, "scoring.k", "must be in [1, 100]")


@dataclass(frozen=True)
class ContentWeights:
    """The content rule score's parts (telcorec/offers/cold_start.py); they sum to 1."""
    segment: float = 0.4
    data: float = 0.3
    price: float = 0.3

    def __post_init__(self) -> None:
        parts = (self.segment, self.data, self.price)
        check(all(p >= 0 for p in parts) and abs(sum(parts) - 1) < 1e-9,
               "cold_start.content", "segment, data and price must be >= 0 and sum to 1")


@dataclass(frozen=True)
class ColdStartConfig:
    """Routing by tenure: content rules only up to new_days, a blend up to warm_days, then the
    model alone (telcorec/offers/cold_start.py)."""
    enabled: bool = True
    new_days: int = 7
    warm_days: int = 30
    warm_content_weight: float = 0.7
    data_headroom: float = 1.2
    content: ContentWeights = field(default_factory=ContentWeights)
    # the plan types each segment buys: business content, written out in conf/base.yaml
    segment_plan_types: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(0 <= self.new_days <= self.warm_days, "cold_start.new_days",
               "must be >= 0 and <= cold_start.warm_days")
        check(0 <= self.warm_content_weight <= 1, "cold_start.warm_content_weight",
               "must be in [0, 1]")
        check(self.data_headroom > 0, "cold_start.data_headroom", "must be > 0")


def _string_columns(schema) -> list[str]:
    return sorted(f.name for f in schema.fields if f.dataType.typeName() == "string")


@dataclass(frozen=True)
class RuleCondition:
    """Attribute values a subscriber x offer pair must have: each named column holds one of its
    listed values (strings as in subscriber_features / offer_features; NULL matches nothing)."""
    subscriber: dict[str, tuple[str, ...]] = field(default_factory=dict)
    offer: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def check(self, key: str) -> None:
        for side, columns, schema in (("subscriber", self.subscriber, schemas.SUBSCRIBER_FEATURES),
                                      ("offer", self.offer, schemas.OFFER_FEATURES)):
            allowed = _string_columns(schema)
            for column, values in columns.items():
                check(column in allowed, f"{key}.{side}.{column}",
                       f"not a string column of {side} features; use one of {allowed}")
                check(len(values) > 0, f"{key}.{side}.{column}", "list at least one value")


@dataclass(frozen=True)
class EligibilityRule:
    """A pair that matches `when` and fails `require` is removed (an empty `when` matches all)."""
    name: str
    description: str = ""
    when: RuleCondition = field(default_factory=RuleCondition)
    require: RuleCondition = field(default_factory=RuleCondition)

    def __post_init__(self) -> None:
        key = f"rules.eligibility.{self.name}"
        check(bool(_RULE_NAME.match(self.name)), key,
               "the name must be lower-case letters, digits and _ (it is a key in `runs` counts)")
        check(bool(self.require.subscriber or self.require.offer), f"{key}.require",
               "name at least one subscriber or offer column the pair must satisfy")
        self.when.check(f"{key}.when")
        self.require.check(f"{key}.require")


_RULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


# segment names are data values (compared, never put into SQL text); quotes, ; and = are refused
# all the same so that a name that looks like an injection fails at start-up
_SEGMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _./+-]{0,63}$")


_SEGMENT_RULE = "a segment name is letters, digits, space and _ . / + - (at most 64)"


@dataclass(frozen=True)
class FatigueConfig:
    """An offer published to a subscriber at rank <= `ranks` in the `days` days before the run
    date is not offered to them again (days = 0: off); nor one they declined in the
    `decline_days` days, or accepted in the `accept_days` days, before it (from `responses`)."""
    days: int = 7
    ranks: int = 1
    decline_days: int = 30
    accept_days: int = 30

    def __post_init__(self) -> None:
        check(0 <= self.days <= 366, "rules.fatigue.days", "must be in [0, 366] (0 = off)")
        check(self.ranks >= 1, "rules.fatigue.ranks", "must be >= 1")
        check(0 <= self.decline_days <= 366, "rules.fatigue.decline_days",
               "must be in [0, 366] (0 = declines do not count)")
        check(0 <= self.accept_days <= 366, "rules.fatigue.accept_days",
               "must be in [0, 366] (0 = an accepted offer may be offered again at once)")


@dataclass(frozen=True)
class CampaignCapConfig:
    """At most max_share of the scored subscribers (and, when > 0, at most max_subscribers)
    get any one offer; `spare` candidates beyond K per subscriber replace capped offers."""
    max_share: float = 0.5
    max_subscribers: int = 0
    spare: int = 10

    def __post_init__(self) -> None:
        check(0 < self.max_share <= 1, "rules.campaign_cap.max_share",
               "must be in (0, 1] (1 = no share cap)")
        check(self.max_subscribers >= 0, "rules.campaign_cap.max_subscribers",
               "must be >= 0 (0 = no absolute cap)")
        check(0 <= self.spare <= 100, "rules.campaign_cap.spare", "must be in [0, 100]")

    @property
    def enabled(self) -> bool:
        return self.max_share < 1 or self.max_subscribers > 0


@dataclass(frozen=True)
class RulesConfig:
    # the operator's eligibility rules: business content, written out in conf/base.yaml
    eligibility: tuple[EligibilityRule, ...] = ()
    fatigue: FatigueConfig = field(default_factory=FatigueConfig)
    campaign_cap: CampaignCapConfig = field(default_factory=CampaignCapConfig)

    def __post_init__(self) -> None:
        names = [r.name for r in self.eligibility]
        check(len(set(names)) == len(names), "rules.eligibility", "two rules share a name")
        reserved = {"consent", "current_plan", "fatigue", "campaign_cap"}
        check(not reserved & set(names), "rules.eligibility",
               f"rule names {sorted(reserved)} are taken by the built-in rules")


@dataclass(frozen=True)
class RerankWeights:
    """final = relevance x model relevance + revenue x price uplift + retention x churn risk x
    retention value + diversity x (1 - similarity to offers ranked above); they sum to 1."""
    relevance: float = 0.4
    revenue: float = 0.3
    retention: float = 0.2
    diversity: float = 0.1

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.relevance, self.revenue, self.retention, self.diversity)

    def check(self, key: str) -> None:
        check(all(w >= 0 for w in self.as_tuple()), key, "weights must be >= 0")
        check(abs(sum(self.as_tuple()) - 1) < 1e-6, key,
               f"weights must sum to 1 (they sum to {sum(self.as_tuple()):g}), so that final "
               "scores compare across segments")


@dataclass(frozen=True)
class RerankConfig:
    weights: RerankWeights = field(default_factory=RerankWeights)
    segments: dict[str, RerankWeights] = field(default_factory=dict)  # segment -> weights

    def __post_init__(self) -> None:
        self.weights.check("rerank.weights")
        for segment, weights in self.segments.items():
            check(bool(_SEGMENT_NAME.match(segment)), f"rerank.segments.{segment}", _SEGMENT_RULE)
            weights.check(f"rerank.segments.{segment}")


@dataclass(frozen=True)
class ReasonsConfig:
    top_pairs: int = 2   # subscriber-feature x offer-feature pairs named per offer row

    def __post_init__(self) -> None:
        check(0 <= self.top_pairs <= 10, "reasons.top_pairs", "must be in [0, 10]")


@dataclass(frozen=True)
class ExperimentConfig:
    """Arms by hash of salt and subscriber id; the `control` arm gets the baseline's offers.
    The results (telcorec/evaluation/experiment.py) cover the offers of the `window_days` run
    dates before the run date, with `confidence` intervals, the minimum detectable effect at
    `power`, and a sample-ratio mismatch flagged when its p-value is below `srm_alpha`."""
    salt: str = "telcorec-offers-1"
    arms: dict[str, float] = field(default_factory=lambda: {"model": 0.9, "control": 0.1})
    control: str = "control"
    window_days: int = 7
    confidence: float = 0.95
    power: float = 0.8
    srm_alpha: float = 0.001

    def __post_init__(self) -> None:
        check(1 <= self.window_days <= 366, "experiment.window_days", "must be in [1, 366]")
        check(0.5 <= self.confidence < 1, "experiment.confidence", "must be in [0.5, 1)")
        check(0.5 <= self.power < 1, "experiment.power", "must be in [0.5, 1)")
        check(0 < self.srm_alpha < 0.5, "experiment.srm_alpha", "must be in (0, 0.5)")
        check(bool(self.salt), "experiment.salt", "must be a non-empty string")
        check(len(self.arms) > 0 and all(_RULE_NAME.match(a) for a in self.arms),
               "experiment.arms", "name at least one arm, in lower-case letters, digits and _")
        check(all(s >= 0 for s in self.arms.values())
               and abs(sum(self.arms.values()) - 1) < 1e-9, "experiment.arms",
               f"shares must be >= 0 and sum to 1 (they sum to {sum(self.arms.values()):g})")
        check(self.control == "" or self.control in self.arms, "experiment.control",
               f"must be one of the arms {sorted(self.arms)} or \"\" (no control arm)")
        check(any(a != self.control for a in self.arms), "experiment.arms",
               "at least one arm besides the control arm must get the model")
