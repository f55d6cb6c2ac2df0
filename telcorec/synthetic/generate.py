"""Generate a synthetic operator's input tables with a hidden, learnable preference structure.

Hidden structure (see `utility.true_utility`, the one definition): every subscriber has latent
monthly needs for data, voice and SMS and a price sensitivity, all driven by segment, device
tier and payment type (SUBSCRIBER_TRUTH). Usage in the CDR follows those needs, so monthly
data GB / voice minutes / SMS reveal them. A subscriber's plan history is the top 1-3 offers by
true utility plus Gumbel noise (a logit choice at temperature 0.7); the best noisy pick is the
latest, current plan. So the current plan is predictable from observable attributes, usage and
earlier plans, and an oracle ranking by true utility puts it in its top 5 most of the time.

Every random draw is a pure function of (seed, subscriber number, offer, day, event slot,
purpose), so the same config and seed give the same tables whatever the partitioning. Nothing
here writes: the caller stores the tables.
"""
from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core import schemas
from telcorec.core.columns import Col, EventType
from telcorec.core.config import GeneratorConfig
from telcorec.core.exceptions import ConfigError
from telcorec.synthetic import bad_rows, rand
from telcorec.synthetic.catalogue import build_catalogue
from telcorec.synthetic.cdr import DATA, SMS, UNKNOWN_TYPE, VOICE, cdr_chunk
from telcorec.synthetic.population import GenCol, first_choice, history, population
from telcorec.synthetic.rand import Salt

CHUNK_SUBSCRIBERS = 500
SUBSCRIBERS_PER_PARTITION = 50_000
CDR_SUBSCRIBERS_PER_PARTITION = 5_000
MAX_SUBSCRIBERS = 99_999_999  # ids are S + 9 digits; 8xx/9xx million are bad-row ids
UNKNOWN_EVENT_TYPE = "mms"


def _struct(*fields: tuple) -> T.StructType:
    return T.StructType([T.StructField(name, dtype, nullable) for name, dtype, nullable in fields])


_S, _I, _L, _D = T.StringType(), T.IntegerType(), T.LongType(), T.DoubleType()
# What the pandas generators yield; nullable like the operator contract they are turned into.
_SUBSCRIBER_ROWS = _struct(
    (GenCol.ID_NUMBER, _L, True), (Col.SEGMENT, _S, True), (Col.REGION, _S, True),
    (Col.DEVICE_TIER, _S, True), (Col.PAYMENT_TYPE, _S, True), (GenCol.SIGNUP_OFFSET, _I, True),
    (GenCol.TERM_MONTHS, _I, True), (Col.HOUSEHOLD_SIZE, _I, True),
    (Col.MARKETING_OPT_OUT, T.BooleanType(), True))
_TRUTH_ROWS = _struct(
    (GenCol.ID_NUMBER, _L, False),
    *[(f.name, f.dataType, f.nullable) for f in schemas.SUBSCRIBER_TRUTH.fields[1:]])
_SUBSCRIPTION_ROWS = _struct(
    (GenCol.ID_NUMBER, _L, True), (Col.OFFER_ID, _S, True), (GenCol.START_OFFSET, _I, True),
    (GenCol.END_OFFSET, _I, True))
_CDR_ROWS = _struct(
    (GenCol.OWNER_NUMBER, _L, True), (GenCol.ID_NUMBER, _L, True), (GenCol.EVENT_NO, _L, True),
    (GenCol.EVENT_CODE, _I, True), (Col.EVENT_TS, T.TimestampNTZType(), True),
    (Col.DURATION_S, _D, True), (Col.DATA_MB, _D, True))


# A mapInPandas function: Arrow batches of subscriber numbers in, generated rows out.
_RowMaker = Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]


@dataclass(frozen=True)
class GeneratedTables:
    """The operator's four input tables (with injected bad rows) and the hidden truth (clean)."""

    subscribers: DataFrame
    catalogue: DataFrame
    subscriptions: DataFrame
    cdr: DataFrame
    truth: DataFrame


def _id_column(id_number: str) -> Column:
    """S + the 9-digit number (S000000001 is subscriber number 0); NULL stays NULL."""
    return F.concat(F.lit("S"), F.lpad(F.col(id_number).cast("string"), 9, "0"))


def _chunks(batches: Iterator[pd.DataFrame]) -> Iterator[np.ndarray]:
    for batch in batches:
        numbers = batch["id"].to_numpy()
        for start in range(0, len(numbers), CHUNK_SUBSCRIBERS):
            yield numbers[start:start + CHUNK_SUBSCRIBERS]


