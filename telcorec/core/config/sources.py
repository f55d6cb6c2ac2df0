"""Settings of the inputs: where the four input tables come from (generated, tables, the operator's
files, the public-data adapters), their validation, pseudonymisation and the Delta writer."""
from __future__ import annotations

import codecs
import datetime as dt
from dataclasses import dataclass, field

from telcorec.core.config.loader import check
from telcorec.core.config.offers import _SEGMENT_NAME, _SEGMENT_RULE


@dataclass(frozen=True)
class GeneratorConfig:
    subscribers: int = 8000
    offers: int = 60
    days: int = 90
    cold_start_share: float = 0.05
    bad_row_rate: float = 0.001
    opt_out_share: float = 0.02
    # multiplies every subscriber's expected calls, SMS and data sessions (1.0: about ten CDR
    # rows a day); benchmarks lower it to set the CDR volume apart from the population size
    usage_scale: float = 1.0
    # The day the generated operator is dated from (YYYY-MM-DD): signups and plans count back
    # from it and its CDR start `days` before it, so later run dates see the same subscribers
    # and the same rows of every past day, plus one more day per day, as a real source
    # delivers them (the features' daily runs then continue from each other). "" = each run
    # date gets its own operator, dated back from that date (a single run's demo).
    snapshot_date: str = ""

    def __post_init__(self) -> None:
        check(self.subscribers >= 10, "generator.subscribers", "must be >= 10")
        check(_iso_or_empty(self.snapshot_date, date_only=True), "generator.snapshot_date",
              "must be YYYY-MM-DD or empty (each run date its own operator)")
        check(self.offers >= 50, "generator.offers", "must be >= 50 (a realistic catalogue)")
        check(self.days >= 90, "generator.days", "must be >= 90 days of usage")
        check(0 <= self.cold_start_share < 1, "generator.cold_start_share", "must be in [0, 1)")
        check(0 <= self.bad_row_rate < 0.5, "generator.bad_row_rate", "must be in [0, 0.5)")
        check(0 <= self.opt_out_share <= 1, "generator.opt_out_share", "must be in [0, 1]")
        check(0 < self.usage_scale <= 10, "generator.usage_scale", "must be in (0, 10]")


INPUT_SOURCES = ("generated", "tables", "operator", "ibm_telco", "copenhagen", "interactions")


SOURCE_FORMATS = ("csv", "parquet", "delta")


EXTRA_COLUMNS = ("fail", "ignore")


_ENCODING_RULE = ("must be a text encoding in which newline, comma, semicolon, tab, pipe and "
                  "quote are their single ASCII bytes (utf-8, latin-1, cp1252, iso8859-15, ...); "
                  "convert UTF-16/32 files to UTF-8 first")


def text_encoding(name: str) -> bool:
    """Lines are split on the byte 0x0A before they are decoded, so only encodings that write
    the CSV control characters as those ASCII bytes can be read line by line."""
    controls = "\n,;\t|\""
    try:
        codecs.lookup(name)
        return controls.encode(name) == controls.encode("ascii")
    except (LookupError, UnicodeError):
        return False


@dataclass(frozen=True)
class CsvConfig:
    """How CSV inputs are read: every value as a string, then parsed with these formats."""
    header: bool = True
    delimiter: str = ","
    timestamp_format: str = "yyyy-MM-dd HH:mm:ss"
    date_format: str = "yyyy-MM-dd"
    # bytes that do not decode in it make their row a reject (invalid_encoding)
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        check(len(self.delimiter) == 1, "inputs.*.csv.delimiter", "must be one character")
        check(text_encoding(self.encoding), "inputs.*.csv.encoding", _ENCODING_RULE)


@dataclass(frozen=True)
class TableSourceConfig:
    """One source table: where it is and how its columns map onto the input contract."""
    path: str = ""                       # file or directory, relative to the adapter's path
    columns: dict[str, str] = field(default_factory=dict)  # contract column -> source column
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # recode source values


@dataclass(frozen=True)
class OperatorSourceConfig:
    """inputs.source = operator: the operator's own tables with a column mapping."""
    format: str = "csv"
    path: str = ""
    csv: CsvConfig = field(default_factory=CsvConfig)
    subscribers: TableSourceConfig = field(default_factory=TableSourceConfig)
    catalogue: TableSourceConfig = field(default_factory=TableSourceConfig)
    subscriptions: TableSourceConfig = field(default_factory=TableSourceConfig)
    cdr: TableSourceConfig = field(default_factory=TableSourceConfig)
    # answers to published offers; no file at this path = no responses (nothing rejected)
    responses: TableSourceConfig = field(default_factory=lambda: TableSourceConfig("responses"))

    def __post_init__(self) -> None:
        check(self.format in SOURCE_FORMATS, "inputs.operator.format",
               f"must be one of {list(SOURCE_FORMATS)}")


@dataclass(frozen=True)
class IbmTelcoConfig:
    """inputs.source = ibm_telco: IBM's Telco Customer Churn CSV (one row per customer)."""
    path: str = "../shared/data/ibm-telco-churn/Telco-Customer-Churn.csv"
    snapshot_date: str = ""   # the date tenure counts back from (YYYY-MM-DD); "" = run date
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        check(text_encoding(self.encoding), "inputs.ibm_telco.encoding", _ENCODING_RULE)
        check(_iso_or_empty(self.snapshot_date), "inputs.ibm_telco.snapshot_date",
               "must be YYYY-MM-DD or empty (the run date)")


