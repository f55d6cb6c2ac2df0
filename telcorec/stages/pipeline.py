"""Every stage in order for one run date, with a summary an operator can read at a glance."""
from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from typing import Callable

from pyspark.sql import SparkSession

from telcorec.core.config import Config
from telcorec.io import runs
from telcorec.io.warehouse import Warehouse
from telcorec.stages import (
    drift,
    evaluate,
    experiment,
    features,
    generate,
    ingest,
    interactions,
    ncf,
    score,
    train,
    tune,
)

log = logging.getLogger(__name__)

Stage = Callable[[SparkSession, Config, dt.date], object]
STAGES: dict[str, Stage] = {  # in order; skip_reason says which a config leaves out
    "generate": generate.run,
    "ingest": ingest.run,
    "features": features.run,
    "interactions": interactions.run,
    "tune": tune.run,
    "train": train.run,
    "ncf": ncf.run,
    "evaluate": evaluate.run,
    "score": score.run,  # checks the quality gate, then publishes `offers`
    "drift": drift.run,  # against the previous published run
    "experiment": experiment.run,  # A/B results of the offers of the window before the run date
}


def skip_reason(cfg: Config, stage: str) -> str | None:
    """Why `cfg` leaves `stage` out, or None when it runs: the pipeline skips the stage, and the
    stage's own job (./spark-submit.sh <stage>) refuses with this message."""
    if stage == "generate" and cfg.inputs.source != "generated":
        return (f"inputs.source is {cfg.inputs.source!r}: the generator writes only the demo's "
                "inputs (inputs.source: generated), never over the tables of another source")
    if stage == "ncf" and not cfg.ncf.enabled:
        return ("ncf.enabled is false in this config: use conf/full.yaml or set "
                "ncf: {enabled: true} in yours")
    if stage == "tune" and not (cfg.tuning.enabled or cfg.ensemble.tune_weights):
        return ("nothing to tune: set tuning: {enabled: true} and/or ensemble: "
                "{tune_weights: true} (conf/full.yaml has both)")
    return None


def run(spark: SparkSession, cfg: Config, run_date: dt.date, *,
        secret: bytes | None = None) -> dict[str, object]:
    """Run every stage as one attempt recorded in `runs` (running -> succeeded/failed/rejected).
    `secret` is the pseudonymisation key, resolved at the job's edge (see ingest.run)."""
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    # the key is handed to the one stage that reads identifiers, never stored in config
    stages = {**STAGES, "ingest": functools.partial(ingest.run, secret=secret)}

    def every_stage(results: dict[str, object]) -> None:
        for name, stage in stages.items():
            reason = skip_reason(cfg, name)
            if reason:
                log.info("stage %s: skipped (%s)", name, reason.split(":")[0])
                continue
            started = time.monotonic()
            log.info("stage %s: starting", name)
            results[name] = stage(spark, cfg, run_date)
            log.info("stage %s: done in %.1fs", name, time.monotonic() - started)

    return runs.recorded(wh.table("runs"), wh.table("metrics"), cfg, run_date, every_stage,
                         job="pipeline")


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
    for stage in ("features", "interactions", "tune", "train", "score", "drift", "experiment"):
        if stage in results:
            lines.append(f"{stage}: " + _figures(results[stage]))
    if "evaluate" in results:
        evaluated = dict(results["evaluate"])
        report = evaluated.pop("report")
        lines.append("evaluation (held-out latest plan, full ranking):")
        for model, values in evaluated.items():
            lines.append(f"  {model:<14} " + "  ".join(f"{k} {v:.4f}"
                                                       for k, v in sorted(values.items())))
        lines.append(f"run report (figures, per segment, cold start, training): {report}")
    lines += ["", f"tables (Delta) under {wh.root}: offers, metrics, rejects, ...",
              "query them:  ./spark-submit.sh sql \"SELECT * FROM offers LIMIT 20\""]
    return "\n".join(lines)


def _figures(values: dict) -> str:
    """A stage's result on one line: "offers 6,000, model lightfm_warp, rules (fatigue 12, ...)"."""
    return ", ".join(f"{k} ({_figures(v)})" if isinstance(v, dict)
                     else f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                     for k, v in values.items())