def _subscriber_rows(batches, *, seed: int, gen: GeneratorConfig) -> Iterator[pd.DataFrame]:
    for numbers in _chunks(batches):
        pop = population(numbers, seed, gen.cold_start_share)
        rows = pd.DataFrame({
            GenCol.ID_NUMBER: numbers + 1,
            **{c: pop[c] for c in (Col.SEGMENT, Col.REGION, Col.DEVICE_TIER, Col.PAYMENT_TYPE)},
            GenCol.SIGNUP_OFFSET: (-pop[GenCol.TENURE_DAYS]).astype(np.int32),
            GenCol.TERM_MONTHS: pop[GenCol.TERM_MONTHS],
            Col.HOUSEHOLD_SIZE: pop[Col.HOUSEHOLD_SIZE],
            # consent: its own stream, so the share changes nothing else in the tables
            Col.MARKETING_OPT_OUT: rand.uniform(rand.key(seed, numbers),
                                                Salt.CONSENT) < gen.opt_out_share,
        })
        bad = bad_rows.bad_subscribers(rows, numbers, gen.bad_row_rate, seed)
        yield pd.concat([rows, bad], ignore_index=True)


def _truth_rows(batches, *, seed: int, gen: GeneratorConfig,
                catalogue: pd.DataFrame) -> Iterator[pd.DataFrame]:
    offer_ids = catalogue[Col.OFFER_ID].to_numpy(dtype=object)
    for numbers in _chunks(batches):
        pop = population(numbers, seed, gen.cold_start_share)
        pop[GenCol.ID_NUMBER] = numbers + 1
        choice = first_choice(pop, catalogue, seed)
        pop[Col.NEXT_OFFER_ID] = np.where(choice >= 0, offer_ids[np.maximum(choice, 0)], None)
        yield pop[_TRUTH_ROWS.fieldNames()]


def _subscription_rows(batches, *, seed: int, gen: GeneratorConfig,
                       catalogue: pd.DataFrame) -> Iterator[pd.DataFrame]:
    offer_ids = catalogue[Col.OFFER_ID].to_numpy(dtype=object)
    for numbers in _chunks(batches):
        plans = history(population(numbers, seed, gen.cold_start_share), catalogue, seed)
        yield pd.DataFrame({
            GenCol.ID_NUMBER: plans[GenCol.NUMBER] + 1,
            Col.OFFER_ID: offer_ids[plans[GenCol.OFFER_POS].to_numpy()],
            GenCol.START_OFFSET: plans[GenCol.START_OFFSET],
            GenCol.END_OFFSET: plans[GenCol.END_OFFSET],
        })


def _cdr_rows(batches, *, seed: int, gen: GeneratorConfig, run_date: dt.date,
              snapshot: dt.date, kept_days: int | None) -> Iterator[pd.DataFrame]:
    for numbers in _chunks(batches):
        pop = population(numbers, seed, gen.cold_start_share)
        clean = cdr_chunk(pop, seed, run_date, gen.days, gen.usage_scale, snapshot, kept_days)
        events = pd.concat([clean, bad_rows.bad_cdr(clean, gen.bad_row_rate, run_date)],
                           ignore_index=True)
        events[Col.EVENT_TS] = pd.to_datetime(events[GenCol.EPOCH_S].to_numpy(), unit="s")
        yield events[_CDR_ROWS.fieldNames()]


def _subscribers(ids: DataFrame, run_date: dt.date, snapshot: dt.date,
                 fn: _RowMaker) -> DataFrame:
    rows = ids.mapInPandas(fn, _SUBSCRIBER_ROWS)
    signup = F.date_add(F.lit(snapshot), F.col(GenCol.SIGNUP_OFFSET))
    term = F.col(GenCol.TERM_MONTHS)
    # Contracts renew every `term` months from signup: the end is the first renewal after
    # run_date.
    terms_done = F.floor(F.months_between(F.lit(run_date), signup) / term)
    contract_end = F.add_months(signup, ((terms_done + 1) * term).cast("int"))
    return schemas.conform(rows.select(
        _id_column(GenCol.ID_NUMBER).alias(Col.SUBSCRIBER_ID), Col.SEGMENT, Col.REGION,
        signup.alias(Col.SIGNUP_DATE), Col.DEVICE_TIER, Col.PAYMENT_TYPE,
        F.when(term.isNotNull(), contract_end).alias(Col.CONTRACT_END), Col.HOUSEHOLD_SIZE,
        Col.MARKETING_OPT_OUT,
    ), schemas.GENERATED["subscribers"])


