"""The score stage's passes: every subscriber's offers, judged, then published to `offers` atomically.

One pass over the subscribers does the work. Each Spark task scores its subscribers against the
broadcast catalogue (telcorec/models/scoring.py), removes what the rules forbid, re-ranks, keeps the
top K, writes their reasons (telcorec/offers/selection.py) and writes those rows straight into a
Parquet file of the `offers` table, counting on the way everything the quality gate, the output
contract, the campaign cap and the run record need. The driver then judges the summed counts
and either commits the files in one Delta transaction or removes them: a refused or failed run
is never visible. No ranked row is persisted, shuffled or read twice.

Before that pass, one JVM aggregation over two columns of subscriber_features counts the
subscribers (each must appear once, since the contract's rank check runs per batch) and their
current plans (the control arm's baseline). The subscriber batch (features joined with the
index, current plan, fatigue and arm) is not persisted for a pass that reads it once; it is kept
only when a second pass follows (a binding cap, Spark's Delta writer).

The campaign cap (on by default) is judged from the same pass: it counts how many candidate
rows (K + spare per subscriber) want each offer. When no offer is wanted by more subscribers
than the cap allows, the cap removes nothing and the pass's files are the answer. Otherwise
they are removed, a narrow pass ranks again without reasons and keeps (subscriber, offer index,
rank, score), the cap's thresholds come from it (telcorec/offers/campaign_cap.py), and the publishing
pass runs again with them, checking that it admitted exactly the rows the thresholds allow.

With Spark's Delta writer (a cluster with Delta's jars) the task function runs once to count
and once more for the rows that Spark's Delta writer commits (telcorec/io/writer.py).
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.core.config import Config
from telcorec.core.exceptions import DataError
from telcorec.io import metrics_store, runs
from telcorec.io.task_files import Produce
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import Staged, Writer
from telcorec.models.scoring import PopularityScorer, Scorer
from telcorec.offers import campaign_cap, rules, selection
from telcorec.offers.counts import ScoreCounts
from telcorec.offers.reasons import explainer_for
from telcorec.offers.rerank import OfferTerms
from telcorec.publish import gate
from telcorec.publish.contract import OffersContract
from telcorec.publish.gate import OutputStats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Population:
    subscribers: int
    held: dict[str, int]  # current plan -> subscribers holding it

    def baseline(self, offer_ids: list[str], run_date: dt.date) -> PopularityScorer:
        """The control arm's baseline: offers by how many subscribers hold them as their plan."""
        counts = np.array([self.held.get(o, 0) for o in offer_ids], dtype=np.float64)
        return PopularityScorer(offer_ids, counts, version=f"popularity-{run_date.isoformat()}")


def population(features: DataFrame) -> Population:
    """Subscribers and current plans of the run date's subscriber_features (or of a batch made
    from them): one aggregation, a row per plan comes back. Refuses a subscriber held twice (the
    ranks of each subscriber are checked within the one batch that holds them)."""
    per_subscriber = features.groupBy(Col.SUBSCRIBER_ID).agg(
        F.count(F.lit(1)).alias("n"), F.first(Col.CURRENT_OFFER_ID).alias(Col.CURRENT_OFFER_ID))
    per_plan = per_subscriber.groupBy(Col.CURRENT_OFFER_ID).agg(
        F.sum("n").alias("rows"), F.count(F.lit(1)).alias("subscribers")).collect()
    rows = sum(r["rows"] for r in per_plan)
    subscribers = sum(r["subscribers"] for r in per_plan)
    if rows != subscribers:
        raise DataError(f"subscriber_features holds {rows - subscribers:,} rows beyond one per "
                        "subscriber for this run date: rerun the features stage for it")
    return Population(subscribers, {r[Col.CURRENT_OFFER_ID]: r["subscribers"] for r in per_plan
                                    if r[Col.CURRENT_OFFER_ID] is not None})


def offer_history(spark: SparkSession, wh: Warehouse, writer: Writer) -> DataFrame | None:
    """Earlier `offers` rows for contact fatigue (the columns every partition has)."""
    if not writer.exists(spark, wh.table("offers")):
        return None
    return writer.read(spark, wh.table("offers"), selection.HISTORY)


def selection_for(cfg: Config, scorer: Scorer, baseline: Scorer, offers: pd.DataFrame,
                  depth: int) -> selection.Selection:
    if list(scorer.offer_ids) != offers[Col.OFFER_ID].tolist():
        raise DataError(f"{scorer.version} ranks offers in another order than offer_features "
                        "of this run date: rerun the train stage for it")
    return selection.Selection(scorer, baseline, offers, OfferTerms.from_offers(offers),
                               cfg.rules.eligibility, cfg.rerank, cfg.experiment.control,
                               explainer_for(scorer, offers), cfg.reasons.top_pairs, depth,
                               cfg.cold_start)


def output_counts(rows: pa.RecordBatch, contract: OffersContract) -> ScoreCounts:
    """What the gate and the run record need of a batch of `offers` rows, and the contract's
    violations in it."""
    arm = rows.column(Col.ARM).to_pandas()
    first = rows.column(Col.RANK).to_numpy(zero_copy_only=False) == 1
    offered = rows.column(Col.OFFER_ID).to_pandas().value_counts()
    return ScoreCounts(rows=rows.num_rows,
                       first={a: int(n) for a, n in arm[first].value_counts().items()},
                       offered={o: int(n) for o, n in offered.items()},
                       violations=dict(contract.batch_violations(rows)))


