"""Every stage in order for one run date, with a summary an operator can read at a glance."""
from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pyspark.sql import SparkSession

from telcorec.core.config import Config
from telcorec.core.exceptions import GateRejected
from telcorec.evaluation import report, report_sections
from telcorec.io import runs
from telcorec.publish import fit
from telcorec.publish.gate import GateRefusal
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
from telcorec.stages.context import StageContext

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


def check_k(spark: SparkSession, cfg: Config, run_date: dt.date) -> None:
    """scoring.k against the catalogue, the rules and the cap, as soon as the features stage has
    written them: a K no run can fill stops here, not at the quality gate after training."""
    ctx = StageContext.open(spark, cfg, run_date)
    fit.check_k(cfg, ctx.read("subscriber_features"), ctx.read("offer_features").toPandas())


def run(spark: SparkSession, cfg: Config, run_date: dt.date, *,
        secret: bytes | None = None, into: dict[str, object] | None = None) -> dict[str, object]:
    """Run every stage as one attempt recorded in `runs` (running -> succeeded/failed/rejected).
    `secret` is the pseudonymisation key, resolved at the job's edge (see ingest.run). `into`
    receives each stage's result as it finishes, so a caller keeps them when a stage raises."""
    wh = StageContext.open(spark, cfg, run_date).wh
    # the key is handed to the one stage that reads identifiers, never stored in config
    stages = {**STAGES, "ingest": functools.partial(ingest.run, secret=secret)}

    def every_stage(results: dict[str, object]) -> None:
        skipped = {name: skip_reason(cfg, name) for name in stages}
        for name, reason in skipped.items():
            if reason:
                log.info("stage %s: skipped (%s)", name, reason.split(":")[0])
        running = [name for name, reason in skipped.items() if reason is None]
        began = time.monotonic()
        for number, name in enumerate(running, start=1):
            step = f"[{number}/{len(running)}] {name}"
            log.info("%s ...", step)
            started = time.monotonic()
            results[name] = stages[name](spark, cfg, run_date)
            if into is not None:
                into[name] = results[name]
            log.info("%s done in %s (run %s)%s", step, _elapsed(time.monotonic() - started),
                     _elapsed(time.monotonic() - began), _brief(results[name]))
            if name == "features":
                check_k(spark, cfg, run_date)

    return runs.recorded(wh.table("runs"), wh.table("metrics"), cfg, run_date, every_stage,
                         job="pipeline")


def _elapsed(seconds: float) -> str:
    """12 s, 3 min 05 s: for people."""
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


def _brief(result: object, width: int = 70) -> str:
    """A stage's counts in a few words for its progress line (the summary has them all)."""
    if not isinstance(result, dict):
        return ""
    counts = ", ".join(f"{k} {v:,}" for k, v in result.items()
                       if isinstance(v, int) and not isinstance(v, bool))
    return "" if not counts else ": " + (counts if len(counts) <= width
                                         else counts[:width - 3].rsplit(", ", 1)[0] + ", ...")


@dataclass(frozen=True)
class Outcome:
    """A pipeline attempt: each stage's result, and the quality gate's refusal (None: the
    offers were published)."""
    results: dict[str, object]
    refusal: GateRejected | None


def attempt(spark: SparkSession, cfg: Config, run_date: dt.date, *,
            secret: bytes | None = None) -> Outcome:
    """`run`, with a refusal of the quality gate returned instead of raised, and the run report
    rewritten with the gate's verdict and the offers section once the score stage has judged."""
    results: dict[str, object] = {}
    refusal = None
    try:
        run(spark, cfg, run_date, secret=secret, into=results)
    except GateRejected as exc:
        refusal = exc
    if isinstance(results.get("evaluate"), dict):
        ctx = StageContext.open(spark, cfg, run_date)
        offers = offers_outcome(ctx, results.get("score"), refusal)
        results["evaluate"]["report"] = str(report.write(ctx.wh, cfg, run_date, offers))
    return Outcome(results, refusal)


