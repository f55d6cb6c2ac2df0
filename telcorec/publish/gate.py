"""The quality gate: checks a run must pass before its offers are published.

Pure functions over small numbers (metrics and counts), so every rule is unit-tested on
literals. A failed check is a reason string; any reason refuses the publish and the run is
recorded as `rejected` with the reasons, leaving the `offers` table as it was.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from telcorec.core.config import GateConfig


@dataclass(frozen=True)
class OutputStats:
    rows: int
    subscribers: int
    k: int
    distinct_offers: int
    catalogue_size: int
    non_finite_scores: int


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
    expected = stats.subscribers * stats.k
    if expected and stats.rows < cfg.min_row_share * expected:
        reasons.append(f"only {stats.rows} offer rows for {stats.subscribers} subscribers x "
                       f"K={stats.k} (minimum share {cfg.min_row_share:.0%})")
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
