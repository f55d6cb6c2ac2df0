"""Typed configuration: YAML in conf/ loaded once into frozen dataclasses.

A config file may name a parent with `extends:` (relative to itself); mappings are merged key by
key, the child winning. Unknown keys and out-of-range values are refused with a message naming
the full key, so a typo fails at start-up instead of silently using a default.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from telcorec.core import paths, schemas
from telcorec.core.columns import LIGHTFM_KNOBS
from telcorec.core.exceptions import ConfigError


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"config key '{key}': {message}")


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

    def __post_init__(self) -> None:
        _check(self.subscribers >= 10, "generator.subscribers", "must be >= 10")
        _check(self.offers >= 50, "generator.offers", "must be >= 50 (a realistic catalogue)")
        _check(self.days >= 90, "generator.days", "must be >= 90 days of usage")
        _check(0 <= self.cold_start_share < 1, "generator.cold_start_share", "must be in [0, 1)")
        _check(0 <= self.bad_row_rate < 0.5, "generator.bad_row_rate", "must be in [0, 0.5)")
        _check(0 <= self.opt_out_share <= 1, "generator.opt_out_share", "must be in [0, 1]")
        _check(0 < self.usage_scale <= 10, "generator.usage_scale", "must be in (0, 10]")


INPUT_SOURCES = ("generated", "tables", "operator", "ibm_telco", "copenhagen", "interactions")
SOURCE_FORMATS = ("csv", "parquet", "delta")
EXTRA_COLUMNS = ("fail", "ignore")


@dataclass(frozen=True)
class CsvConfig:
    """How CSV inputs are read: every value as a string, then parsed with these formats."""
    header: bool = True
    delimiter: str = ","
    timestamp_format: str = "yyyy-MM-dd HH:mm:ss"
    date_format: str = "yyyy-MM-dd"

    def __post_init__(self) -> None:
        _check(len(self.delimiter) == 1, "inputs.*.csv.delimiter", "must be one character")


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

    def __post_init__(self) -> None:
        _check(self.format in SOURCE_FORMATS, "inputs.operator.format",
               f"must be one of {list(SOURCE_FORMATS)}")


@dataclass(frozen=True)
class IbmTelcoConfig:
    """inputs.source = ibm_telco: IBM's Telco Customer Churn CSV (one row per customer)."""
    path: str = "../shared/data/ibm-telco-churn/Telco-Customer-Churn.csv"
    snapshot_date: str = ""   # the date tenure counts back from (YYYY-MM-DD); "" = run date

    def __post_init__(self) -> None:
        _check(_iso_or_empty(self.snapshot_date), "inputs.ibm_telco.snapshot_date",
               "must be YYYY-MM-DD or empty (the run date)")


