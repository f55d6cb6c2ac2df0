"""The StructType of every table the project reads or writes, declared once.

Input tables (`SUBSCRIBERS`, `CATALOGUE`, `SUBSCRIPTIONS`, `CDR`) are the contract an operator's
own tables are mapped onto. Stages end with `select(*schema.fieldNames())` of their output
schema; jobs check their inputs with `require_columns` (metadata only, no Spark action).
"""
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from telcorec.core.columns import DAILY_SUMS, LIGHTFM_KNOBS, Col, window_sums
from telcorec.core.exceptions import SchemaError


def _schema(*fields: tuple) -> T.StructType:
    return T.StructType([T.StructField(name, dtype, nullable) for name, dtype, nullable in fields])


S, D, I, L, B, TS, DT = (T.StringType(), T.DoubleType(), T.IntegerType(), T.LongType(),
                         T.BooleanType(), T.TimestampType(), T.DateType())

# ---- inputs (the operator contract) -------------------------------------------------------
SUBSCRIBERS = _schema(
    (Col.SUBSCRIBER_ID, S, True), (Col.SEGMENT, S, True), (Col.REGION, S, True),
    (Col.SIGNUP_DATE, DT, True), (Col.DEVICE_TIER, S, True), (Col.PAYMENT_TYPE, S, True),
    (Col.CONTRACT_END, DT, True), (Col.HOUSEHOLD_SIZE, I, True),
)
CATALOGUE = _schema(
    (Col.OFFER_ID, S, True), (Col.OFFER_NAME, S, True), (Col.PRICE, D, True),
    (Col.DATA_GB, D, True), (Col.VOICE_MIN, D, True), (Col.SMS, I, True),
    (Col.CONTRACT_MONTHS, I, True), (Col.PLAN_TYPE, S, True), (Col.PAYMENT_TYPE, S, True),
    (Col.NETWORK, S, True), (Col.FAMILY, B, True),
)
SUBSCRIPTIONS = _schema(
    (Col.SUBSCRIBER_ID, S, True), (Col.OFFER_ID, S, True), (Col.START_DATE, DT, True),
    (Col.END_DATE, DT, True),
)
CDR = _schema(
    (Col.EVENT_ID, S, True), (Col.SUBSCRIBER_ID, S, True), (Col.EVENT_TYPE, S, True),
    (Col.EVENT_TS, TS, True), (Col.DURATION_S, D, True), (Col.DATA_MB, D, True),
)

# Feedback: the operator's record of answers to published offers. Not one of the four
# inputs every adapter must supply: a source without responses has none ("no response").
RESPONSES = _schema(
    (Col.SUBSCRIBER_ID, S, True), (Col.OFFER_ID, S, True), (Col.OFFER_RUN_DATE, DT, True),
    (Col.CHANNEL, S, True), (Col.RESPONDED_DATE, DT, True), (Col.OUTCOME, S, True),
)
FEEDBACK = {"responses": RESPONSES}


def validated(schema: T.StructType) -> T.StructType:
    """A validated input table: the input contract plus the run_date partition column."""
    return T.StructType([T.StructField(Col.RUN_DATE, DT, False), *schema.fields])


INPUTS = {"subscribers": SUBSCRIBERS, "catalogue": CATALOGUE,
          "subscriptions": SUBSCRIPTIONS, "cdr": CDR}

# The generator's hidden preferences: only the oracle baseline reads this table.
SUBSCRIBER_TRUTH = _schema(
    (Col.SUBSCRIBER_ID, S, False), (Col.SEGMENT, S, False), (Col.DEVICE_TIER, S, False),
    (Col.PAYMENT_TYPE, S, False), (Col.HOUSEHOLD_SIZE, I, False), (Col.DATA_NEED_GB, D, False),
    (Col.VOICE_NEED_MIN, D, False), (Col.SMS_NEED, D, False), (Col.PRICE_SENSITIVITY, D, False),
    (Col.PERSONA, I, False), (Col.NEXT_OFFER_ID, S, True),
)

