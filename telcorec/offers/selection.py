"""From scores to the offers each subscriber gets, in one pass per partition of subscribers.

For a batch of subscribers (their features, arm, shard and excluded offer indices) a task:
1. scores every offer: the published model for the experiment's arms, the baseline
   (most-held plans) for its control arm;
2. removes the pairs the business rules forbid (telcorec/offers/rules.py);
3. ranks the rest by the final score of telcorec/offers/rerank.py, `depth` offers per subscriber;
4. writes the reasons of every kept row (telcorec/offers/reasons.py).
Everything the tasks need (models, catalogue, rules, weights) travels in one broadcast
`Selection`; no subscriber x offer row ever exists in Spark, only the kept ones.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from telcorec.core import schemas
from telcorec.core.columns import Col, Route
from telcorec.core.config import ColdStartConfig, Config, EligibilityRule, RerankConfig
from telcorec.models.shards import with_shard
from telcorec.offers import campaign_cap, experiments, reasons, rerank, rules
from telcorec.offers.cold_start import routes
from telcorec.offers.counts import ScoreCounts
from telcorec.offers.reasons import Explainer
from telcorec.offers.rerank import OfferTerms

if TYPE_CHECKING:  # scoring imports this module to publish
    from telcorec.models.scoring import Scorer

S, D = T.StringType(), T.DoubleType()
CANDIDATES = T.StructType([
    T.StructField(Col.SUBSCRIBER_ID, S, False), T.StructField(Col.OFFER_ID, S, False),
    T.StructField(Col.RANK, T.IntegerType(), False), T.StructField(Col.SCORE, D, False),
    T.StructField(Col.MODEL_VERSION, S, False), T.StructField(Col.ARM, S, False),
    T.StructField(Col.ROUTE, S, False),
    *[T.StructField(c, D, False) for c in rerank.COMPONENTS],
    T.StructField(Col.REASONS, T.ArrayType(S, containsNull=False), False),
])


@dataclass
class Selection:
    """What every task needs, broadcast once. `offers` is offer_features in offer_idx order,
    the order of every scorer's columns."""
    scorer: Scorer             # the published model
    baseline: Scorer           # the control arm's
    offers: pd.DataFrame
    terms: OfferTerms
    eligibility: tuple[EligibilityRule, ...]
    weights: RerankConfig      # default and per-segment re-ranking weights
    control_arm: str
    explainer: Explainer | None
    top_pairs: int
    depth: int
    cold_start: ColdStartConfig  # routes by tenure (the scorer applies the blend itself)


def relevance_scores(batch: pd.DataFrame, control: np.ndarray, sel: Selection) -> np.ndarray:
    """(subscribers x offers) raw scores: the model's, the baseline's for control rows."""
    raw = np.empty((len(batch), len(sel.offers)), dtype=np.float64)
    for rows, scorer in ((~control, sel.scorer), (control, sel.baseline)):
        if rows.any():
            raw[rows] = scorer.score(batch[rows])
    return raw


def route_of(batch: pd.DataFrame, sel: Selection) -> np.ndarray:
    """Route.* per subscriber of the batch; everyone is established with cold start off."""
    if not sel.cold_start.enabled:
        return np.full(len(batch), Route.ESTABLISHED, dtype=object)
    return routes(batch[Col.TENURE_DAYS], sel.cold_start)


def row_reasons(batch: pd.DataFrame, rows: np.ndarray, offers: np.ndarray,
                rule_markers: list[tuple[str, np.ndarray]], control: np.ndarray,
                route: np.ndarray, sel: Selection) -> pa.ListArray:
    """Model pairs (model arms, where the model had a say), rule markers (text, the rule's
    `when` mask over the batch x offers), route, cold-start and control markers."""
    slots = []
    route = route[rows]
    treated = ~control[rows] & (route != Route.NEW)
    if sel.explainer is not None and sel.top_pairs and treated.any():
        position = np.full(len(rows), -1)  # each row's place among the treated, -1: none
        position[treated] = np.arange(np.count_nonzero(treated))
        spread = pa.array(position, mask=position < 0)  # a null index takes a null
        for slot in sel.explainer.pair_reasons(batch, rows[treated], offers[treated],
                                               sel.top_pairs):
            slots.append(slot.take(spread))
        if sel.explainer.history_terms is not None:
            slots.append(sel.explainer.history_reason(batch, rows[treated],
                                                      offers[treated]).take(spread))
    for text, applied in rule_markers:
        slots.append(reasons.marker(applied[rows, offers], text))
    model_arm = ~control[rows]  # the control arm gets the baseline whatever the route
    new = model_arm & (route == Route.NEW)
    slots.append(reasons.marker(new, reasons.new_route(sel.cold_start)))
    slots.append(reasons.marker(model_arm & (route == Route.WARM),
                                reasons.warm_route(sel.cold_start)))
    no_history = ~batch[Col.HAS_HISTORY].to_numpy(dtype=bool)[rows]
    slots.append(reasons.marker(no_history & ~new, reasons.COLD_START))
    slots.append(reasons.marker(control[rows], reasons.CONTROL))
    return reasons.as_list_array(slots, len(rows))