@dataclass(frozen=True)
class CopenhagenConfig:
    """inputs.source = copenhagen: the Copenhagen Networks Study calls and SMS."""
    calls: str = "../shared/data/copenhagen-calls/calls.csv"
    sms: str = "../shared/data/copenhagen-calls/sms.csv"
    start: str = ""           # study second 0 as YYYY-MM-DD[THH:MM:SS]; "" = run date - 28 days
    segment: str = "student"

    def __post_init__(self) -> None:
        _check(_iso_or_empty(self.start), "inputs.copenhagen.start",
               "must be YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, or empty")
        _check(bool(_SEGMENT_NAME.match(self.segment)), "inputs.copenhagen.segment",
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

    def __post_init__(self) -> None:
        _check(self.format in ("csv", "parquet"), "inputs.interactions.format",
               "must be csv or parquet")
        _check(self.timestamp_unit in ("seconds", "milliseconds", "format"),
               "inputs.interactions.timestamp_unit", "must be seconds, milliseconds or format")


def _iso_or_empty(text: str) -> bool:
    import datetime as _dt
    if not text:
        return True
    try:
        _dt.datetime.fromisoformat(text)
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
        _check(self.source in INPUT_SOURCES, "inputs.source",
               "must be generated (make demo data), tables (Delta tables in the input contract "
               "at inputs.path), operator (your CSV/Parquet/Delta with a column mapping), "
               "ibm_telco, copenhagen or interactions")


@dataclass(frozen=True)
class IngestConfig:
    cdr_window_days: int = 180
    max_reject_share: float = 0.05
    extra_columns: str = "fail"  # fail | ignore: source columns the contract/mapping does not use

    def __post_init__(self) -> None:
        _check(self.cdr_window_days >= 1, "ingest.cdr_window_days", "must be >= 1")
        _check(0 <= self.max_reject_share <= 1, "ingest.max_reject_share", "must be in [0, 1]")
        _check(self.extra_columns in EXTRA_COLUMNS, "ingest.extra_columns",
               f"must be one of {EXTRA_COLUMNS}")


@dataclass(frozen=True)
class FeaturesConfig:
    intensity_bins: int = 5
    stable_cv: float = 0.3
    trend_months: int = 3
    trend_band: float = 0.10
    renewal_days: int = 90
    business_hours: tuple[int, ...] = (9, 17)
    constrained_ratio: float = 0.9
    wasteful_ratio: float = 0.3
    churn_model: str = "auto"
    churn_bands: tuple[float, ...] = (0.3, 0.6)
    churn_holdout: float = 0.2
    fit_stats: bool = True

    def __post_init__(self) -> None:
        _check(self.intensity_bins == 5, "features.intensity_bins",
               "must be 5 (the labels very_low .. very_high are defined for five bins)")
        _check(self.stable_cv > 0, "features.stable_cv", "must be > 0")
        _check(1 <= self.trend_months <= 12, "features.trend_months", "must be in [1, 12]")
        _check(0 < self.trend_band < 1, "features.trend_band", "must be in (0, 1)")
        _check(self.renewal_days >= 1, "features.renewal_days", "must be >= 1")
        _check(len(self.business_hours) == 2
               and 0 <= self.business_hours[0] < self.business_hours[1] <= 24,
               "features.business_hours", "must be [start, end) hours with 0 <= start < end <= 24")
        _check(0 < self.wasteful_ratio < self.constrained_ratio, "features.wasteful_ratio",
               "must be in (0, features.constrained_ratio)")
        _check(self.churn_model in ("auto", "rule"), "features.churn_model",
               "must be auto (a classifier when the data has a churn label, else the rule) or rule")
        _check(len(self.churn_bands) == 2 and 0 < self.churn_bands[0] < self.churn_bands[1] < 1,
               "features.churn_bands", "must be two increasing probabilities in (0, 1)")
        _check(0 < self.churn_holdout < 0.5, "features.churn_holdout", "must be in (0, 0.5)")


@dataclass(frozen=True)
class InteractionsConfig:
    """Implicit confidence c = 1 + alpha * normalised usage (Hu, Koren, Volinsky 2008), optionally
    times exp(-days / decay_days), and the train/test split."""
    alpha: float = 40.0
    time_decay: bool = False
    decay_days: float = 30.0
    usage_quantile: float = 0.99
    split: str = "leave_one_out"
    cutoff_days: int = 90
    test_share: float = 0.2

    def __post_init__(self) -> None:
        _check(self.alpha >= 0, "interactions.alpha", "must be >= 0")
        _check(self.decay_days > 0, "interactions.decay_days", "must be > 0")
        _check(0 < self.usage_quantile <= 1, "interactions.usage_quantile", "must be in (0, 1]")
        _check(self.split in ("leave_one_out", "temporal", "random"), "interactions.split",
               "must be leave_one_out (latest pair per subscriber), temporal or random")
        _check(self.cutoff_days >= 1, "interactions.cutoff_days", "must be >= 1")
        _check(0 < self.test_share < 1, "interactions.test_share", "must be in (0, 1)")


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
        _check(not self.enabled or bool(self.secret_env or self.secret_file),
               "pseudonymisation.secret_env", "name an environment variable or a secret_file")


@dataclass(frozen=True)
class LightFMConfig:
    loss: str = "warp"
    no_components: int = 32
    learning_rate: float = 0.05
    item_alpha: float = 1e-6
    user_alpha: float = 1e-6
    max_sampled: int = 10
    epochs: int = 30
    k: int = 5
    n: int = 10

    def __post_init__(self) -> None:
        _check(self.loss in ("warp", "bpr", "warp-kos", "logistic"), "train.lightfm.loss",
               "must be one of warp, bpr, warp-kos, logistic")
        _check(self.no_components >= 1, "train.lightfm.no_components", "must be >= 1")
        _check(0 < self.learning_rate < 1, "train.lightfm.learning_rate", "must be in (0, 1)")
        _check(self.item_alpha >= 0 and self.user_alpha >= 0, "train.lightfm.item_alpha/user_alpha",
               "must be >= 0")
        _check(self.max_sampled >= 1, "train.lightfm.max_sampled", "must be >= 1")
        _check(1 <= self.epochs <= 1000, "train.lightfm.epochs", "must be in [1, 1000]")


LIGHTFM_VARIANTS = ("warp", "bpr", "warp-kos", "logistic", "deep")


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """Validation inside each shard: all training pairs of a share of subscribers are held out
    and precision@k on them is measured every `every` epochs; training stops after `patience`
    checks without improvement and the model is refit on all pairs for the best epoch count.
    every = 0 turns it off (all epochs, all pairs)."""
    every: int = 5
    patience: int = 2
    validation_share: float = 0.1
    k: int = 5

    def __post_init__(self) -> None:
        _check(self.every >= 0, "train.early_stopping.every", "must be >= 0 (0 = off)")
        _check(self.patience >= 1, "train.early_stopping.patience", "must be >= 1")
        _check(0 < self.validation_share < 0.5, "train.early_stopping.validation_share",
               "must be in (0, 0.5)")
        _check(self.k >= 1, "train.early_stopping.k", "must be >= 1")


def _deep_preset() -> LightFMConfig:
    return LightFMConfig(no_components=128, learning_rate=0.03, item_alpha=1e-5, user_alpha=1e-5,
                         max_sampled=20, epochs=50)


@dataclass(frozen=True)
class TrainConfig:
    shards: int = 1
    shard_key: str = "subscriber_id"
    models: tuple[str, ...] = ("warp",)
    lightfm: LightFMConfig = field(default_factory=LightFMConfig)
    deep: LightFMConfig = field(default_factory=_deep_preset)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    lightfm_from_tuning: bool = False  # the tuned variant takes the newest tuning best.json

    def __post_init__(self) -> None:
        _check(1 <= self.shards <= 4096, "train.shards", "must be in [1, 4096]")
        _check(self.shard_key in ("subscriber_id", "region", "segment"), "train.shard_key",
               "must be subscriber_id (hash of the id), region or segment")
        _check(len(self.models) > 0 and set(self.models) <= set(LIGHTFM_VARIANTS),
               "train.models", f"must be a non-empty list drawn from {list(LIGHTFM_VARIANTS)}")
        _check(len(set(self.models)) == len(self.models), "train.models", "lists a model twice")

    def variant(self, name: str) -> LightFMConfig:
        """Hyperparameters of one variant: `deep` is its own preset (WARP loss), the others
        share train.lightfm with their own loss."""
        if name == "deep":
            return dataclasses.replace(self.deep, loss="warp")
        return dataclasses.replace(self.lightfm, loss=name)


def variant_model_name(variant: str) -> str:
    """Model name in `metrics` and `offers.model_version`: lightfm_warp, lightfm_warpkos, ..."""
    return "lightfm_" + variant.replace("-", "")


@dataclass(frozen=True)
class EnsembleConfig:
    """Ensembles of the trained LightFM models: `weighted` sums per-model scores normalised per
    subscriber (min-max) with these weights; `rrf` is reciprocal rank fusion, sum 1/(rrf_k+rank)."""
    modes: tuple[str, ...] = ()
    weights: dict[str, float] = field(default_factory=lambda: {
        "lightfm_warp": 1.5, "lightfm_bpr": 1.0, "lightfm_deep": 1.2, "lightfm_warpkos": 0.8})
    rrf_k: int = 60
    tune_weights: bool = False  # search the LightFM members' weights on validation (tune stage)
    weight_grid: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
    max_combinations: int = 500

    def __post_init__(self) -> None:
        _check(set(self.modes) <= {"weighted", "rrf"}, "ensemble.modes",
               "must be a subset of weighted, rrf")
        _check(all(w >= 0 for w in self.weights.values()), "ensemble.weights", "must be >= 0")
        _check(self.rrf_k >= 1, "ensemble.rrf_k", "must be >= 1")
        _check(len(self.weight_grid) >= 2 and all(w >= 0 for w in self.weight_grid)
               and any(w > 0 for w in self.weight_grid), "ensemble.weight_grid",
               "list at least two weights >= 0, one of them > 0")
        _check(1 <= self.max_combinations <= 100_000, "ensemble.max_combinations",
               "must be in [1, 100000]")


@dataclass(frozen=True)
class TuningConfig:
    """Hyperparameter search for one LightFM variant (telcorec/models/lightfm/tuning.py): every trial is a
    Spark task that trains on the first shard's training pairs and is measured by precision@k
    (train.early_stopping.k) on that shard's early-stopping validation subscribers."""
    enabled: bool = False
    model: str = "warp"            # the variant tuned: warp, bpr, warp-kos, logistic or deep
    method: str = "grid"           # grid (every combination) | random (`trials` draws)
    trials: int = 8                # random: number of trials
    seed: int = 42                 # random: the draws
    space: dict[str, tuple[float, ...]] = field(default_factory=lambda: {
        "no_components": (16.0, 32.0, 64.0), "learning_rate": (0.02, 0.05)})
    ranges: dict[str, tuple[float, ...]] = field(default_factory=dict)  # random: [low, high]
    max_grid: int = 256

    def __post_init__(self) -> None:
        _check(self.model in LIGHTFM_VARIANTS, "tuning.model",
               f"must be one of {list(LIGHTFM_VARIANTS)}")
        _check(self.method in ("grid", "random"), "tuning.method", "must be grid or random")
        _check(self.trials >= 1, "tuning.trials", "must be >= 1")
        _check(bool(self.space) or bool(self.ranges), "tuning.space", "name at least one knob")
        _check(not self.ranges or self.method == "random", "tuning.ranges",
               "ranges are drawn by method: random; list values in tuning.space for a grid")
        _check(not set(self.space) & set(self.ranges), "tuning.ranges",
               "a knob is either listed in space or drawn from ranges, not both")
        for knob, values in {**self.space, **self.ranges}.items():
            key = f"tuning.{'space' if knob in self.space else 'ranges'}.{knob}"
            _check(knob in LIGHTFM_KNOBS, key, f"unknown knob; use one of {list(LIGHTFM_KNOBS)}")
            _check(len(values) >= 1, key, "list at least one value")
            if LIGHTFM_KNOBS[knob] is int:
                _check(all(float(v).is_integer() for v in values), key, "must be integers")
            for value in values:
                try:  # every value must be one train.lightfm itself would accept
                    LightFMConfig(**{knob: LIGHTFM_KNOBS[knob](value)})
                except ConfigError as exc:
                    raise ConfigError(f"config key '{key}': {value:g} is out of range ({exc})")
        for knob, bounds in self.ranges.items():
            _check(len(bounds) == 2 and bounds[0] < bounds[1], f"tuning.ranges.{knob}",
                   "must be [low, high] with low < high")
        _check(self.method == "random" or self.grid_size() <= self.max_grid, "tuning.space",
               f"the grid has more than tuning.max_grid ({self.max_grid}) combinations; use "
               "method: random with trials: N, or fewer values")

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.space.values())