# ---- stage outputs -------------------------------------------------------------------------
REJECTS = _schema(
    (Col.RUN_DATE, DT, False), (Col.SOURCE_TABLE, S, False), (Col.REASON, S, False),
    (Col.RECORD, S, True),
)
SUBSCRIBER_FEATURES = _schema(
    (Col.RUN_DATE, DT, False), (Col.SUBSCRIBER_ID, S, False), (Col.SEGMENT, S, True),
    (Col.REGION, S, True), (Col.DEVICE_TIER, S, True), (Col.PAYMENT_TYPE, S, True),
    (Col.HOUSEHOLD, S, False), (Col.TENURE_MONTHS, I, True), (Col.TENURE_STAGE, S, False),
    (Col.TENURE_DAYS, I, True),
    (Col.DATA_GB_MONTH, D, True), (Col.DATA_GB_MONTH_STD, D, True), (Col.VOICE_MIN_MONTH, D, True),
    (Col.SMS_MONTH, D, True), (Col.DATA_CV, D, True), (Col.USAGE_STABILITY, S, False),
    (Col.DATA_INTENSITY, S, False), (Col.CALL_INTENSITY, S, False), (Col.SMS_INTENSITY, S, False),
    (Col.CURRENT_OFFER_ID, S, True), (Col.HAS_HISTORY, B, False),
    # the full telecom feature set (definitions in telcorec/features/)
    (Col.VOICE_MIN_MONTH_STD, D, True), (Col.SMS_MONTH_STD, D, True),
    (Col.DATA_TREND, S, False), (Col.DATA_TREND_PCT, D, True), (Col.USAGE_SCORE, D, True),
    (Col.PEAK_CALL_HOUR, I, True), (Col.BUSINESS_HOURS_RATIO, D, True),
    (Col.MISSED_CALL_SHARE, D, True), (Col.ZERO_LENGTH_SHARE, D, True),
    (Col.ROAMING_SHARE, D, True), (Col.INTERNATIONAL_SHARE, D, True),
    (Col.DAYS_TO_CONTRACT_END, I, True), (Col.RENEWAL_WINDOW, S, False),
    (Col.VALUE_SCORE, D, True), (Col.VALUE_TIER, S, False), (Col.AUTOPAY, S, False),
    (Col.ON_TIME_PAYMENT_SHARE, D, True), (Col.ACTIVE_OFFERS, I, False),
    (Col.DATA_USE_RATIO, D, True), (Col.DATA_PLAN_FIT, S, False),
    (Col.DATA_PLAN_EFFICIENCY, D, True), (Col.VOICE_USE_RATIO, D, True),
    (Col.VOICE_PLAN_FIT, S, False), (Col.VOICE_PLAN_EFFICIENCY, D, True),
    (Col.CHURN_PROBABILITY, D, True), (Col.CHURN_BAND, S, False), (Col.CHURN_SOURCE, S, False),
    # consent (False where the source has no consent data); rules.CONSENT enforces it
    (Col.MARKETING_OPT_OUT, B, False),
)
# The feature stage's incremental state (README "Daily runs"). usage_daily: one row per subscriber
# and day, partitioned by the run date that aggregated it (a run writes the days it read, so a
# rerun replaces only its own rows); usage_window: one row per subscriber, the window's sums on
# the days settled at that run date (older than features.late_days), partitioned by run date.
USAGE_DAILY = _schema(
    (Col.RUN_DATE, DT, False), (Col.DAY, DT, False), (Col.SUBSCRIBER_ID, S, False),
    *((name, L, False) for name in DAILY_SUMS),
)


def usage_window(months: int) -> T.StructType:
    """The window state table for a window of `months` 30-day months."""
    return _schema((Col.RUN_DATE, DT, False), (Col.FULL_FROM, DT, False),
                   (Col.SUBSCRIBER_ID, S, False), *((name, L, False) for name in window_sums(months)))