@dataclass(frozen=True)
class Ranked:
    """One batch's ranking before the campaign cap: `depth` picks per subscriber."""
    control: np.ndarray            # (subscribers,) in the experiment's control arm
    route: np.ndarray              # (subscribers,) Route.*
    masks: dict[str, np.ndarray]   # every rule's removed pairs, in the order rules apply
    ranking: rerank.Ranking


def rank_batch(batch: pd.DataFrame, sel: Selection) -> Ranked:
    """Score every offer, remove what the rules forbid, re-rank the rest `sel.depth` deep."""
    control = (batch[Col.ARM] == sel.control_arm).to_numpy()
    masks = rules.removal_masks(batch, sel.offers, sel.eligibility)
    weights = rerank.weights_for(batch[Col.SEGMENT], sel.weights, control)
    ranking = rerank.rank(relevance_scores(batch, control, sel), rules.allowed(masks), batch,
                          sel.terms, weights, sel.depth)
    return Ranked(control, route_of(batch, sel), masks, ranking)


def plan_rows(batch: pd.DataFrame, sel: Selection) -> pa.RecordBatch:
    """The narrow candidate rows (campaign_cap.PLAN) the cap's thresholds are found from."""
    ranking = rank_batch(batch, sel).ranking
    rows, position = np.nonzero(ranking.offers >= 0)
    schema = to_arrow_schema(campaign_cap.PLAN)
    return pa.RecordBatch.from_arrays([
        pa.array(batch[Col.SUBSCRIBER_ID].to_numpy(dtype=object)[rows], pa.string()),
        pa.array(ranking.offers[rows, position].astype(np.int32)),
        pa.array((position + 1).astype(np.int32)),
        pa.array(ranking.final[rows, position], pa.float64(), from_pandas=False),
    ], schema=schema)


def kept(ranked: Ranked, subscriber_ids: np.ndarray, k: int,
         caps: campaign_cap.Thresholds | None) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                        np.ndarray]:
    """(rows, positions) of the picks kept, in ranked order, their new ranks 1..<=k, and per
    offer index how many picks the cap admitted (without a cap: every pick, i.e. how many
    candidate rows want the offer): the first k picks of each subscriber that the cap
    admits, renumbered."""
    offers = ranked.ranking.offers
    picked = offers >= 0
    admitted = picked.copy()
    if caps is not None:
        rows, position = np.nonzero(picked)
        admitted[rows, position] = caps.admitted(offers[rows, position], position + 1,
                                                 ranked.ranking.final[rows, position],
                                                 subscriber_ids[rows])
    per_offer = np.bincount(offers[admitted])
    rank = np.cumsum(admitted, axis=1)
    rows, position = np.nonzero(admitted & (rank <= k))
    return rows, position, rank[rows, position].astype(np.int32), per_offer


def offer_rows(batch: pd.DataFrame, sel: Selection, k: int,
               caps: campaign_cap.Thresholds | None = None) -> tuple[pa.RecordBatch,
                                                                    ScoreCounts]:
    """The rows (CANDIDATES columns) a batch of subscribers publishes: each one's first k
    ranked offers that the campaign cap admits, with reasons; and what was counted on the way:
    the pairs each rule removed (rules.removed_counts), the room the rules leave and, per
    offer index, the picks the cap admitted (without `caps` every pick: what decides whether a
    cap binds at all, and with `caps` what the caller checks against them)."""
    ranked = rank_batch(batch, sel)
    ids = batch[Col.SUBSCRIBER_ID].to_numpy(dtype=object)
    rows, position, rank, per_offer = kept(ranked, ids, k, caps)
    ranking, control, route = ranked.ranking, ranked.control, ranked.route
    offers = ranking.offers[rows, position]
    markers = [(f"rule {r.name}: {r.description or r.name}",
                rules.condition_mask(r.when, batch, sel.offers)) for r in sel.eligibility]
    columns = {
        Col.SUBSCRIBER_ID: pa.array(ids[rows]),
        Col.OFFER_ID: pa.array(sel.offers[Col.OFFER_ID].to_numpy(dtype=object)[offers]),
        Col.RANK: pa.array(rank),
        Col.SCORE: pa.array(ranking.final[rows, position], from_pandas=False),
        Col.MODEL_VERSION: pa.array(np.where(control[rows], sel.baseline.version,
                                             sel.scorer.version).astype(object)),
        Col.ARM: pa.array(batch[Col.ARM].to_numpy(dtype=object)[rows]),
        Col.ROUTE: pa.array(route[rows]),
        **{c: pa.array(ranking.components[rows, position, i], from_pandas=False)
           for i, c in enumerate(rerank.COMPONENTS)},
        Col.REASONS: row_reasons(batch, rows, offers, markers, control, route, sel),
    }
    schema = to_arrow_schema(CANDIDATES)
    fillable, eligible = rules.room_counts(rules.allowed(ranked.masks), k)
    counts = ScoreCounts(rules=rules.removed_counts(ranked.masks), fillable=fillable,
                         eligible=eligible,
                         admitted={o: int(n) for o, n in enumerate(per_offer) if n})
    return pa.RecordBatch.from_arrays([columns[f.name].cast(f.type) for f in schema],
                                      schema=schema), counts


