"""The quality gate: checks a run must pass before its offers are published.

Pure functions over small numbers (metrics and counts), so every rule is unit-tested on
literals. A failed check is a reason string; any reason refuses the publish and the run is
recorded as `rejected` with the reasons, leaving the `offers` table as it was.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from telcorec.core.config import GateConfig
from telcorec.core.exceptions import GateRejected

REFUSED = "quality gate refused to publish: "


@dataclass(frozen=True)
class OutputStats:
    rows: int
    subscribers: int
    k: int
    distinct_offers: int
    catalogue_size: int
    non_finite_scores: int
    # the most rows the business rules and the campaign cap let through (`possible_rows`);
    # None: every subscriber could get K rows
    possible_rows: int | None = None

    @property
    def expected_rows(self) -> int:
        full = self.subscribers * self.k
        return full if self.possible_rows is None else min(self.possible_rows, full)


def possible_rows(fillable: int, eligible_per_offer: Iterable[int], cap: int | None) -> int:
    """The most offer rows a run can publish: no subscriber gets more than K offers nor more
    than the rules leave them (`fillable`: the sum over subscribers of min(K, eligible offers)),
    and no offer reaches more than the campaign cap's `cap` subscribers nor more than the rules
    leave it (`eligible_per_offer`). Both are cuts of the subscriber-offer assignment, so the
    smaller one bounds what any cap and ranking can fill; the row check compares with it, not
    with subscribers x K, which a cap on a small catalogue can never reach."""
    if cap is None:
        return fillable
    return min(fillable, sum(min(cap, n) for n in eligible_per_offer))


@dataclass(frozen=True)
class Verdict:
    """The gate's answer for the summary and the report: the reasons it refused (none:
    published) and the row check's figures."""
    reasons: tuple[str, ...] = ()
    stats: OutputStats | None = None

    @property
    def published(self) -> bool:
        return not self.reasons

    def rows_line(self) -> str:
        if self.stats is None:
            return ""
        s = self.stats
        return (f"{s.rows:,} offer rows of {s.expected_rows:,} the rules and the campaign cap "
                f"allow ({s.subscribers:,} subscribers x K={s.k} = {s.subscribers * s.k:,})")


class GateRefusal(GateRejected):
    """GateRejected with what the gate saw: the verdict, and the counts of the pass it judged
    (rules' removals, rank-1 rows per arm, rows per offer) for the summary and the report."""

    def __init__(self, verdict: Verdict, removed: dict[str, int] | None = None,
                 arms: dict[str, int] | None = None, offers: dict[str, int] | None = None):
        super().__init__(REFUSED + "; ".join(verdict.reasons))
        self.verdict = verdict
        self.removed = dict(removed or {})
        self.arms = dict(arms or {})
        self.offers = dict(offers or {})


def check(cfg: GateConfig, model: str, current: dict[str, float],
          published: dict[str, float] | None, stats: OutputStats) -> list[str]:
    """Every reason to refuse publishing; an empty list means publish."""
    key = f"{cfg.metric}@{cfg.k}"
    reasons = []
    value = current.get(f"{model}:{key}")
    if value is None or math.isnan(value):
        reasons.append(f"no {key} for {model} in this run's metrics: run the evaluate stage")
    else:
        baseline = current.get(f"popularity:{key}")
        if baseline is not None and value <= baseline * (1 + cfg.min_lift_over_popularity):
            reasons.append(f"{model} {key} {value:.4f} does not beat popularity {baseline:.4f} "
                           f"by the required lift {cfg.min_lift_over_popularity:.0%}")
        before = (published or {}).get(f"{model}:{key}")
        if before is not None and value < before * (1 - cfg.max_drop_vs_published):
            reasons.append(f"{model} {key} {value:.4f} is more than "
                           f"{cfg.max_drop_vs_published:.0%} below the last published {before:.4f}")
    expected = stats.expected_rows
    if expected and stats.rows < cfg.min_row_share * expected:
        reasons.append(f"only {stats.rows} offer rows for {stats.subscribers} subscribers x "
                       f"K={stats.k}, of {expected} the rules and the campaign cap allow "
                       f"(minimum share {cfg.min_row_share:.0%}, gate.min_row_share)")
    coverage = stats.distinct_offers / stats.catalogue_size if stats.catalogue_size else 0.0
    if coverage < cfg.min_catalogue_coverage:
        reasons.append(f"catalogue coverage {coverage:.1%} below {cfg.min_catalogue_coverage:.0%}")
    if stats.non_finite_scores:
        reasons.append(f"{stats.non_finite_scores} offer rows have NaN or infinite scores")
    return reasons


def drift_reasons(psi: dict[str, float], limit: float) -> list[str]:
    """Refuse when an input feature's PSI against the previous run exceeds `limit` (drift.gate_max_psi;
    0 = off), naming the features."""
    over = sorted(f for f, v in psi.items() if limit > 0 and v == v and v > limit)
    if not over:
        return []
    shown = ", ".join(f"{f} {psi[f]:.3f}" for f in over)
    return [f"input drift: PSI above drift.gate_max_psi={limit} against the previous published "
            f"run for {shown}; check these inputs, or raise or zero the limit to publish"]