OFFER_FEATURES = _schema(
    (Col.RUN_DATE, DT, False), (Col.OFFER_ID, S, False), (Col.OFFER_IDX, I, False),
    (Col.PRICE, D, False), (Col.DATA_GB, D, False), (Col.VOICE_MIN, D, False),
    (Col.PLAN_TYPE, S, True), (Col.PAYMENT_TYPE, S, True), (Col.NETWORK, S, True),
    (Col.FAMILY, S, False), (Col.PRICE_TIER, S, False), (Col.DATA_TIER, S, False),
    # the full telecom offer feature set
    (Col.SMS, I, True), (Col.CONTRACT_MONTHS, I, True), (Col.OFFER_VALUE, D, False),
    (Col.VALUE_CATEGORY, S, False), (Col.BUNDLE_RICHNESS, I, False), (Col.BUNDLE_TYPE, S, False),
    (Col.CONTRACT_LENGTH, S, False),
)
SUBSCRIBER_INDEX = _schema(
    (Col.RUN_DATE, DT, False), (Col.SUBSCRIBER_ID, S, False), (Col.SUBSCRIBER_IDX, L, False),
)
INTERACTIONS = _schema(
    (Col.RUN_DATE, DT, False), (Col.SUBSCRIBER_ID, S, False), (Col.SUBSCRIBER_IDX, L, False),
    (Col.OFFER_ID, S, False), (Col.OFFER_IDX, I, False), (Col.WEIGHT, D, False),
    (Col.EVENT_DATE, DT, True), (Col.SPLIT, S, False),
)
OFFERS = _schema(
    (Col.RUN_DATE, DT, False), (Col.RUN_ID, S, False), (Col.SUBSCRIBER_ID, S, False),
    (Col.OFFER_ID, S, False), (Col.RANK, I, False), (Col.SCORE, D, False),
    (Col.MODEL_VERSION, S, False),
    # the run that trained the model (its manifest); on the control arm's rows the scoring run,
    # which ranks them. NULL for a model trained before lineage was recorded, and in partitions
    # written before the column existed
    (Col.MODEL_RUN_ID, S, True),
    # the experiment arm, the components of the final score (telcorec/offers/rerank.py) and
    # the reasons (telcorec/offers/reasons.py). Partitions written before them read these as NULL.
    (Col.ARM, S, False), (Col.RELEVANCE, D, False), (Col.REVENUE, D, False),
    (Col.RETENTION, D, False), (Col.DIVERSITY, D, False),
    (Col.REASONS, T.ArrayType(S, containsNull=False), False),
    (Col.ROUTE, S, True),  # cold-start route (new / warm / established); NULL before it existed
)
EXPERIMENT_RESULTS = _schema(
    (Col.RUN_DATE, DT, False), (Col.WINDOW_START, DT, False), (Col.ARM, S, False),
    (Col.SEGMENT, S, False), (Col.SUBSCRIBERS, L, False), (Col.OFFERED, L, False),
    (Col.RESPONDERS, L, False), (Col.ACCEPTED, L, False), (Col.CONVERSION, D, True),
    # vs the control arm of the same segment; NULL on the control arm's own rows
    (Col.UPLIFT_ABS, D, True), (Col.UPLIFT_ABS_LOW, D, True), (Col.UPLIFT_ABS_HIGH, D, True),
    (Col.UPLIFT_REL, D, True), (Col.UPLIFT_REL_LOW, D, True), (Col.UPLIFT_REL_HIGH, D, True),
    (Col.P_VALUE, D, True), (Col.TEST, S, False),
    (Col.EXPECTED_SHARE, D, False), (Col.OBSERVED_SHARE, D, True), (Col.SRM_P_VALUE, D, True),
    (Col.SRM_OK, B, True), (Col.MDE, D, True), (Col.REVENUE_PER_SUBSCRIBER, D, True),
)
DRIFT = _schema(
    (Col.RUN_DATE, DT, False), (Col.KIND, S, False), (Col.FEATURE, S, False),
    (Col.REFERENCE, S, False), (Col.REFERENCE_DATE, DT, True), (Col.METRIC, S, False),
    (Col.VALUE, D, True), (Col.THRESHOLD, D, False), (Col.ALERT, B, False),
)
METRICS = _schema(
    (Col.RUN_DATE, DT, False), (Col.RUN_ID, S, False), (Col.MODEL, S, False),
    (Col.PROTOCOL, S, False), (Col.METRIC, S, False), (Col.K, I, False),
    (Col.SEGMENT, S, False), (Col.VALUE, D, False),
)
TRIALS = _schema(
    (Col.RUN_DATE, DT, False), (Col.RUN_ID, S, False), (Col.MODEL, S, False),
    (Col.TRIAL, I, False), (Col.PARAMS, S, False),
    *((knob, I if kind is int else D, False) for knob, kind in LIGHTFM_KNOBS.items()),
    (Col.METRIC, S, False), (Col.VALUE, D, False), (Col.BEST_EPOCH, I, False),
    (Col.SECONDS, D, False), (Col.TRAIN_PAIRS, L, False), (Col.VALIDATION_PAIRS, L, False),
    (Col.BEST, B, False),
)
RUNS = _schema(
    (Col.RUN_DATE, DT, False), (Col.RUN_ID, S, False), (Col.ATTEMPT_ID, S, False),
    (Col.STATUS, S, False), (Col.STARTED_AT, TS, False), (Col.ENDED_AT, TS, True),
    (Col.CONFIG_HASH, S, False), (Col.MODEL_VERSION, S, True), (Col.COUNTS, S, True),
    (Col.METRICS_JSON, S, True), (Col.MESSAGE, S, True),
    # NULL in rows written before they existed (the first append of such a table adds them)
    (Col.JOB, S, True), (Col.HOST, S, True), (Col.PID, L, True),
)


