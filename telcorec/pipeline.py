"""Every stage in order for one run date, with a summary an operator can read at a glance."""
from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Callable

from pyspark.sql import SparkSession

from telcorec import (evaluation, features, generation, ingest, interactions, runs, scoring,
                      training)
from telcorec.config import Config
from telcorec.warehouse import Warehouse

log = logging.getLogger(__name__)

Stage = Callable[[SparkSession, Config, dt.date], object]
STAGES: dict[str, Stage] = {
    "generate": generation.run,
    "ingest": ingest.run,
    "features": features.run,
    "interactions": interactions.run,
    "train": training.run,
    "score": scoring.run,
    "evaluate": evaluation.run,
}


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, object]:
    results: dict[str, object] = {}
    for name, stage in STAGES.items():
        if name == "generate" and cfg.inputs.source != "generated":
            continue
        started = time.monotonic()
        log.info("stage %s: starting", name)
        results[name] = stage(spark, cfg, run_date)
        log.info("stage %s: done in %.1fs", name, time.monotonic() - started)
    return results


def summary(cfg: Config, run_date: dt.date, results: dict[str, object]) -> str:
    """A plain-text report of rows per stage, rejects, metrics and where the tables are."""
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    lines = [f"telcorec run {runs.run_id(cfg, run_date)} for run date {run_date}", ""]
    if "generate" in results:
        lines.append("generated inputs: " + ", ".join(f"{k} {v:,}" for k, v in
                                                      results["generate"].items()))
    lines.append("ingest (read = accepted + rejected):")
    for c in results.get("ingest", []):
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(c.rejected_by_reason.items()))
        lines.append(f"  {c.table:<14} read {c.read:>12,}  accepted {c.accepted:>12,}  "
                     f"rejected {c.rejected:>8,}  {reasons}")
    for stage in ("features", "interactions", "train", "score"):
        if stage in results:
            lines.append(f"{stage}: " + ", ".join(
                f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                for k, v in results[stage].items()))
    if "evaluate" in results:
        lines.append("evaluation (held-out latest plan, full ranking):")
        for model, values in results["evaluate"].items():
            lines.append(f"  {model:<14} " + "  ".join(f"{k} {v:.4f}"
                                                       for k, v in sorted(values.items())))
    lines += ["", f"tables (Delta) under {wh.root}: offers, metrics, rejects, ...",
              "query them:  ./spark-submit.sh sql \"SELECT * FROM offers LIMIT 20\""]
    return "\n".join(lines)