def publishing_task(sel: selection.Selection, k: int, caps: campaign_cap.Thresholds | None,
                    contract: OffersContract, run_date: dt.date, run_id: str,
                    model_run_id: str | None = None) -> Produce:
    """What each task makes of a batch of subscribers: their `offers` rows (the table's
    columns) and their counts, merged over every task. The model's rows carry `model_run_id`
    (the run that trained it), the control arm's `run_id` (this run ranked them by
    popularity)."""
    schema = schemas.OFFERS
    names = schema.fieldNames()

    def produce(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, ScoreCounts]:
        rows, counts = selection.offer_rows(batch.to_pandas(), sel, k, caps)
        n = rows.num_rows
        served = pc.equal(rows.column(Col.MODEL_VERSION), sel.scorer.version)
        columns = {Col.RUN_DATE: pa.array([run_date] * n, pa.date32()),
                   Col.RUN_ID: pa.array([run_id] * n, pa.string()),
                   Col.MODEL_RUN_ID: pc.if_else(served, pa.scalar(model_run_id, pa.string()),
                                                pa.scalar(run_id, pa.string())),
                   **{name: rows.column(name) for name in rows.schema.names}}
        out = pa.RecordBatch.from_arrays([columns[name] for name in names], names=names)
        return out, counts.merge(output_counts(out, contract))

    return Produce(produce, ScoreCounts)


def _over_cap(counts: ScoreCounts, limit: int | None) -> int:
    """How many offers more candidate rows want than the cap allows (0 without a cap)."""
    if limit is None:
        return 0
    return sum(1 for n in counts.admitted.values() if n > limit)


@dataclass(frozen=True)
class Judged:
    stats: OutputStats
    arms: dict[str, int]      # subscribers per arm (their rank-1 rows)
    removed: dict[str, int]   # pairs each rule removed, candidate rows the cap removed
    verdict: gate.Verdict


def judge(counts: ScoreCounts, cfg: Config, scorer: Scorer, subscribers: int, k: int,
          caps: campaign_cap.Thresholds | None, contract: OffersContract, wh: Warehouse,
          run_date: dt.date, limit: int | None = None) -> Judged:
    """Everything the publishing pass counted, checked before anything is committed: the cap
    admitted what its thresholds allow, the output contract holds, the quality gate passes
    (its row check against what the rules and the cap of `limit` subscribers per offer allow).
    Raises (gate.GateRefusal, PublishError, RuntimeError) otherwise."""
    names = [rules.CANDIDATE_PAIRS, rules.CONSENT, rules.CURRENT_PLAN,
             *(r.name for r in cfg.rules.eligibility), rules.FATIGUE]
    names += [rules.ELIGIBLE_PAIRS, rules.WITHOUT_OFFERS]
    removed = {n: counts.rules.get(n, 0) for n in names}
    if caps is not None:
        caps.check(counts.admitted)
    removed[rules.CAMPAIGN_CAP] = caps.capped_rows if caps is not None else 0
    contract.refuse(counts.violations)
    offered = counts.offered
    fillable = counts.fillable if counts.fillable is not None else subscribers * k
    possible = gate.possible_rows(fillable, counts.eligible.values(),
                                  caps.limit if caps is not None else limit)
    stats = OutputStats(rows=counts.rows, subscribers=subscribers, k=k,
                        distinct_offers=sum(1 for n in offered.values() if n),
                        catalogue_size=len(scorer.offer_ids),
                        non_finite_scores=counts.violations.get("score_finite", 0),
                        possible_rows=possible)
    refused = gate.check(cfg.gate, scorer.name,
                         metrics_store.overall_metrics(wh.table("metrics"), run_date),
                         runs.last_published_metrics(wh.table("runs")), stats)
    arms = dict(sorted(counts.first.items()))
    verdict = gate.Verdict(tuple(refused), stats)
    if refused:
        raise gate.GateRefusal(verdict, removed, arms, offered)
    return Judged(stats, arms, removed, verdict)


@dataclass
class Passes:
    """The passes of one run over its subscriber batch, and the frames they keep cached."""
    batch: DataFrame
    sel: selection.Selection
    k: int
    contract: OffersContract
    run_date: dt.date
    run_id: str
    table: str
    writer: Writer
    phase: Callable[[str], None]
    model_run_id: str | None = None  # the run that trained the served model
    kept: list[DataFrame] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.writer.passes_over_input > 1:  # staging and committing both read the batch
            self.keep_batch()

    def keep(self, frame: DataFrame) -> DataFrame:
        """`frame`, kept (memory, then disk) for the passes after the next one. A frame read
        once is computed by the pass that reads it and never cached."""
        self.kept.append(frame.persist(StorageLevel.MEMORY_AND_DISK))
        return frame

    def keep_batch(self) -> None:
        if not any(frame is self.batch for frame in self.kept):
            self.batch = self.keep(self.batch)

    def task(self, caps: campaign_cap.Thresholds | None) -> Produce:
        return publishing_task(self.sel, self.k, caps, self.contract, self.run_date, self.run_id,
                               self.model_run_id)

    def publishing(self, caps: campaign_cap.Thresholds | None) -> Staged:
        """The pass that scores, ranks, explains and counts (the delta-rs writer's tasks also
        write the files, not committed yet); its counts are merged over its tasks."""
        staged = self.writer.stage_partition(self.batch, self.table, schemas.OFFERS,
                                             self.run_date, self.task(caps))
        self.phase(f"scored, ranked, explained and {staged.describe()}")
        return staged

    def thresholds(self, limit: int) -> campaign_cap.Thresholds:
        """The cap's thresholds from a narrow ranking pass; the batch is kept for the
        publishing pass that follows."""
        self.keep_batch()
        caps = campaign_cap.thresholds(self.keep(selection.plans(self.batch, self.sel)), limit,
                                       len(self.sel.offers))
        self.phase(f"cap thresholds: {caps.capped_rows:,} candidate rows over the cap")
        return caps

    def release(self) -> None:
        for frame in self.kept:
            frame.unpersist()