def require_columns(df: DataFrame, schema: T.StructType, table: str) -> None:
    """Fail fast, before any Spark action, when a column is missing or has the wrong type."""
    actual = {f.name: f.dataType for f in df.schema.fields}
    for field in schema.fields:
        if field.name not in actual:
            raise SchemaError(
                f"table '{table}' has no column '{field.name}' (expected type "
                f"{field.dataType.simpleString()}); columns present: {sorted(actual)}. "
                "Map your column onto it in the adapter config or rename it.")
        if actual[field.name] != field.dataType:
            raise SchemaError(
                f"table '{table}' column '{field.name}' is {actual[field.name].simpleString()}, "
                f"expected {field.dataType.simpleString()}. Cast it in the adapter or fix the source.")


def conform(df: DataFrame, schema: T.StructType) -> DataFrame:
    """Select exactly the schema's columns, in order, cast to the declared types."""
    return df.select(*[df[f.name].cast(f.dataType).alias(f.name) for f in schema.fields])


# ---- optional input columns ---------------------------------------------------------------
# Read when the source has them (an adapter maps them, or a Delta input table holds them), NULL
# otherwise; the validated tables always carry them, so later stages need no "if present".
OPTIONAL = {
    "subscribers": _schema((Col.AUTOPAY, B, True), (Col.ON_TIME_PAYMENT_SHARE, D, True),
                           (Col.MONTHLY_CHARGE, D, True), (Col.CHURNED, B, True),
                           (Col.MARKETING_OPT_OUT, B, True)),
    "catalogue": _schema(),
    "subscriptions": _schema((Col.USAGE, D, True), (Col.START_TS, TS, True)),
    "cdr": _schema((Col.MISSED, B, True), (Col.ROAMING, B, True), (Col.INTERNATIONAL, B, True)),
    "responses": _schema(),
}

# Columns a row cannot be accepted without (NULL -> rejected as null_key / missing_attribute);
# an adapter's mapping must name a source column for each of them.
REQUIRED = {
    "subscribers": (Col.SUBSCRIBER_ID, Col.SEGMENT, Col.SIGNUP_DATE, Col.PAYMENT_TYPE),
    "catalogue": (Col.OFFER_ID, Col.PRICE, Col.DATA_GB, Col.PLAN_TYPE, Col.PAYMENT_TYPE),
    "subscriptions": (Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.START_DATE),
    "cdr": (Col.EVENT_ID, Col.SUBSCRIBER_ID, Col.EVENT_TYPE, Col.EVENT_TS),
    "responses": (Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.OFFER_RUN_DATE, Col.RESPONDED_DATE,
                  Col.OUTCOME),
}


# What the generator writes (inputs.source generated): the contract plus the optional columns
# it simulates (consent).
GENERATED = {**INPUTS, "subscribers": _schema(
    *[(f.name, f.dataType, f.nullable) for f in SUBSCRIBERS.fields],
    (Col.MARKETING_OPT_OUT, B, True))}


def full(name: str) -> T.StructType:
    """An input (or feedback) table's contract columns followed by its optional columns."""
    return T.StructType([*{**INPUTS, **FEEDBACK}[name].fields, *OPTIONAL[name].fields])


def accepted(name: str) -> T.StructType:
    """The validated (accepted rows) table `name` as ingest writes it: run_date + full(name)."""
    return validated(full(name))


# Every Delta table of the warehouse by name, with the schema it is written and read with.
TABLES = {
    **{name: accepted(name) for name in [*INPUTS, *FEEDBACK]},
    "rejects": REJECTS,
    "subscriber_features": SUBSCRIBER_FEATURES,
    "usage_daily": USAGE_DAILY,
    "offer_features": OFFER_FEATURES,
    "subscriber_index": SUBSCRIBER_INDEX,
    "interactions": INTERACTIONS,
    "offers": OFFERS,
    "metrics": METRICS,
    "trials": TRIALS,
    "runs": RUNS,
    "experiment_results": EXPERIMENT_RESULTS,
    "drift": DRIFT,
}