def offers_outcome(ctx: StageContext, scored: dict | None,
                   refusal: GateRejected | None) -> report_sections.OffersOutcome:
    """What the report's offers section shows: Spark aggregates of the published offers (or,
    refused, the counts of the pass the gate judged), the rules' removals and the rejects."""
    rejects = (report_sections.rejects_by_reason(ctx.read("rejects"))
               if ctx.writer.exists(ctx.spark, ctx.wh.table("rejects")) else None)
    if refusal is not None:
        counts = refusal if isinstance(refusal, GateRefusal) else None
        return report_sections.OffersOutcome(
            published=False, reasons=report_sections.reasons_of(refusal),
            rows_line=counts.verdict.rows_line() if counts else "",
            removed=counts.removed if counts else {}, first_by_arm=counts.arms if counts else {},
            rows_by_offer=counts.offers if counts else {}, rejects=rejects)
    # the run date's partition: this attempt has just replaced it
    by_segment, by_arm = report_sections.offer_mix(ctx.read("offers"),
                                                   ctx.read("subscriber_features"))
    return report_sections.OffersOutcome(
        published=True, reasons=(), rows_line=str((scored or {}).get("gate", "")),
        removed=dict((scored or {}).get("rules", {})),
        first_by_arm=dict((scored or {}).get("subscribers_by_arm", {})),
        by_segment=by_segment, by_arm=by_arm, rejects=rejects)


def verdict_lines(results: dict[str, object], refusal: GateRejected | None) -> list[str]:
    """The quality gate's verdict, first in the summary: published, or refused and why."""
    if refusal is not None:
        lines = ["quality gate: refused, offers not published (the table keeps its last "
                 "published rows; the run is recorded as rejected in `runs`):"]
        lines += [f"  - {r}" for r in report_sections.reasons_of(refusal)]
        return lines
    scored = results.get("score")
    if isinstance(scored, dict):
        return [f"quality gate: passed, offers published: {scored.get('gate', '')}".rstrip(": ")]
    return []


def summary(cfg: Config, run_date: dt.date, results: dict[str, object],
            refusal: GateRejected | None = None) -> str:
    """A plain-text report of the gate's verdict, rows per stage, rejects, metrics and where the
    tables are."""
    lines = [f"telcorec run {runs.run_id(cfg, run_date)} for run date {run_date}",
             *verdict_lines(results, refusal), ""]
    if "generate" in results:
        lines.append("generated inputs: " + ", ".join(f"{k} {v:,}" for k, v in
                                                      results["generate"].items()))
    lines.append("ingest (read = accepted + rejected):")
    for c in results.get("ingest", []):
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(c.rejected_by_reason.items(),
                                                              key=lambda rn: -rn[1]))
        lines.append(_clip(f"  {c.table:<14} read {c.read:>11,}  accepted {c.accepted:>11,}  "
                           f"rejected {c.rejected:>7,}  {reasons}"))
    for stage in ("features", "interactions", "tune", "train", "score", "drift", "experiment"):
        if stage in results:
            figures = {k: v for k, v in results[stage].items() if k != "gate"}
            lines.append(_clip(f"{stage}: " + _figures(figures)))
    if "evaluate" in results:
        evaluated = dict(results["evaluate"])
        path = evaluated.pop("report")
        lines.append("evaluation (held-out latest plan, full ranking; every figure in the report):")
        for model, values in evaluated.items():
            lines.append(_clip(f"  {model:<14} " + "  ".join(
                f"{k} {v:.3f}" for k, v in sorted(values.items(), key=_headline_first)
                if " " not in k), sep="  "))
        lines.append(f"run report (figures, per segment, cold start, training): {path}")
    lines += ["", f"tables (Delta) under {Path(cfg.warehouse).resolve()}: offers, metrics, rejects, ...",
              "query them:  ./spark-submit.sh sql \"SELECT * FROM offers LIMIT 20\""]
    return "\n".join(lines)


WIDTH = 120  # a summary line fits a terminal; the report has the rest
_HEADLINE = ("precision@", "ndcg@", "recall@", "hit_rate@", "map@", "auc", "coverage@")


def _headline_first(item: tuple[str, float]) -> tuple[int, str, int]:
    """Metrics in the order a reader looks for them: precision, ndcg, recall, ..., coverage;
    each by K ascending."""
    name, _, k = item[0].partition("@")
    rank = next((i for i, p in enumerate(_HEADLINE) if item[0].startswith(p)), len(_HEADLINE))
    return rank, name, int(k) if k.isdigit() else 0


def _clip(line: str, sep: str = ", ") -> str:
    """`line` cut at its last `sep` that leaves room for " ..." within WIDTH characters."""
    if len(line) <= WIDTH:
        return line
    head = line[:WIDTH - 4]
    cut = head.rfind(sep)
    return (head[:cut] if cut > 0 else head).rstrip(",") + " ..."


def _figures(values: dict) -> str:
    """A stage's result on one line: "offers 6,000, model lightfm_warp, rules (fatigue 12, ...)"."""
    return ", ".join(f"{k} ({_figures(v)})" if isinstance(v, dict)
                     else f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                     for k, v in values.items())
