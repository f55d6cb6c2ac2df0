"""The score stage: every subscriber against every offer in one publishing pass (telcorec/publish/passes.py
over telcorec/offers), the quality gate judged on the tasks' counts, then one Delta commit of
`offers` or the staged files removed."""
from __future__ import annotations

import datetime as dt
import logging
import time

from pyspark.sql import SparkSession

from telcorec.core.columns import Col
from telcorec.core.config import Config
from telcorec.core.exceptions import GateRejected
from telcorec.evaluation import drift
from telcorec.io import runs
from telcorec.io.artifacts import training_run
from telcorec.io.warehouse import Warehouse
from telcorec.models.scoring import load_scorer, model_names, trained_on, with_subscriber_index
from telcorec.offers import campaign_cap, selection
from telcorec.offers.cold_start import served
from telcorec.publish import fit, gate
from telcorec.publish.contract import OffersContract
from telcorec.publish.passes import (
    Passes,
    _over_cap,
    judge,
    offer_history,
    population,
    selection_for,
)
from telcorec.stages.context import StageContext

log = logging.getLogger(__name__)


def refuse_on_drift(ctx: StageContext, features) -> None:
    """drift.gate_max_psi > 0: no publish when an input feature moved that far since the last
    published run (the drift stage, after score, records every value either way)."""
    limit, previous = ctx.cfg.drift.gate_max_psi, None
    if limit > 0:
        previous = ctx.previous_published()
    if previous is None:
        return
    before = ctx.history("subscriber_features", previous, previous + dt.timedelta(days=1))
    refused = gate.drift_reasons(drift.feature_psi(features, before, ctx.cfg.drift.bins), limit)
    if refused:
        raise GateRejected("quality gate refused to publish: " + "; ".join(refused))


def model_run_id(wh: Warehouse, cfg: Config, run_date: dt.date, name: str) -> str | None:
    """The run that trained the served model, from its manifest (an ensemble's members' runs,
    "+"-joined when they differ); None when a model predates that record. Found as load_scorer
    finds the models: each the newest trained at or before the run date."""
    names = ([n for n in sorted(cfg.ensemble.weights) if n in model_names(cfg)]
             if name.startswith("ensemble_") else [name])
    found = [training_run(wh.models(trained_on(wh, run_date, n), n)) for n in names]
    return None if None in found else "+".join(sorted(set(found)))


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict:
    """Score, apply the rules, re-rank, explain and write in one pass; check the counts
    (cap, contract, quality gate); then publish the run date's partition of `offers`."""
    ctx = StageContext.open(spark, cfg, run_date)
    wh, writer, read = ctx.wh, ctx.writer, ctx.read
    subscriber_features = read("subscriber_features")
    features = with_subscriber_index(subscriber_features, read("subscriber_index"))
    offer_df = read("offer_features")
    offers = offer_df.toPandas().sort_values(Col.OFFER_IDX, ignore_index=True)  # the catalogue
    fit.check_k(cfg, subscriber_features, offers)  # before the model loads: K must fit it
    refuse_on_drift(ctx, subscriber_features)
    scorer = served(load_scorer(wh, cfg, run_date, cfg.scoring.model), cfg, offers)
    k = cfg.scoring.k
    started = time.monotonic()

    def phase(done: str) -> None:  # the stage takes minutes at scale: say where the time goes
        log.info("score: %s (%.1f s)", done, time.monotonic() - started)

    # from two columns of the features: the batch itself is computed by the pass that reads it
    people = population(subscriber_features)
    phase(f"{people.subscribers:,} subscribers counted")
    limit = campaign_cap.cap_limit(cfg.rules.campaign_cap, people.subscribers)
    depth = k if limit is None else k + cfg.rules.campaign_cap.spare
    sel = selection_for(cfg, scorer, people.baseline(scorer.offer_ids, run_date), offers, depth)
    contract = OffersContract(tuple(scorer.offer_ids), k)
    answers = ctx.history("responses", None, run_date + dt.timedelta(days=1))
    batch = selection.subscriber_batch(features, offer_df, offer_history(spark, wh, writer), cfg,
                                       run_date, read("interactions"), answers)
    trained_by = model_run_id(wh, cfg, run_date, cfg.scoring.model)
    passes = Passes(batch,
                    sel, k, contract, run_date, runs.run_id(cfg, run_date), wh.table("offers"),
                    writer, phase, model_run_id=trained_by)
    try:
        caps = None
        staged = passes.publishing(caps)
        over = _over_cap(staged.counts, limit)
        if over:
            phase(f"campaign cap of {limit:,} subscribers per offer: {over} offers wanted by "
                  "more; ranking again to find who keeps them")
            staged.discard()
            caps = passes.thresholds(limit)
            staged = passes.publishing(caps)
        try:
            judged = judge(staged.counts, cfg, scorer, people.subscribers, k, caps, contract, wh,
                           run_date, limit)
        except Exception:
            staged.discard()
            raise
        n = staged.commit()
        phase(f"published {n:,} rows to offers")
    finally:
        passes.release()
    return {"offers": n, "model_version": scorer.version, "model": scorer.name,
            "model_run_id": trained_by,
            "distinct_offers": judged.stats.distinct_offers,
            "subscribers_by_arm": judged.arms, "rules": judged.removed,
            "gate": judged.verdict.rows_line()}
