"""Every column name the project reads or writes, declared once.

Stages, tests and SQL examples refer to these constants instead of string literals so that a
rename is one edit and a typo is an AttributeError instead of a silent NULL column.
"""


class Col:
    # keys
    SUBSCRIBER_ID = "subscriber_id"
    OFFER_ID = "offer_id"
    EVENT_ID = "event_id"
    SUBSCRIBER_IDX = "subscriber_idx"
    OFFER_IDX = "offer_idx"
    RUN_DATE = "run_date"
    RUN_ID = "run_id"

    # subscribers
    SEGMENT = "segment"
    REGION = "region"
    SIGNUP_DATE = "signup_date"
    DEVICE_TIER = "device_tier"
    PAYMENT_TYPE = "payment_type"
    CONTRACT_END = "contract_end"
    HOUSEHOLD_SIZE = "household_size"

    # catalogue
    OFFER_NAME = "offer_name"
    PRICE = "price"
    DATA_GB = "data_gb"
    VOICE_MIN = "voice_min"
    SMS = "sms"
    CONTRACT_MONTHS = "contract_months"
    PLAN_TYPE = "plan_type"
    NETWORK = "network"
    FAMILY = "family"

    # subscriptions
    START_DATE = "start_date"
    # optional: when the source knows the time of day (an event log), ordering by it picks a
    # subscriber's latest pair among those of one day (interactions.split leave_one_out)
    START_TS = "start_ts"
    LAST_TS = "last_ts"  # the latest start_ts of a (subscriber, offer) pair
    END_DATE = "end_date"

    # cdr
    EVENT_TYPE = "event_type"
    EVENT_TS = "event_ts"
    DURATION_S = "duration_s"
    DATA_MB = "data_mb"

    # usage_daily / usage_window (telcorec/features/daily.py, window.py)
    DAY = "day"                  # the calendar day of the events a usage_daily row sums
    FULL_FROM = "full_from"      # the run date of the full recompute a window state descends from
    EVENTS_WINDOW = "events_window"  # CDR rows of the subscriber inside the window

    # generator truth (hidden preferences, used only by the oracle baseline)
    DATA_NEED_GB = "data_need_gb"
    VOICE_NEED_MIN = "voice_need_min"
    SMS_NEED = "sms_need"
    PRICE_SENSITIVITY = "price_sensitivity"
    # the generator's hidden taste: the offer family a subscriber likes beyond their needs
    # (synthetic/utility.taste_axes; -1 none). No feature shows it; their plan history does
    PERSONA = "persona"
    NEXT_OFFER_ID = "next_offer_id"  # a new subscriber's first plan choice (cold-start truth)

    # responses: a subscriber's answer to an offer published on offer_run_date
    OFFER_RUN_DATE = "offer_run_date"
    CHANNEL = "channel"
    RESPONDED_DATE = "responded_date"
    OUTCOME = "outcome"

    # experiment_results (telcorec/evaluation/experiment.py)
    WINDOW_START = "window_start"
    SUBSCRIBERS = "subscribers"
    OFFERED = "offered"
    RESPONDERS = "responders"
    ACCEPTED = "accepted"
    CONVERSION = "conversion"
    UPLIFT_ABS = "uplift_abs"
    UPLIFT_ABS_LOW = "uplift_abs_low"
    UPLIFT_ABS_HIGH = "uplift_abs_high"
    UPLIFT_REL = "uplift_rel"
    UPLIFT_REL_LOW = "uplift_rel_low"
    UPLIFT_REL_HIGH = "uplift_rel_high"
    P_VALUE = "p_value"
    TEST = "test"
    EXPECTED_SHARE = "expected_share"
    OBSERVED_SHARE = "observed_share"
    SRM_P_VALUE = "srm_p_value"
    SRM_OK = "srm_ok"
    MDE = "mde"
    REVENUE_PER_SUBSCRIBER = "revenue_per_subscriber"

    # drift (telcorec/evaluation/drift.py)
    KIND = "kind"
    FEATURE = "feature"
    REFERENCE = "reference"
    REFERENCE_DATE = "reference_date"
    THRESHOLD = "threshold"
    ALERT = "alert"

    # rejects
    SOURCE_TABLE = "source_table"
    REASON = "reason"
    RECORD = "record"

    # subscriber features
    TENURE_MONTHS = "tenure_months"
    TENURE_DAYS = "tenure_days"  # routes cold start (telcorec/offers/cold_start.py)
    TENURE_STAGE = "tenure_stage"
    DATA_GB_MONTH = "data_gb_month"
    DATA_GB_MONTH_STD = "data_gb_month_std"
    VOICE_MIN_MONTH = "voice_min_month"
    SMS_MONTH = "sms_month"
    DATA_CV = "data_cv"
    USAGE_STABILITY = "usage_stability"
    DATA_INTENSITY = "data_intensity"
    CALL_INTENSITY = "call_intensity"
    SMS_INTENSITY = "sms_intensity"
    CURRENT_OFFER_ID = "current_offer_id"
    HAS_HISTORY = "has_history"
    HOUSEHOLD = "household"

    # offer features
    PRICE_TIER = "price_tier"
    DATA_TIER = "data_tier"

    # interactions
    WEIGHT = "weight"
    EVENT_DATE = "event_date"
    SPLIT = "split"

    # model training / scoring
    SHARD = "shard"
    EXCLUDE_IDX = "exclude_idx"
    # offer indices a subscriber holds or held: a history-aware model's history tokens
    # (at evaluation their training offers, at scoring every pair of `interactions`)
    HISTORY_IDX = "history_idx"
    RANK = "rank"
    SCORE = "score"
    MODEL = "model"
    MODEL_VERSION = "model_version"
    MODEL_RUN_ID = "model_run_id"  # offers: the run that trained the model that scored the row

    # trials (hyperparameter search, telcorec/models/lightfm/tuning.py); the LightFM knobs are LIGHTFM_KNOBS
    TRIAL = "trial"
    PARAMS = "params"
    BEST_EPOCH = "best_epoch"
    BEST = "best"
    SECONDS = "seconds"
    TRAIN_PAIRS = "train_pairs"
    VALIDATION_PAIRS = "validation_pairs"

    # offers: arm, score components, reasons; scoring-only helper columns
    ARM = "arm"
    ROUTE = "route"  # Route.* of the subscriber's row
    RELEVANCE = "relevance"
    REVENUE = "revenue"
    RETENTION = "retention"
    DIVERSITY = "diversity"
    REASONS = "reasons"
    FATIGUE_IDX = "fatigue_idx"  # offers shown to the subscriber recently (contact fatigue)

    # runs
    ATTEMPT_ID = "attempt_id"
    STATUS = "status"
    STARTED_AT = "started_at"
    ENDED_AT = "ended_at"
    CONFIG_HASH = "config_hash"
    COUNTS = "counts"
    METRICS_JSON = "metrics"
    MESSAGE = "message"
    JOB = "job"    # the job that ran the attempt: pipeline, score, train, ...
    HOST = "host"  # where the attempt's driver ran, and its process id
    PID = "pid"

    # metrics
    PROTOCOL = "protocol"
    METRIC = "metric"
    K = "k"
    VALUE = "value"

    # optional input columns (read when the source has them, NULL otherwise)
    AUTOPAY = "autopay"
    ON_TIME_PAYMENT_SHARE = "on_time_payment_share"
    MONTHLY_CHARGE = "monthly_charge"
    CHURNED = "churned"
    USAGE = "usage"
    MISSED = "missed"
    ROAMING = "roaming"
    INTERNATIONAL = "international"
    MARKETING_OPT_OUT = "marketing_opt_out"  # consent: True = no marketing offers (rules.consent)

    # subscriber features
    VOICE_MIN_MONTH_STD = "voice_min_month_std"
    SMS_MONTH_STD = "sms_month_std"
    DATA_TREND = "data_trend"
    DATA_TREND_PCT = "data_trend_pct"
    USAGE_SCORE = "usage_score"
    PEAK_CALL_HOUR = "peak_call_hour"
    BUSINESS_HOURS_RATIO = "business_hours_ratio"
    MISSED_CALL_SHARE = "missed_call_share"
    ZERO_LENGTH_SHARE = "zero_length_share"
    ROAMING_SHARE = "roaming_share"
    INTERNATIONAL_SHARE = "international_share"
    DAYS_TO_CONTRACT_END = "days_to_contract_end"
    RENEWAL_WINDOW = "renewal_window"
    VALUE_SCORE = "value_score"
    VALUE_TIER = "value_tier"
    ACTIVE_OFFERS = "active_offers"
    DATA_USE_RATIO = "data_use_ratio"
    DATA_PLAN_FIT = "data_plan_fit"
    DATA_PLAN_EFFICIENCY = "data_plan_efficiency"
    VOICE_USE_RATIO = "voice_use_ratio"
    VOICE_PLAN_FIT = "voice_plan_fit"
    VOICE_PLAN_EFFICIENCY = "voice_plan_efficiency"
    CHURN_PROBABILITY = "churn_probability"
    CHURN_BAND = "churn_band"
    CHURN_SOURCE = "churn_source"

    # offer features
    OFFER_VALUE = "offer_value"
    VALUE_CATEGORY = "value_category"
    BUNDLE_RICHNESS = "bundle_richness"
    BUNDLE_TYPE = "bundle_type"
    CONTRACT_LENGTH = "contract_length"

    # interactions
    CONFIDENCE_USAGE = "usage_norm"
    FIRST_DATE = "first_date"

    # ingest: why an adapter could not parse a row (NULL when it could), and the raw row
    PARSE_ERROR = "_parse_error"
    RAW_RECORD = "_raw_record"