@dataclass(frozen=True)
class NCFConfig:
    """Neural Collaborative Filtering (He et al., WWW 2017), trained through Petastorm and
    TorchDistributor. Off in the quick demo; conf/full.yaml turns it on."""
    enabled: bool = False
    models: tuple[str, ...] = ("gmf", "mlp", "neumf")
    embedding_dim: int = 32
    mlp_layers: tuple[int, ...] = (64, 32, 16, 8)
    negatives: int = 4
    resample_negatives: bool = True
    epochs: int = 10
    batch_size: int = 1024
    learning_rate: float = 0.004
    processes: int = 2
    pretrain: bool = True
    alpha: float = 0.5
    use_features: bool = True
    subscriber_ids: bool = False
    eval_negatives: int = 99
    validation_subscribers: int = 600

    def __post_init__(self) -> None:
        _check(len(self.models) > 0 and set(self.models) <= {"gmf", "mlp", "neumf"},
               "ncf.models", "must be a non-empty subset of gmf, mlp, neumf")
        _check(self.embedding_dim >= 1, "ncf.embedding_dim", "must be >= 1")
        _check(len(self.mlp_layers) >= 1 and all(x >= 1 for x in self.mlp_layers),
               "ncf.mlp_layers", "must be a non-empty list of positive sizes")
        _check(self.negatives >= 1, "ncf.negatives", "must be >= 1")
        _check(1 <= self.epochs <= 1000, "ncf.epochs", "must be in [1, 1000]")
        _check(self.batch_size >= 1, "ncf.batch_size", "must be >= 1")
        _check(0 < self.learning_rate < 1, "ncf.learning_rate", "must be in (0, 1)")
        _check(1 <= self.processes <= 64, "ncf.processes", "must be in [1, 64]")
        _check(0 <= self.alpha <= 1, "ncf.alpha", "must be in [0, 1]")
        _check(self.eval_negatives >= 1, "ncf.eval_negatives", "must be >= 1")
        _check(self.mlp_layers[0] % 2 == 0, "ncf.mlp_layers",
               "the first size must be even (the subscriber and offer embeddings, each half of "
               "it, are concatenated)")
        _check(self.validation_subscribers >= 0, "ncf.validation_subscribers", "must be >= 0")
        _check(self.use_features or self.subscriber_ids, "ncf.subscriber_ids",
               "must be true when ncf.use_features is false (a subscriber needs IDs or features)")
        _check(self.batch_size >= self.processes, "ncf.batch_size",
               "must be >= ncf.processes (it is split evenly across the processes)")


