"""Settings of the offline evaluation and of the quality gate that judges a run before publishing."""
from __future__ import annotations

from dataclasses import dataclass

from telcorec.core.config.loader import check


@dataclass(frozen=True)
class GateConfig:
    """Checks before `offers` is touched; a failing check marks the run `rejected`."""
    metric: str = "precision"
    k: int = 5
    max_drop_vs_published: float = 0.10
    min_lift_over_popularity: float = 0.0
    min_row_share: float = 0.9
    min_catalogue_coverage: float = 0.05

    def __post_init__(self) -> None:
        check(self.metric in ("precision", "recall"), "gate.metric", "must be precision or recall")
        check(self.k >= 1, "gate.k", "must be >= 1")
        check(0 <= self.max_drop_vs_published < 1, "gate.max_drop_vs_published",
               "must be in [0, 1)")
        check(self.min_lift_over_popularity >= -1, "gate.min_lift_over_popularity",
               "must be >= -1")
        check(0 <= self.min_row_share <= 1, "gate.min_row_share", "must be in [0, 1]")
        check(0 <= self.min_catalogue_coverage <= 1, "gate.min_catalogue_coverage",
               "must be in [0, 1]")


@dataclass(frozen=True)
class EvaluationConfig:
    """`ks`: the cut-offs of the full-ranking metrics. `sampled_negatives`: N of the
    sampled-candidates protocol (`sampled{N}` rows for every model and baseline; 0 = off)."""
    ks: tuple[int, ...] = (5, 10)
    sampled_negatives: int = 99

    def __post_init__(self) -> None:
        check(len(self.ks) > 0 and all(k >= 1 for k in self.ks), "evaluation.ks",
               "must be a non-empty list of positive integers")
        check(self.sampled_negatives >= 0, "evaluation.sampled_negatives",
               "must be >= 0 (0 turns the sampled-candidates protocol off)")