class Outcome:
    """`responses.outcome`: what the subscriber did with the offer (no row: no response)."""
    ACCEPTED = "accepted"
    DECLINED = "declined"
    ALL = (ACCEPTED, DECLINED)


class EventType:
    VOICE = "voice"
    SMS = "sms"
    DATA = "data"
    ALL = (VOICE, SMS, DATA)


class RunStatus:
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"  # the quality gate refused to publish
    # its heartbeat stopped without a final row (killed, or its host went down); recorded by
    # the next attempt that starts, shown at once by `./spark-submit.sh runs`
    ABANDONED = "abandoned"
    FINAL = (SUCCEEDED, FAILED, REJECTED, ABANDONED)


class Route:
    """How a subscriber's offers were ranked, by tenure (telcorec/offers/cold_start.py; `offers.route`)."""
    NEW = "new"                  # content rules only
    WARM = "warm"                # content rules blended with the model
    ESTABLISHED = "established"  # the model only
    ALL = (NEW, WARM, ESTABLISHED)


class Split:
    TRAIN = "train"
    TEST = "test"


class Cohort:
    """Evaluated subscribers, by what the models knew of them (`segment` in `metrics`)."""
    WARM = "warm"              # a held-out latest plan; earlier plans in training
    COLD_START = "cold_start"  # new, no history; ranked against the plan they take first