@dataclass(frozen=True)
class ScoringConfig:
    k: int = 10
    model: str = "lightfm_warp"

    def __post_init__(self) -> None:
        _check(1 <= self.k <= 100, "scoring.k", "must be in [1, 100]")


@dataclass(frozen=True)
class ContentWeights:
    """The content rule score's parts (telcorec/offers/cold_start.py); they sum to 1."""
    segment: float = 0.4
    data: float = 0.3
    price: float = 0.3

    def __post_init__(self) -> None:
        parts = (self.segment, self.data, self.price)
        _check(all(p >= 0 for p in parts) and abs(sum(parts) - 1) < 1e-9,
               "cold_start.content", "segment, data and price must be >= 0 and sum to 1")


def _segment_plan_types() -> dict[str, tuple[str, ...]]:
    # the plan types each generated segment buys; an operator maps its own segments in YAML
    return {"youth": ("residential",), "family": ("residential",),
            "professional": ("premium", "residential"), "business": ("business",),
            "senior": ("residential",)}


@dataclass(frozen=True)
class ColdStartConfig:
    """Routing by tenure: content rules only up to new_days, a blend up to warm_days, then the
    model alone (telcorec/offers/cold_start.py)."""
    enabled: bool = True
    new_days: int = 7
    warm_days: int = 30
    warm_content_weight: float = 0.7
    data_headroom: float = 1.2
    content: ContentWeights = field(default_factory=ContentWeights)
    segment_plan_types: dict[str, tuple[str, ...]] = field(default_factory=_segment_plan_types)

    def __post_init__(self) -> None:
        _check(0 <= self.new_days <= self.warm_days, "cold_start.new_days",
               "must be >= 0 and <= cold_start.warm_days")
        _check(0 <= self.warm_content_weight <= 1, "cold_start.warm_content_weight",
               "must be in [0, 1]")
        _check(self.data_headroom > 0, "cold_start.data_headroom", "must be > 0")