@dataclass(frozen=True)
class CopenhagenConfig:
    """inputs.source = copenhagen: the Copenhagen Networks Study calls and SMS."""
    calls: str = "../shared/data/copenhagen-calls/calls.csv"
    sms: str = "../shared/data/copenhagen-calls/sms.csv"
    start: str = ""           # study second 0 as YYYY-MM-DD[THH:MM:SS]; "" = run date - 28 days
    segment: str = "student"
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        check(text_encoding(self.encoding), "inputs.copenhagen.encoding", _ENCODING_RULE)
        check(_iso_or_empty(self.start), "inputs.copenhagen.start",
               "must be YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, or empty")
        check(bool(_SEGMENT_NAME.match(self.segment)), "inputs.copenhagen.segment",
               _SEGMENT_RULE)


@dataclass(frozen=True)
class InteractionsSourceConfig:
    """inputs.source = interactions: generic user,item[,timestamp,weight] events."""
    format: str = "csv"
    path: str = ""
    csv: CsvConfig = field(default_factory=CsvConfig)
    events: TableSourceConfig = field(default_factory=TableSourceConfig)
    timestamp_unit: str = "seconds"   # seconds | milliseconds | format (csv.timestamp_format)
    users: TableSourceConfig = field(default_factory=TableSourceConfig)   # optional attributes
    items: TableSourceConfig = field(default_factory=TableSourceConfig)   # optional attributes
    # optional fixed candidates of the sampled protocol: one row per (user, negative item)
    # (telcorec/sources/negatives.py); "" = sampled negatives (evaluation.sampled_negatives)
    negatives: TableSourceConfig = field(default_factory=TableSourceConfig)

    def __post_init__(self) -> None:
        check(self.format in ("csv", "parquet"), "inputs.interactions.format",
               "must be csv or parquet")
        mapped = self.negatives.columns
        check(not self.negatives.path or sorted(mapped) == ["item", "user"],
              "inputs.interactions.negatives.columns",
              f"must map exactly user and item onto the file's columns (got {sorted(mapped)}), "
              "e.g. {user: user, item: item}")
        check(not self.negatives.values, "inputs.interactions.negatives.values",
              "is not supported: the ids must be written as in the events file")
        check(self.timestamp_unit in ("seconds", "milliseconds", "format"),
               "inputs.interactions.timestamp_unit", "must be seconds, milliseconds or format")


def _iso_or_empty(text: str, date_only: bool = False) -> bool:
    """`text` is empty or an ISO date (with a time too, unless `date_only`)."""
    if not text:
        return True
    try:
        (dt.date if date_only else dt.datetime).fromisoformat(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class InputsConfig:
    source: str = "generated"
    path: str = "raw"
    operator: OperatorSourceConfig = field(default_factory=OperatorSourceConfig)
    ibm_telco: IbmTelcoConfig = field(default_factory=IbmTelcoConfig)
    copenhagen: CopenhagenConfig = field(default_factory=CopenhagenConfig)
    interactions: InteractionsSourceConfig = field(default_factory=InteractionsSourceConfig)

    def __post_init__(self) -> None:
        check(self.source in INPUT_SOURCES, "inputs.source",
               "must be generated (make demo data), tables (Delta tables in the input contract "
               "at inputs.path), operator (your CSV/Parquet/Delta with a column mapping), "
               "ibm_telco, copenhagen or interactions")


@dataclass(frozen=True)
class IngestConfig:
    cdr_window_days: int = 180
    max_reject_share: float = 0.05
    extra_columns: str = "fail"  # fail | ignore: source columns the contract/mapping does not use

    def __post_init__(self) -> None:
        check(self.cdr_window_days >= 1, "ingest.cdr_window_days", "must be >= 1")
        check(0 <= self.max_reject_share <= 1, "ingest.max_reject_share", "must be in [0, 1]")
        check(self.extra_columns in EXTRA_COLUMNS, "ingest.extra_columns",
               f"must be one of {EXTRA_COLUMNS}")


@dataclass(frozen=True)
class PseudonymisationConfig:
    """Subscriber (and event) identifiers replaced by HMAC-SHA-256 under a secret key before
    anything is written. The key comes from the environment variable `secret_env` or the file
    `secret_file`, read only at the job's edge (`telcorec.adapters.pseudonymise.resolve_secret`)."""
    enabled: bool = False
    secret_env: str = "TELCOREC_PSEUDO_KEY"
    secret_file: str = ""
    event_ids: bool = True

    def __post_init__(self) -> None:
        check(not self.enabled or bool(self.secret_env or self.secret_file),
               "pseudonymisation.secret_env", "name an environment variable or a secret_file")


@dataclass(frozen=True)
class StorageConfig:
    writer: str = "auto"

    def __post_init__(self) -> None:
        check(self.writer in ("auto", "delta-rs", "spark"), "storage.writer",
               "must be auto (Spark's Delta source when the session has it, else delta-rs), "
               "delta-rs or spark")
