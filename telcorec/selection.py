"""From scores to the offers each subscriber gets, in one pass per partition of subscribers.

For a batch of subscribers (their features, arm, shard and excluded offer indices) a task:
1. scores every offer: the published model for the experiment's arms, the baseline
   (most-held plans) for its control arm;
2. removes the pairs the business rules forbid (telcorec/rules.py);
3. ranks the rest by the final score of telcorec/rerank.py, `depth` offers per subscriber;
4. writes the reasons of every kept row (telcorec/reasons.py).
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
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from telcorec import experiments, reasons, rerank, rules, schemas
from telcorec.columns import Col, Route
from telcorec.cold_start import routes
from telcorec.config import ColdStartConfig, Config, EligibilityRule, RerankConfig
from telcorec.reasons import Explainer
from telcorec.rerank import OfferTerms
from telcorec.training import with_shard

if TYPE_CHECKING:  # scoring imports this module to publish
    from telcorec.scoring import Scorer

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


def candidate_rows(batch: pd.DataFrame, sel: Selection) -> pa.RecordBatch:
    """The ranked candidate rows of one batch of subscribers (CANDIDATES columns)."""
    control = (batch[Col.ARM] == sel.control_arm).to_numpy()
    masks = rules.removal_masks(batch, sel.offers, sel.eligibility)
    weights = rerank.weights_for(batch[Col.SEGMENT], sel.weights, control)
    ranking = rerank.rank(relevance_scores(batch, control, sel), rules.allowed(masks), batch,
                          sel.terms, weights, sel.depth)
    route = route_of(batch, sel)
    rows, position = np.nonzero(ranking.offers >= 0)
    offers = ranking.offers[rows, position]
    markers = [(f"rule {r.name}: {r.description or r.name}",
                rules.condition_mask(r.when, batch, sel.offers)) for r in sel.eligibility]
    columns = {
        Col.SUBSCRIBER_ID: pa.array(batch[Col.SUBSCRIBER_ID].to_numpy(dtype=object)[rows]),
        Col.OFFER_ID: pa.array(sel.offers[Col.OFFER_ID].to_numpy(dtype=object)[offers]),
        Col.RANK: pa.array((position + 1).astype(np.int32)),
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
    return pa.RecordBatch.from_arrays([columns[f.name].cast(f.type) for f in schema],
                                      schema=schema)


def candidates(subscribers: DataFrame, sel: Selection) -> DataFrame:
    """`sel.depth` ranked rows per subscriber (fewer when the rules leave fewer offers), on
    the executors. `subscribers`: subscriber_features + shard, arm, exclude_idx, fatigue_idx."""
    broadcast = subscribers.sparkSession.sparkContext.broadcast(sel)

    def select(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        local = broadcast.value
        for batch in batches:
            if batch.num_rows:
                yield candidate_rows(batch.to_pandas(), local)

    return subscribers.mapInArrow(select, CANDIDATES)


# ---- the Spark side: the subscriber batch, the history the rules read, the cap ---------------

HISTORY = T.StructType([f for f in schemas.OFFERS.fields
                        if f.name in (Col.RUN_DATE, Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.RANK)])


def subscriber_batch(features: DataFrame, offers: DataFrame, history: DataFrame | None,
                     cfg: Config, run_date: dt.date) -> DataFrame:
    """Every subscriber once, with what the tasks need beside the features: the shard model
    (shard), the arm, the current plan (exclude_idx) and recently shown offers (fatigue_idx).
    `history`: earlier `offers` rows (HISTORY columns), None when there are none."""
    fatigue = (rules.fatigue_exclusions(history, offers, run_date, cfg.rules.fatigue)
               if history is not None and cfg.rules.fatigue.days else None)
    batch = rules.with_fatigue(rules.with_current_plan(features, offers), fatigue)
    return experiments.with_arm(with_shard(batch, cfg.train), cfg.experiment)