@dataclass(frozen=True)
class GateConfig:
    """Checks before `offers` is touched; a failing check marks the run `rejected`."""
    metric: str = "precision"
    k: int = 5
    max_drop_vs_published: float = 0.10
    min_lift_over_popularity: float = 0.0
    min_row_share: float = 0.9
    min_catalogue_coverage: float = 0.05

    def __post_init__(self) -> None:
        _check(self.metric in ("precision", "recall"), "gate.metric", "must be precision or recall")
        _check(self.k >= 1, "gate.k", "must be >= 1")
        _check(0 <= self.max_drop_vs_published < 1, "gate.max_drop_vs_published",
               "must be in [0, 1)")
        _check(self.min_lift_over_popularity >= -1, "gate.min_lift_over_popularity",
               "must be >= -1")
        _check(0 <= self.min_row_share <= 1, "gate.min_row_share", "must be in [0, 1]")
        _check(0 <= self.min_catalogue_coverage <= 1, "gate.min_catalogue_coverage",
               "must be in [0, 1]")


@dataclass(frozen=True)
class EvaluationConfig:
    """`ks`: the cut-offs of the full-ranking metrics. `sampled_negatives`: N of the
    sampled-candidates protocol (`sampled{N}` rows for every model and baseline; 0 = off)."""
    ks: tuple[int, ...] = (5, 10)
    sampled_negatives: int = 99

    def __post_init__(self) -> None:
        _check(len(self.ks) > 0 and all(k >= 1 for k in self.ks), "evaluation.ks",
               "must be a non-empty list of positive integers")
        _check(self.sampled_negatives >= 0, "evaluation.sampled_negatives",
               "must be >= 0 (0 turns the sampled-candidates protocol off)")


