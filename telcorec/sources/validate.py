"""Validation of the four input tables and of `responses`: every row is accepted or quarantined
with a reason.

The configured adapter (`telcorec.adapters`, chosen by `inputs.source`) supplies the four
tables in the input contract; a missing or mistyped column fails there, before anything is
written. With `pseudonymisation.enabled` subscriber (and event) ids are replaced by their keyed
hash first. Each rule is a named boolean Column; a row's reject reason is the first rule it
breaks, in the order listed (a line whose bytes did not decode in the configured encoding
comes first: invalid_encoding; then a value the adapter could not parse: unparsable_value). Accepted rows go to the validated tables of this run date, the others to
`rejects` with the reason and the row as JSON (with pseudonymisation on, for tables of
subscriber data, only the pseudonymised keys, dates, timestamps, flags and the names of columns
that failed to parse: no value of a possibly malformed row that could be a phone number). For
every table read = accepted + rejected, which the stage reports and checks.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from telcorec.core import schemas
from telcorec.core.columns import Col, EventType, Outcome
from telcorec.sources.parse import INVALID_ENCODING

log = logging.getLogger(__name__)
MAX_DURATION_S = 24 * 3600


@dataclass(frozen=True)
class TableCounts:
    table: str
    read: int
    accepted: int
    rejected_by_reason: dict[str, int]
    # accepted rows worth counting that are not errors (CDR: missed and zero-length calls)
    flagged: dict[str, int] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


def _first_failing(rules: list[tuple[str, Column]], df: DataFrame | None = None) -> Column:
    if df is not None and Col.PARSE_ERROR in df.columns:
        rules = [(INVALID_ENCODING, F.col(Col.PARSE_ERROR) == INVALID_ENCODING),
                 ("unparsable_value", F.col(Col.PARSE_ERROR).isNotNull()), *rules]
    reason = F.lit(None).cast("string")
    for name, broken in reversed(rules):
        reason = F.when(broken, F.lit(name)).otherwise(reason)
    return reason


def _duplicate(key: str, order: list[str]) -> Column:
    """True for every copy of a key but the first (ordered by `order`, then the whole row)."""
    window = Window.partitionBy(key).orderBy(*[F.col(c).asc_nulls_last() for c in order],
                                             F.xxhash64(F.to_json(F.struct("*"))))
    return F.row_number().over(window) > 1


def tag_subscribers(df: DataFrame) -> DataFrame:
    missing = (F.col(Col.SEGMENT).isNull() | F.col(Col.PAYMENT_TYPE).isNull()
               | F.col(Col.SIGNUP_DATE).isNull())
    return df.withColumn(Col.REASON, _first_failing([
        ("null_key", F.col(Col.SUBSCRIBER_ID).isNull()),
        ("missing_attribute", missing),
        ("duplicate_id", _duplicate(Col.SUBSCRIBER_ID, [Col.SIGNUP_DATE])),
    ], df))


def tag_catalogue(df: DataFrame) -> DataFrame:
    missing = (F.col(Col.PRICE).isNull() | F.col(Col.DATA_GB).isNull()
               | F.col(Col.PLAN_TYPE).isNull() | F.col(Col.PAYMENT_TYPE).isNull())
    return df.withColumn(Col.REASON, _first_failing([
        ("null_key", F.col(Col.OFFER_ID).isNull()),
        ("missing_attribute", missing),
        ("negative_price", F.col(Col.PRICE) < 0),
        ("duplicate_id", _duplicate(Col.OFFER_ID, [Col.PRICE])),
    ], df))


def _known(df: DataFrame, keys: DataFrame, key: str, flag: str) -> DataFrame:
    known = keys.select(F.col(key), F.lit(True).alias(flag))
    return df.join(known, on=key, how="left")


def tag_subscriptions(df: DataFrame, subscriber_ids: DataFrame, offer_ids: DataFrame,
                      run_date: dt.date) -> DataFrame:
    df = _known(_known(df, subscriber_ids, Col.SUBSCRIBER_ID, "_known_sub"),
                offer_ids, Col.OFFER_ID, "_known_offer")
    bad_dates = ((F.col(Col.START_DATE) > F.lit(run_date))
                 | (F.col(Col.END_DATE) < F.col(Col.START_DATE)))
    return df.withColumn(Col.REASON, _first_failing([
        ("null_key", F.col(Col.SUBSCRIBER_ID).isNull() | F.col(Col.OFFER_ID).isNull()
         | F.col(Col.START_DATE).isNull()),
        ("unknown_subscriber", F.col("_known_sub").isNull()),
        ("unknown_offer", F.col("_known_offer").isNull()),
        ("invalid_dates", bad_dates),
    ], df)).drop("_known_sub", "_known_offer")


def tag_cdr(df: DataFrame, subscriber_ids: DataFrame, run_date: dt.date,
            window_days: int) -> DataFrame:
    df = _known(df, subscriber_ids, Col.SUBSCRIBER_ID, "_known_sub")
    run_start = F.lit(dt.datetime.combine(run_date, dt.time()))
    window_start = F.lit(dt.datetime.combine(run_date - dt.timedelta(days=window_days), dt.time()))
    is_voice = F.col(Col.EVENT_TYPE) == EventType.VOICE
    return df.withColumn(Col.REASON, _first_failing([
        ("null_key", F.col(Col.EVENT_ID).isNull() | F.col(Col.SUBSCRIBER_ID).isNull()
         | F.col(Col.EVENT_TS).isNull()),
        ("unknown_event_type", ~F.col(Col.EVENT_TYPE).isin(*EventType.ALL)
         | F.col(Col.EVENT_TYPE).isNull()),
        ("negative_duration", is_voice & (F.col(Col.DURATION_S) < 0)),
        ("absurd_duration", is_voice & (F.col(Col.DURATION_S) > MAX_DURATION_S)),
        ("negative_volume", F.col(Col.DATA_MB) < 0),
        ("future_timestamp", F.col(Col.EVENT_TS) >= run_start),
        ("outside_window", F.col(Col.EVENT_TS) < window_start),
        ("unknown_subscriber", F.col("_known_sub").isNull()),
        ("duplicate_event", _duplicate(Col.EVENT_ID, [Col.EVENT_TS])),
    ], df)).drop("_known_sub")


RESPONSE_KEY = (Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.OFFER_RUN_DATE)


def tag_responses(df: DataFrame, subscriber_ids: DataFrame, published: DataFrame,
                  recorded: DataFrame, run_date: dt.date) -> DataFrame:
    """Answers to offers. `published`: the `offers` rows (subscriber_id, offer_id, run_date) of
    run dates before this one; `recorded`: responses accepted on earlier run dates (RESPONSE_KEY
    columns). A response must answer an offer published to that subscriber on offer_run_date,
    on or after that date and not after the run date, once (the first copy of a file counts;
    one recorded on an earlier run date makes every new copy a duplicate)."""
    offered = published.select(Col.SUBSCRIBER_ID, Col.OFFER_ID,
                               F.col(Col.RUN_DATE).alias(Col.OFFER_RUN_DATE),
                               F.lit(True).alias("_offered"))
    seen = recorded.select(*RESPONSE_KEY, F.lit(True).alias("_recorded"))
    df = (_known(df, subscriber_ids, Col.SUBSCRIBER_ID, "_known_sub")
          .join(offered, on=list(RESPONSE_KEY), how="left")
          .join(seen, on=list(RESPONSE_KEY), how="left"))
    broken = _first_failing([
        ("null_key", F.col(Col.SUBSCRIBER_ID).isNull() | F.col(Col.OFFER_ID).isNull()
         | F.col(Col.OFFER_RUN_DATE).isNull() | F.col(Col.RESPONDED_DATE).isNull()),
        ("unknown_outcome", ~F.coalesce(F.col(Col.OUTCOME).isin(*Outcome.ALL), F.lit(False))),
        ("unknown_subscriber", F.col("_known_sub").isNull()),
        ("not_offered", F.col("_offered").isNull()),
        ("response_before_offer", F.col(Col.RESPONDED_DATE) < F.col(Col.OFFER_RUN_DATE)),
        ("future_response", F.col(Col.RESPONDED_DATE) > F.lit(run_date)),
    ], df)
    # the first valid copy counts: a broken row of the same key must not make a good one a copy
    first = Window.partitionBy(*RESPONSE_KEY).orderBy(
        broken.isNotNull(), F.col(Col.RESPONDED_DATE).asc_nulls_last(),
        F.xxhash64(F.to_json(F.struct("*"))))
    repeated = (F.row_number().over(first) > 1) | F.col("_recorded").isNotNull()
    return df.withColumn(Col.REASON, F.coalesce(
        broken, F.when(repeated, F.lit("duplicate_response")))
    ).drop("_known_sub", "_offered", "_recorded")


def accepted_rows(tagged: DataFrame, schema, run_date: dt.date) -> DataFrame:
    return (tagged.filter(F.col(Col.REASON).isNull())
            .withColumn(Col.RUN_DATE, F.lit(run_date))
            .select(Col.RUN_DATE, *schema.fieldNames()))


def rejected_rows(tagged: DataFrame, table: str, schema, run_date: dt.date,
                  private: Column | None = None) -> DataFrame:
    """Rejected rows with their reason and the row as JSON (the raw source values when the
    adapter could not parse them). `private`: the record to store instead when
    pseudonymisation is on (pseudonymise.private_record: no value that could be an MSISDN)."""
    record = F.to_json(F.struct(*[F.col(c) for c in schema.fieldNames()]))
    if Col.RAW_RECORD in tagged.columns:
        record = F.coalesce(F.col(Col.RAW_RECORD), record)
    if private is not None:
        record = private
    return (tagged.filter(F.col(Col.REASON).isNotNull())
            .select(F.lit(run_date).alias(Col.RUN_DATE), F.lit(table).alias(Col.SOURCE_TABLE),
                    F.col(Col.REASON), record.alias(Col.RECORD)))


CONSENT_RECORDED, OPTED_OUT = "consent_recorded", "marketing_opt_out"


def _flags(tagged: DataFrame) -> dict[str, Column]:
    """Accepted-row counts reported beside the rejects (the CDR's missed / zero-length calls;
    subscribers with a consent value, and those opted out of marketing)."""
    if Col.MARKETING_OPT_OUT in tagged.columns:
        return {CONSENT_RECORDED: F.count(Col.MARKETING_OPT_OUT),
                OPTED_OUT: F.count(F.when(F.col(Col.MARKETING_OPT_OUT), 1))}
    if Col.MISSED not in tagged.columns:
        return {}
    voice = F.col(Col.EVENT_TYPE) == EventType.VOICE
    missed = F.coalesce(F.col(Col.MISSED), F.lit(False))
    return {"missed_calls": F.count(F.when(voice & missed, 1)),
            "zero_length_calls": F.count(F.when(voice & ~missed & (F.col(Col.DURATION_S) == 0),
                                                1))}


def count_tagged(tagged: DataFrame, table: str) -> TableCounts:
    """One small aggregation: rows per reason (NULL = accepted), plus the accepted flags."""
    flags = _flags(tagged)
    rows = tagged.groupBy(Col.REASON).agg(F.count(F.lit(1)).alias("count"),
                                          *[c.alias(n) for n, c in flags.items()]).collect()
    by_reason = {r[Col.REASON]: r["count"] for r in rows}
    accepted = by_reason.pop(None, 0)
    flagged = {n: r[n] for r in rows if r[Col.REASON] is None for n in flags}
    return TableCounts(table, accepted + sum(by_reason.values()), accepted, by_reason, flagged)


def unparsable_columns(tagged: DataFrame, table: str, counts: TableCounts) -> str:
    """For a failing run: how many rows each column failed to parse in, and the columns that
    parsed in no row at all (a column whose type or content changed: schema drift in a CSV).
    Column names only, never values."""
    text = ""
    if counts.rejected_by_reason.get(INVALID_ENCODING):
        text = (f" {counts.rejected_by_reason[INVALID_ENCODING]} row(s) hold bytes that do not "
                "decode in the configured encoding: if the file is in another one, name it in "
                "the source's `encoding` key (e.g. inputs.operator.csv.encoding: cp1252).")
    if not counts.rejected_by_reason.get("unparsable_value"):
        return text
    rows = (tagged.where(F.col(Col.REASON) == "unparsable_value")
            .select(F.explode(F.split(Col.PARSE_ERROR, ",")).alias("column"))
            .groupBy("column").count().collect())
    failed = {r["column"]: r["count"] for r in rows}
    types = {f.name: f.dataType.simpleString() for f in schemas.full(table).fields}
    everywhere = [f"'{c}' (expected {types[c]})" for c, n in sorted(failed.items())
                  if n == counts.read and c in types]
    text += f" Unparsable values per column: {dict(sorted(failed.items()))}."
    if everywhere:
        text += (f" Column(s) {', '.join(everywhere)} parsed in none of the {counts.read} rows: "
                 "the source's column type or content changed.")
    return text