def _subscriptions(ids: DataFrame, snapshot: dt.date, fn: _RowMaker) -> DataFrame:
    rows = ids.mapInPandas(fn, _SUBSCRIPTION_ROWS)
    return schemas.conform(rows.select(
        _id_column(GenCol.ID_NUMBER).alias(Col.SUBSCRIBER_ID), Col.OFFER_ID,
        F.date_add(F.lit(snapshot), F.col(GenCol.START_OFFSET)).alias(Col.START_DATE),
        F.date_add(F.lit(snapshot), F.col(GenCol.END_OFFSET)).alias(Col.END_DATE),
    ), schemas.SUBSCRIPTIONS)


def _cdr(ids: DataFrame, fn: _RowMaker) -> DataFrame:
    rows = ids.mapInPandas(fn, _CDR_ROWS)
    code = F.col(GenCol.EVENT_CODE)
    event_type = (F.when(code == VOICE, EventType.VOICE).when(code == SMS, EventType.SMS)
                  .when(code == DATA, EventType.DATA)
                  .when(code == UNKNOWN_TYPE, UNKNOWN_EVENT_TYPE))
    return schemas.conform(rows.select(
        F.concat(_id_column(GenCol.OWNER_NUMBER), F.lit("-"),
                 F.col(GenCol.EVENT_NO).cast("string")).alias(Col.EVENT_ID),
        _id_column(GenCol.ID_NUMBER).alias(Col.SUBSCRIBER_ID), event_type.alias(Col.EVENT_TYPE),
        Col.EVENT_TS, Col.DURATION_S, Col.DATA_MB,  # EVENT_TS: wall clock in the session time zone
    ), schemas.CDR)


def _truth(ids: DataFrame, fn: _RowMaker) -> DataFrame:
    rows = ids.mapInPandas(fn, _TRUTH_ROWS)
    return schemas.conform(
        rows.withColumn(Col.SUBSCRIBER_ID, _id_column(GenCol.ID_NUMBER)), schemas.SUBSCRIBER_TRUTH)


def _catalogue(spark: SparkSession, offers: pd.DataFrame, bad_row_rate: float) -> DataFrame:
    if bad_row_rate > 0:
        offers = pd.concat([offers, bad_rows.bad_offer(offers)], ignore_index=True)
    return spark.createDataFrame(offers[schemas.CATALOGUE.fieldNames()], schemas.CATALOGUE)


def generate(spark: SparkSession, cfg: GeneratorConfig, seed: int, run_date: dt.date, *,
             partitions: int | None = None, kept_days: int | None = None) -> GeneratedTables:
    """The five tables of a synthetic operator (lazy DataFrames; nothing is written).

    `partitions` overrides the number of subscriber partitions (default: one per 50,000
    subscribers, at least 2); the result does not depend on it. With `cfg.snapshot_date`, the
    operator is dated from that day and its CDR run from `cfg.days` before it to the run date,
    at most the last `kept_days` (the CDR window ingest keeps: a source delivers no older day).
    """
    n = cfg.subscribers
    if n > MAX_SUBSCRIBERS:
        raise ConfigError(f"config key 'generator.subscribers': at most {MAX_SUBSCRIBERS:,}, got "
                          f"{n:,} (ids are S + 9 digits; 800/900 million mark injected bad rows)")
    if partitions is not None and partitions < 1:
        raise ValueError(f"partitions must be >= 1 or None (automatic), got {partitions}")
    snapshot = dt.date.fromisoformat(cfg.snapshot_date) if cfg.snapshot_date else run_date
    if snapshot > run_date:
        raise ConfigError(f"config key 'generator.snapshot_date' {snapshot} is after the run "
                          f"date {run_date}: the generated operator is dated from it; give a "
                          "run date on or after it, or an earlier snapshot_date")
    parts = partitions or max(2, n // SUBSCRIBERS_PER_PARTITION)
    ids = spark.range(n, numPartitions=parts)
    cdr_ids = spark.range(n, numPartitions=max(parts, n // CDR_SUBSCRIBERS_PER_PARTITION))
    offers = build_catalogue(cfg.offers, seed)
    common = {"seed": seed, "gen": cfg}
    return GeneratedTables(
        subscribers=_subscribers(ids, run_date, snapshot,
                                 functools.partial(_subscriber_rows, **common)),
        catalogue=_catalogue(spark, offers, cfg.bad_row_rate),
        subscriptions=_subscriptions(
            ids, snapshot, functools.partial(_subscription_rows, catalogue=offers, **common)),
        cdr=_cdr(cdr_ids, functools.partial(_cdr_rows, run_date=run_date, snapshot=snapshot,
                                            kept_days=kept_days, **common)),
        truth=_truth(ids, functools.partial(_truth_rows, catalogue=offers, **common)),
    )