@dataclass(frozen=True)
class StorageConfig:
    writer: str = "auto"

    def __post_init__(self) -> None:
        _check(self.writer in ("auto", "delta-rs", "spark"), "storage.writer",
               "must be auto (Spark's Delta source when the session has it, else delta-rs), "
               "delta-rs or spark")


# ---- offers: business rules, re-ranking, reasons, experiment (issue 6) ------------------------

def _string_columns(schema) -> list[str]:
    return sorted(f.name for f in schema.fields if f.dataType.typeName() == "string")


@dataclass(frozen=True)
class RuleCondition:
    """Attribute values a subscriber x offer pair must have: each named column holds one of its
    listed values (strings as in subscriber_features / offer_features; NULL matches nothing)."""
    subscriber: dict[str, tuple[str, ...]] = field(default_factory=dict)
    offer: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def check(self, key: str) -> None:
        for side, columns, schema in (("subscriber", self.subscriber, schemas.SUBSCRIBER_FEATURES),
                                      ("offer", self.offer, schemas.OFFER_FEATURES)):
            allowed = _string_columns(schema)
            for column, values in columns.items():
                _check(column in allowed, f"{key}.{side}.{column}",
                       f"not a string column of {side} features; use one of {allowed}")
                _check(len(values) > 0, f"{key}.{side}.{column}", "list at least one value")


@dataclass(frozen=True)
class EligibilityRule:
    """A pair that matches `when` and fails `require` is removed (an empty `when` matches all)."""
    name: str
    description: str = ""
    when: RuleCondition = field(default_factory=RuleCondition)
    require: RuleCondition = field(default_factory=RuleCondition)

    def __post_init__(self) -> None:
        key = f"rules.eligibility.{self.name}"
        _check(bool(_RULE_NAME.match(self.name)), key,
               "the name must be lower-case letters, digits and _ (it is a key in `runs` counts)")
        _check(bool(self.require.subscriber or self.require.offer), f"{key}.require",
               "name at least one subscriber or offer column the pair must satisfy")
        self.when.check(f"{key}.when")
        self.require.check(f"{key}.require")


_RULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# segment names are data values (compared, never put into SQL text); quotes, ; and = are refused
# all the same so that a name that looks like an injection fails at start-up
_SEGMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _./+-]{0,63}$")
_SEGMENT_RULE = "a segment name is letters, digits, space and _ . / + - (at most 64)"


def _default_eligibility() -> tuple[EligibilityRule, ...]:
    cond = RuleCondition
    return (
        EligibilityRule("prepaid_offers_for_prepaid", "prepaid subscribers get prepaid plans only",
                        when=cond(subscriber={"payment_type": ("prepaid",)}),
                        require=cond(offer={"payment_type": ("prepaid",)})),
        EligibilityRule("business_plans_for_business", "business plans go to business customers",
                        when=cond(offer={"plan_type": ("business",)}),
                        require=cond(subscriber={"segment": ("business",)})),
        EligibilityRule("family_bundles_for_families", "family bundles go to households of 3+",
                        when=cond(offer={"family": ("yes",)}),
                        require=cond(subscriber={"household": ("family",)})),
    )


@dataclass(frozen=True)
class FatigueConfig:
    """An offer published to a subscriber at rank <= `ranks` in the `days` days before the run
    date is not offered to them again (days = 0: off)."""
    days: int = 7
    ranks: int = 1

    def __post_init__(self) -> None:
        _check(0 <= self.days <= 366, "rules.fatigue.days", "must be in [0, 366] (0 = off)")
        _check(self.ranks >= 1, "rules.fatigue.ranks", "must be >= 1")


