"""Run identity: one deterministic id per (run date, effective configuration)."""
from __future__ import annotations

import datetime as dt

from telcorec.config import Config


def run_id(cfg: Config, run_date: dt.date) -> str:
    """Same run date and config -> same id, so a rerun reproduces its rows exactly."""
    return f"{run_date:%Y%m%d}-{cfg.fingerprint()[:8]}"