# Categorical subscriber features the hybrid models see, in a fixed order (the feature
# vocabulary is built from these columns; the order is part of a model's metadata).
SUBSCRIBER_CATEGORICALS = (
    Col.SEGMENT,
    Col.REGION,
    Col.DEVICE_TIER,
    Col.PAYMENT_TYPE,
    Col.TENURE_STAGE,
    Col.DATA_INTENSITY,
    Col.CALL_INTENSITY,
    Col.SMS_INTENSITY,
    Col.USAGE_STABILITY,
    Col.HOUSEHOLD,
)

# LightFM hyperparameters (the keys of train.lightfm) with their types: what tuning.space may
# search, and one column each in `trials`.
LIGHTFM_KNOBS = {"no_components": int, "learning_rate": float, "item_alpha": float,
                 "user_alpha": float, "max_sampled": int, "epochs": int, "k": int, "n": int}

# Categorical offer features; the offer id itself is always an item feature too.
OFFER_CATEGORICALS = (
    Col.PLAN_TYPE,
    Col.PAYMENT_TYPE,
    Col.NETWORK,
    Col.FAMILY,
    Col.PRICE_TIER,
    Col.DATA_TIER,
)


# The integer sums of one subscriber's CDR rows of one day (usage_daily), all `long`: data
# volume in kilobytes and voice in milliseconds so that the sliding window adds and removes
# days without rounding drift. Calls per hour of day, then the behaviour counts.
HOURS = 24
MONTH_DAYS = 30  # the features' buckets: 30-day months counted back from the run date
HOUR_CALLS = tuple(f"calls_h{h}" for h in range(HOURS))
BEHAVIOUR_COUNTS = ("calls_missed", "calls_missed_known", "calls_zero", "roaming",
                    "roaming_known", "international", "international_known")
MONTHLY_SUMS = ("data_kb", "voice_ms", "sms", "events")
DAILY_SUMS = (*MONTHLY_SUMS, *HOUR_CALLS, *BEHAVIOUR_COUNTS)


def window_sums(months: int) -> tuple[str, ...]:
    """The per-subscriber sums of the sliding window (usage_window): each monthly sum per 30-day
    month (`data_kb_0` is the 30 days before the run date), then the sums over the whole window."""
    per_month = tuple(f"{name}_{m}" for m in range(months) for name in MONTHLY_SUMS)
    return (*per_month, *HOUR_CALLS, *BEHAVIOUR_COUNTS, Col.EVENTS_WINDOW)