@dataclass(frozen=True)
class CampaignCapConfig:
    """At most max_share of the scored subscribers (and, when > 0, at most max_subscribers)
    get any one offer; `spare` candidates beyond K per subscriber replace capped offers."""
    max_share: float = 0.5
    max_subscribers: int = 0
    spare: int = 10

    def __post_init__(self) -> None:
        _check(0 < self.max_share <= 1, "rules.campaign_cap.max_share",
               "must be in (0, 1] (1 = no share cap)")
        _check(self.max_subscribers >= 0, "rules.campaign_cap.max_subscribers",
               "must be >= 0 (0 = no absolute cap)")
        _check(0 <= self.spare <= 100, "rules.campaign_cap.spare", "must be in [0, 100]")

    @property
    def enabled(self) -> bool:
        return self.max_share < 1 or self.max_subscribers > 0


@dataclass(frozen=True)
class RulesConfig:
    eligibility: tuple[EligibilityRule, ...] = field(default_factory=_default_eligibility)
    fatigue: FatigueConfig = field(default_factory=FatigueConfig)
    campaign_cap: CampaignCapConfig = field(default_factory=CampaignCapConfig)

    def __post_init__(self) -> None:
        names = [r.name for r in self.eligibility]
        _check(len(set(names)) == len(names), "rules.eligibility", "two rules share a name")
        reserved = {"consent", "current_plan", "fatigue", "campaign_cap"}
        _check(not reserved & set(names), "rules.eligibility",
               f"rule names {sorted(reserved)} are taken by the built-in rules")


@dataclass(frozen=True)
class RerankWeights:
    """final = relevance x model relevance + revenue x price uplift + retention x churn risk x
    retention value + diversity x (1 - similarity to offers ranked above); they sum to 1."""
    relevance: float = 0.4
    revenue: float = 0.3
    retention: float = 0.2
    diversity: float = 0.1

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.relevance, self.revenue, self.retention, self.diversity)

    def check(self, key: str) -> None:
        _check(all(w >= 0 for w in self.as_tuple()), key, "weights must be >= 0")
        _check(abs(sum(self.as_tuple()) - 1) < 1e-6, key,
               f"weights must sum to 1 (they sum to {sum(self.as_tuple()):g}), so that final "
               "scores compare across segments")


@dataclass(frozen=True)
class RerankConfig:
    weights: RerankWeights = field(default_factory=RerankWeights)
    segments: dict[str, RerankWeights] = field(default_factory=dict)  # segment -> weights

    def __post_init__(self) -> None:
        self.weights.check("rerank.weights")
        for segment, weights in self.segments.items():
            _check(bool(_SEGMENT_NAME.match(segment)), f"rerank.segments.{segment}", _SEGMENT_RULE)
            weights.check(f"rerank.segments.{segment}")


@dataclass(frozen=True)
class ReasonsConfig:
    top_pairs: int = 2   # subscriber-feature x offer-feature pairs named per offer row

    def __post_init__(self) -> None:
        _check(0 <= self.top_pairs <= 10, "reasons.top_pairs", "must be in [0, 10]")


@dataclass(frozen=True)
class ExperimentConfig:
    """Arms by hash of salt and subscriber id; the `control` arm gets the baseline's offers."""
    salt: str = "telcorec-offers-1"
    arms: dict[str, float] = field(default_factory=lambda: {"model": 0.9, "control": 0.1})
    control: str = "control"

    def __post_init__(self) -> None:
        _check(bool(self.salt), "experiment.salt", "must be a non-empty string")
        _check(len(self.arms) > 0 and all(_RULE_NAME.match(a) for a in self.arms),
               "experiment.arms", "name at least one arm, in lower-case letters, digits and _")
        _check(all(s >= 0 for s in self.arms.values())
               and abs(sum(self.arms.values()) - 1) < 1e-9, "experiment.arms",
               f"shares must be >= 0 and sum to 1 (they sum to {sum(self.arms.values()):g})")
        _check(self.control == "" or self.control in self.arms, "experiment.control",
               f"must be one of the arms {sorted(self.arms)} or \"\" (no control arm)")
        _check(any(a != self.control for a in self.arms), "experiment.arms",
               "at least one arm besides the control arm must get the model")


