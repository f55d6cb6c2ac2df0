"""The evaluate stage: every model, ensemble and baseline on the held-out pairs (full ranking and the
sampled protocol), written to `metrics`, and the run report (telcorec/evaluation)."""
from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import DataFrame, SparkSession

from telcorec.core import schemas
from telcorec.core.columns import Cohort, Col
from telcorec.core.config import Config
from telcorec.evaluation import report, sampled_protocol
from telcorec.evaluation.metrics import COHORT, HISTORY_GROUP, per_subscriber, summarise
from telcorec.evaluation.offline import (
    SUMMARY_METRICS,
    OracleScorer,
    RandomScorer,
    cohorts,
    negatives_file_candidates,
    offer_vectors,
    popularity,
    sampled_candidates,
)
from telcorec.io import runs
from telcorec.io.metrics_store import ALL_SEGMENTS, metrics_table, write_metrics
from telcorec.models.scoring import Scorer, load_scorer, model_names, with_subscriber_index
from telcorec.models.shards import with_shard
from telcorec.offers.cold_start import ContentScorer, served
from telcorec.stages.context import StageContext

log = logging.getLogger(__name__)


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, object]:
    """Metrics of every model and baseline to `metrics`; the run report. Returns per model
    {"metric@k": value} (all subscribers) and "report": the report's path."""
    ctx = StageContext.open(spark, cfg, run_date)
    wh, read = ctx.wh, ctx.read
    features = with_subscriber_index(read("subscriber_features"), read("subscriber_index"))
    interactions = read("interactions")
    offer_df = read("offer_features")
    # the catalogue (tens to hundreds of rows) in offer_idx order, every scorer's column order
    offers = offer_df.toPandas().sort_values(Col.OFFER_IDX, ignore_index=True)
    truth_path = wh.truth_table()
    truth = (ctx.writer.read(spark, truth_path, schemas.SUBSCRIBER_TRUTH)
             if ctx.writer.exists(spark, truth_path) else None)
    population = (with_shard(cohorts(interactions, truth, offer_df)
                             .join(features, on=Col.SUBSCRIBER_ID, how="inner"), cfg.train)
                  .cache())
    # measured as served: with the cold-start routing by tenure
    models = [served(load_scorer(wh, cfg, run_date, name), cfg, offers)
              for name in model_names(cfg)]
    offer_ids = models[0].offer_ids
    popular = popularity(interactions, len(offer_ids), offer_ids)
    ranked = [*models, popular, RandomScorer(offer_ids, cfg.seed)]
    if cfg.cold_start.enabled:  # the content rules alone, what new subscribers get
        ranked.append(ContentScorer.from_offers(offers, cfg.cold_start))
    scorers: list[tuple[Scorer, DataFrame]] = [(s, population) for s in ranked]
    if truth is not None:
        catalogue = read("catalogue").toPandas()
        catalogue = catalogue.set_index(Col.OFFER_ID).loc[offer_ids].reset_index()
        truth_cols = [c for c in schemas.SUBSCRIBER_TRUTH.fieldNames() if c not in population.columns]
        scorers.append((OracleScorer(offer_ids, catalogue), population.join(
            truth.select(Col.SUBSCRIBER_ID, *truth_cols), on=Col.SUBSCRIBER_ID, how="inner")))
    share = (popular.counts + 1) / (popular.counts.sum() + len(offer_ids))
    vectors, ks = offer_vectors(offers), cfg.evaluation.ks
    groups = {"all": "all", "segment": Col.SEGMENT, "cohort": COHORT, "history": HISTORY_GROUP}
    rid, tables, summary = runs.run_id(cfg, run_date), [], {}
    for scorer, batch in scorers:
        rows = summarise(per_subscriber(batch, scorer, ks, vectors, share), ks, len(offer_ids),
                         groups)
        tables.append(metrics_table(rows, scorer.name, rid, run_date, "full"))
        summary[scorer.name] = {f"{m}@{k}" if k else m: v for m, k, g, v in rows
                                if g == ALL_SEGMENTS and m in SUMMARY_METRICS}
        summary[scorer.name].update({f"cold_start {m}@{k}": v for m, k, g, v in rows
                                     if g == Cohort.COLD_START and m == "precision" and k == 5})
        log.info("evaluate %s: %s", scorer.name, summary[scorer.name])
    write_metrics(wh.table("metrics"), tables, run_date, "full")
    population.unpersist()
    if cfg.evaluation.sampled_negatives:
        candidates, _ = negatives_file_candidates(spark, cfg, ctx.writer, interactions,
                                                  offer_df)  # the counts are logged
        protocol = sampled_protocol.protocol_name(cfg.evaluation.sampled_negatives,
                                                  from_file=candidates is not None)
        by_model = sampled_candidates(interactions, features, ranked, cfg, candidates)
        write_metrics(wh.table("metrics"), [metrics_table(rows, name, rid, run_date, protocol)
                                            for name, rows in by_model.items()],
                      run_date, protocol)
        for name, rows in by_model.items():
            summary[name].update({f"{protocol} {m}@{k}": v for m, k, g, v in rows
                                  if g == ALL_SEGMENTS and k == 10})
    # the NCF stage has written its rows by now (it runs before this one): the report is whole
    summary["report"] = str(report.write(wh, cfg, run_date))
    return summary
