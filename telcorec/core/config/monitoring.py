"""Settings of the feedback loop: drift monitoring (telcorec/evaluation/drift.py) and the simulated
campaign's response model (telcorec/synthetic/responses.py, telcorec/stages/simulate.py)."""
from __future__ import annotations

from dataclasses import dataclass

from telcorec.core.config.loader import check


@dataclass(frozen=True)
class DriftConfig:
    """PSI of every model input feature and of the served scores against the previous run date
    (and the served model's training date), offer-mix PSI and input-volume change per table.
    A value above its threshold sets `alert`. `gate_max_psi` > 0 makes the quality gate refuse
    to publish when an input feature's PSI against the previous run date exceeds it (0 = off)."""
    bins: int = 10              # numeric features: deciles of the reference; categories: one bin each
    psi_alert: float = 0.2      # the usual "significant shift" level of PSI
    offer_mix_alert: float = 0.2
    volume_alert: float = 0.5   # |rows / reference rows - 1|
    gate_max_psi: float = 0.0

    def __post_init__(self) -> None:
        check(2 <= self.bins <= 100, "drift.bins", "must be in [2, 100]")
        check(self.psi_alert > 0, "drift.psi_alert", "must be > 0")
        check(self.offer_mix_alert > 0, "drift.offer_mix_alert", "must be > 0")
        check(self.volume_alert > 0, "drift.volume_alert", "must be > 0")
        check(self.gate_max_psi >= 0, "drift.gate_max_psi", "must be >= 0 (0 = off)")


@dataclass(frozen=True)
class SimulationConfig:
    """How generated subscribers answer the offers of a day: P(accept) =
    max_accept x sigmoid(utility_scale x (u(offer) - u(current plan)) + bias) x rank_decay^(rank-1);
    of those who see an offer and do not accept it, `decline_share` say no, the rest ignore it."""
    max_accept: float = 0.5
    utility_scale: float = 1.5
    bias: float = -1.0
    rank_decay: float = 0.6
    decline_share: float = 0.3

    def __post_init__(self) -> None:
        check(0 < self.max_accept <= 1, "simulation.max_accept", "must be in (0, 1]")
        check(self.utility_scale > 0, "simulation.utility_scale", "must be > 0")
        check(0 < self.rank_decay <= 1, "simulation.rank_decay", "must be in (0, 1]")
        check(0 <= self.decline_share <= 1, "simulation.decline_share", "must be in [0, 1]")


@dataclass(frozen=True)
class RunsConfig:
    """How a running attempt shows it is alive (telcorec/io/heartbeat.py): its heartbeat file is
    rewritten every `heartbeat_seconds`; one older than `heartbeat_timeout_seconds` (or whose
    process is gone from this host) marks the attempt abandoned. Not part of the run id: how
    an attempt is watched does not change what it computes."""
    heartbeat_seconds: float = 30.0
    heartbeat_timeout_seconds: float = 120.0

    def __post_init__(self) -> None:
        check(self.heartbeat_seconds > 0, "runs.heartbeat_seconds", "must be > 0")
        check(self.heartbeat_timeout_seconds >= 2 * self.heartbeat_seconds,
              "runs.heartbeat_timeout_seconds",
              "must be at least twice runs.heartbeat_seconds (one late beat is not a death)")
