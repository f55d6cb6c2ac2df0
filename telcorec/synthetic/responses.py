"""How generated subscribers answer the offers published to them (the simulated campaign).

A subscriber sees the offer at rank r with probability rank_decay^(r-1), and accepts an offer
seen with probability max_accept x sigmoid(utility_scale x (u(offer) - u(current plan)) + bias),
u being the generator's true utility (`utility.true_utility`, the one definition), so better
offers for them are taken more often; of the offers seen and not accepted, `decline_share` are
declined and the rest ignored (no row). Each subscriber accepts at most one offer of a day:
the best ranked one drawn as accepted. Draws are keyed by (seed, subscriber number, day, rank),
so the answers do not depend on partitioning.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core import schemas
from telcorec.core.columns import Col, Outcome
from telcorec.core.config import SimulationConfig
from telcorec.synthetic import rand
from telcorec.synthetic.rand import Salt
from telcorec.synthetic.utility import true_utility

_DRAWN = T.StructType([
    T.StructField(Col.SUBSCRIBER_ID, T.StringType()), T.StructField(Col.OFFER_ID, T.StringType()),
    T.StructField(Col.RANK, T.IntegerType()), T.StructField(Col.OUTCOME, T.StringType())])


def answer_probabilities(gain: np.ndarray, rank: np.ndarray,
                         cfg: SimulationConfig) -> tuple[np.ndarray, np.ndarray]:
    """(P(seen), P(accept | seen)) per offer row; `gain` = u(offer) - u(current plan)."""
    seen = cfg.rank_decay ** (rank - 1.0)
    accept = cfg.max_accept / (1.0 + np.exp(-(cfg.utility_scale * gain + cfg.bias)))
    return seen, accept


def _outcomes(rows: pd.DataFrame, catalogue: pd.DataFrame, cfg: SimulationConfig, seed: int,
              day: int) -> pd.DataFrame:
    """Draw each offer row's outcome (None: ignored). `rows`: offers joined with the
    subscriber's truth columns and current plan."""
    utility = true_utility(rows, catalogue)
    position = {o: i for i, o in enumerate(catalogue[Col.OFFER_ID])}
    at = np.arange(len(rows))
    offered = utility[at, rows[Col.OFFER_ID].map(position).to_numpy()]
    held_pos = rows[Col.CURRENT_OFFER_ID].map(position)
    held = np.where(held_pos.notna(), utility[at, held_pos.fillna(0).astype(int).to_numpy()],
                    np.median(utility, axis=1))  # no plan: the median offer is the bar
    rank = rows[Col.RANK].to_numpy(dtype=float)
    seen, accept = answer_probabilities(offered - held, rank, cfg)
    numbers = rows[Col.SUBSCRIBER_ID].str[1:].astype(np.int64).to_numpy()
    k = rand.key(seed, numbers, day, rows[Col.RANK].to_numpy(dtype=np.int64))
    u_seen, u_answer = rand.uniform(k, Salt.RESPONSE, 0), rand.uniform(k, Salt.RESPONSE, 1)
    outcome = np.where(u_answer < accept, Outcome.ACCEPTED,
                       np.where(u_answer < accept + (1 - accept) * cfg.decline_share,
                                Outcome.DECLINED, None))
    outcome = np.where(u_seen < seen, outcome, None)
    return pd.DataFrame({Col.SUBSCRIBER_ID: rows[Col.SUBSCRIBER_ID], Col.OFFER_ID:
                         rows[Col.OFFER_ID], Col.RANK: rows[Col.RANK].astype(np.int32),
                         Col.OUTCOME: outcome})


def responses(offers: DataFrame, truth: DataFrame, held: DataFrame, catalogue: pd.DataFrame,
              cfg: SimulationConfig, seed: int, offer_date: dt.date) -> DataFrame:
    """The answers (RESPONSES columns) to the offers of `offer_date`, given on that day.
    `held`: (subscriber_id, current_offer_id) on that day; subscribers without truth (injected
    bad rows) answer nothing."""
    rows = (offers.select(Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.RANK)
            .join(truth, on=Col.SUBSCRIBER_ID, how="inner")
            .join(held, on=Col.SUBSCRIBER_ID, how="left"))
    day = offer_date.toordinal()

    def draw(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            drawn = _outcomes(batch, catalogue, cfg, seed, day)
            yield drawn[drawn[Col.OUTCOME].notna()]

    drawn = rows.mapInPandas(draw, _DRAWN)
    # one acceptance per subscriber and day: the best ranked; later ones count as ignored
    first = Window.partitionBy(Col.SUBSCRIBER_ID, Col.OUTCOME).orderBy(Col.RANK)
    kept = drawn.withColumn("_nth", F.row_number().over(first)).where(
        (F.col(Col.OUTCOME) != Outcome.ACCEPTED) | (F.col("_nth") == 1))
    return schemas.conform(kept.withColumns({
        Col.OFFER_RUN_DATE: F.lit(offer_date), Col.RESPONDED_DATE: F.lit(offer_date),
        Col.CHANNEL: F.lit("sms")}), schemas.RESPONSES)


def with_plan_changes(subscriptions: DataFrame, changes: DataFrame) -> DataFrame:
    """The generated subscriptions after the accepted offers: each change (subscriber_id,
    offer_id, start_date) starts a plan, and every plan held before it ends the day before."""
    rows = (subscriptions.withColumn("_change", F.lit(False))
            .unionByName(changes.withColumns({Col.END_DATE: F.lit(None).cast("date"),
                                              "_change": F.lit(True)})))
    later = Window.partitionBy(Col.SUBSCRIBER_ID).orderBy(Col.START_DATE).rowsBetween(
        1, Window.unboundedFollowing)
    next_change = F.min(F.when(F.col("_change"), F.col(Col.START_DATE))).over(later)
    day_before = F.date_sub(next_change, 1)
    ended = F.when(next_change.isNotNull(),
                   F.least(F.coalesce(F.col(Col.END_DATE), day_before), day_before))
    return rows.withColumn(Col.END_DATE, F.coalesce(ended, F.col(Col.END_DATE))) \
        .select(*schemas.SUBSCRIPTIONS.fieldNames())