def candidate_rows(batch: pd.DataFrame, sel: Selection) -> pa.RecordBatch:
    """All `sel.depth` ranked candidate rows of one batch of subscribers, no cap applied."""
    return offer_rows(batch, sel, sel.depth)[0]


def candidates(subscribers: DataFrame, sel: Selection, k: int | None = None,
               caps: campaign_cap.Thresholds | None = None) -> DataFrame:
    """`offer_rows` of every subscriber (k ranked rows each, default `sel.depth`; fewer when
    the rules or the cap leave fewer offers), on the executors. `subscribers`:
    subscriber_features + shard, arm, exclude_idx, fatigue_idx."""
    broadcast = subscribers.sparkSession.sparkContext.broadcast(sel)
    depth = sel.depth if k is None else k

    def select(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        local = broadcast.value
        for batch in batches:
            if batch.num_rows:
                yield offer_rows(batch.to_pandas(), local, depth, caps)[0]

    return subscribers.mapInArrow(select, CANDIDATES)


def plans(subscribers: DataFrame, sel: Selection) -> DataFrame:
    """`plan_rows` of every subscriber, on the executors (campaign_cap.PLAN columns)."""
    broadcast = subscribers.sparkSession.sparkContext.broadcast(sel)

    def plan(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        local = broadcast.value
        for batch in batches:
            if batch.num_rows:
                yield plan_rows(batch.to_pandas(), local)

    return subscribers.mapInArrow(plan, campaign_cap.PLAN)


# ---- the Spark side: the subscriber batch, the history the rules read, the cap ---------------

HISTORY = T.StructType([f for f in schemas.OFFERS.fields
                        if f.name in (Col.RUN_DATE, Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.RANK)])


def with_holdings(features: DataFrame, interactions: DataFrame | None) -> DataFrame:
    """`history_idx`: every offer the subscriber holds or held (all pairs of the run date's
    `interactions`, test split included: at scoring time nothing is held out), the history
    tokens of a history-aware model; empty for a subscriber without pairs."""
    empty = F.array().cast("array<int>")
    if interactions is None:
        return features.withColumn(Col.HISTORY_IDX, empty)
    held = (interactions.groupBy(Col.SUBSCRIBER_ID)
            .agg(F.array_sort(F.collect_set(Col.OFFER_IDX)).alias(Col.HISTORY_IDX)))
    return (features.join(held, on=Col.SUBSCRIBER_ID, how="left")
            .withColumn(Col.HISTORY_IDX, F.coalesce(Col.HISTORY_IDX, empty)))


def subscriber_batch(features: DataFrame, offers: DataFrame, history: DataFrame | None,
                     cfg: Config, run_date: dt.date,
                     interactions: DataFrame | None = None,
                     responses: DataFrame | None = None) -> DataFrame:
    """Every subscriber once, with what the tasks need beside the features: the shard model
    (shard), the arm, the current plan (exclude_idx), recently shown or answered offers
    (fatigue_idx) and the offers they hold or held (history_idx, from `interactions`).
    `history`: earlier `offers` rows (HISTORY columns), None when there are none; `responses`:
    validated responses ingested up to the run date, None when none."""
    fatigue = rules.fatigue_exclusions(history, offers, run_date, cfg.rules.fatigue, responses)
    batch = rules.with_fatigue(rules.with_current_plan(features, offers), fatigue)
    batch = with_holdings(batch, interactions)
    return experiments.with_arm(with_shard(batch, cfg.train), cfg.experiment)