@dataclass(frozen=True)
class Config:
    warehouse: str = "warehouse"
    seed: int = 42
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    inputs: InputsConfig = field(default_factory=InputsConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    interactions: InteractionsConfig = field(default_factory=InteractionsConfig)
    pseudonymisation: PseudonymisationConfig = field(default_factory=PseudonymisationConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    ncf: NCFConfig = field(default_factory=NCFConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    cold_start: ColdStartConfig = field(default_factory=ColdStartConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    rerank: RerankConfig = field(default_factory=RerankConfig)
    reasons: ReasonsConfig = field(default_factory=ReasonsConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)

    def __post_init__(self) -> None:
        _check(bool(self.warehouse), "warehouse", "must be a non-empty path")
        paths.check_config_paths(self)  # the path rule lives in telcorec/core/paths.py
        _check(self.scoring.k >= max(self.evaluation.ks), "scoring.k",
               f"must be >= the largest evaluation.ks ({max(self.evaluation.ks)})")
        publishable = {variant_model_name(v) for v in self.train.models}
        publishable |= {f"ensemble_{m}" for m in self.ensemble.modes}
        if self.ncf.enabled:
            publishable |= {f"ncf_{m}" for m in self.ncf.models}
        _check(self.scoring.model in publishable, "scoring.model",
               f"must be a model this config trains: one of {sorted(publishable)}")
        members = set(self.ensemble.weights) & publishable
        _check(not self.ensemble.modes or len(members) >= 2, "ensemble.weights",
               "an ensemble needs weights for at least two trained models (train.models, or "
               "ncf.models when ncf.enabled)")
        lightfm_members = members & {variant_model_name(v) for v in self.train.models}
        _check(not self.ensemble.tune_weights or (bool(self.ensemble.modes)
                                                  and len(lightfm_members) >= 2),
               "ensemble.tune_weights", "needs ensemble.modes and weights for at least two "
               "trained LightFM models (the members whose weights are searched)")
        _check(not self.tuning.enabled or self.tuning.model in self.train.models,
               "tuning.model", f"must be one of train.models {list(self.train.models)}")
        _check(self.gate.k in self.evaluation.ks, "gate.k",
               f"must be one of evaluation.ks {list(self.evaluation.ks)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """A short stable hash of the effective configuration (recorded with every run)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def with_overrides(self, **dotted: Any) -> "Config":
        """Return a copy with `section.key=value` overrides applied and validated."""
        data = self.to_dict()
        for key, value in dotted.items():
            node = data
            *parents, leaf = key.split(".")
            for part in parents:
                node = node[part]
            _check(leaf in node, key, "no such key")
            node[leaf] = value
        return from_dict(data)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        _check(isinstance(value, dict), key, f"must be a mapping, got {type(value).__name__}")
        return _build(tp, value, key)
    if origin is dict:
        _check(isinstance(value, dict), key, "must be a mapping")
        _, value_tp = typing.get_args(tp)
        return {str(k): _coerce(value_tp, v, f"{key}.{k}") for k, v in value.items()}
    if origin is tuple:
        _check(isinstance(value, (list, tuple)), key, "must be a list")
        (item_tp, _) = typing.get_args(tp)
        return tuple(_coerce(item_tp, v, f"{key}[]") for v in value)
    if tp is float:
        _check(isinstance(value, (int, float)) and not isinstance(value, bool), key,
               f"must be a number, got {value!r}")
        return float(value)
    if tp is int:
        _check(isinstance(value, int) and not isinstance(value, bool), key,
               f"must be an integer, got {value!r}")
        return value
    if tp is str:
        _check(isinstance(value, str), key, f"must be a string, got {value!r}")
        return value
    if tp is bool:
        _check(isinstance(value, bool), key, f"must be true or false, got {value!r}")
        return value
    if isinstance(tp, types.UnionType):
        return value
    raise ConfigError(f"config key '{key}': unsupported type {tp}")


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            full = f"{prefix}.{key}" if prefix else key
            raise ConfigError(f"config key '{full}' is unknown; allowed here: {sorted(names)}")
    kwargs = {k: _coerce(hints[k], v, f"{prefix}.{k}" if prefix else k) for k, v in data.items()}
    return cls(**kwargs)


def from_dict(data: dict[str, Any]) -> Config:
    return _build(Config, data)


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass --conf with a file from conf/")
    _check(path.resolve() not in seen, "extends", f"cycle through {path}")
    data = yaml.safe_load(path.read_text()) or {}
    _check(isinstance(data, dict), str(path), "the file must hold a mapping")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    return _merge(_read_yaml(path.parent / parent, seen + (path.resolve(),)), data)


def load(path: str | Path) -> Config:
    """Load and validate a YAML config (following `extends:`)."""
    return from_dict(_read_yaml(Path(path)))
