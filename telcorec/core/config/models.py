"""Settings of the models: the LightFM variants and their training, ensembles, tuning and NCF."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from telcorec.core.columns import LIGHTFM_KNOBS
from telcorec.core.config.loader import check
from telcorec.core.exceptions import ConfigError


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
        check(self.loss in ("warp", "bpr", "warp-kos", "logistic"), "train.lightfm.loss",
               "must be one of warp, bpr, warp-kos, logistic")
        check(self.no_components >= 1, "train.lightfm.no_components", "must be >= 1")
        check(0 < self.learning_rate < 1, "train.lightfm.learning_rate", "must be in (0, 1)")
        check(self.item_alpha >= 0 and self.user_alpha >= 0, "train.lightfm.item_alpha/user_alpha",
               "must be >= 0")
        check(self.max_sampled >= 1, "train.lightfm.max_sampled", "must be >= 1")
        check(1 <= self.epochs <= 1000, "train.lightfm.epochs", "must be in [1, 1000]")


LIGHTFM_VARIANTS = ("warp", "bpr", "warp-kos", "logistic", "deep")
REPRESENTATIONS = ("features", "features+history")


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
        check(self.every >= 0, "train.early_stopping.every", "must be >= 0 (0 = off)")
        check(self.patience >= 1, "train.early_stopping.patience", "must be >= 1")
        check(0 < self.validation_share < 0.5, "train.early_stopping.validation_share",
               "must be in (0, 0.5)")
        check(self.k >= 1, "train.early_stopping.k", "must be >= 1")


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
    # features: a subscriber is their feature tokens; features+history: also the offers they
    # hold (telcorec/models/lightfm/history.py), each weighing history_weight / sqrt(n)
    representation: str = "features+history"
    history_weight: float = 1.0
    # the simulated campaign (telcorec/stages/simulate.py) retrains every this many days; on
    # the days between, score and evaluate use the newest model trained before (load_scorer)
    every_days: int = 1

    def __post_init__(self) -> None:
        check(1 <= self.shards <= 4096, "train.shards", "must be in [1, 4096]")
        check(1 <= self.every_days <= 366, "train.every_days", "must be in [1, 366]")
        check(self.shard_key in ("subscriber_id", "region", "segment"), "train.shard_key",
               "must be subscriber_id (hash of the id), region or segment")
        check(len(self.models) > 0 and set(self.models) <= set(LIGHTFM_VARIANTS),
               "train.models", f"must be a non-empty list drawn from {list(LIGHTFM_VARIANTS)}")
        check(len(set(self.models)) == len(self.models), "train.models", "lists a model twice")
        check(self.representation in REPRESENTATIONS, "train.representation",
              f"must be one of {list(REPRESENTATIONS)}")
        check(0 < self.history_weight <= 100, "train.history_weight", "must be in (0, 100]")

    @property
    def history(self) -> float | None:
        """The history tokens' weight, None for the features-only representation."""
        return self.history_weight if self.representation == "features+history" else None

    def variant(self, name: str) -> LightFMConfig:
        """Hyperparameters of one variant: `deep` is its own preset (WARP loss), the others
        share train.lightfm with their own loss."""
        if name == "deep":
            return dataclasses.replace(self.deep, loss="warp")
        return dataclasses.replace(self.lightfm, loss=name)


# ---- the model-name grammar: <family>_<variant without dashes> --------------------------------
# The one place model names are built and parsed (metrics, offers.model_version, directories
# under warehouse/models, scoring.model, ensemble.weights): lightfm_warp, lightfm_warpkos,
# lightfm_deep, ncf_gmf, ncf_neumf, ensemble_rrf, ...
NCF_KINDS = ("gmf", "mlp", "neumf")
ENSEMBLE_MODES = ("weighted", "rrf")
MODEL_FAMILIES = {"lightfm": LIGHTFM_VARIANTS, "ncf": NCF_KINDS, "ensemble": ENSEMBLE_MODES}


def model_name(family: str, variant: str) -> str:
    """The name of one model: `family`_`variant` with the variant's dashes dropped."""
    if variant not in MODEL_FAMILIES.get(family, ()):
        raise ConfigError(f"no model {family!r} {variant!r}: the families and their variants "
                          f"are {MODEL_FAMILIES}")
    return f"{family}_{variant.replace('-', '')}"


def variant_model_name(variant: str) -> str:
    """A LightFM variant's name: lightfm_warp, lightfm_warpkos, ..."""
    return model_name("lightfm", variant)


KNOWN_MODELS = {model_name(f, v): (f, v) for f, variants in MODEL_FAMILIES.items()
                for v in variants}


def parse_model_name(name: str) -> tuple[str, str]:
    """(family, variant) of a model name: ("lightfm", "warp-kos") for lightfm_warpkos."""
    if name not in KNOWN_MODELS:
        raise ConfigError(f"model name {name!r} is unknown; use one of {sorted(KNOWN_MODELS)}")
    return KNOWN_MODELS[name]


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
        check(set(self.modes) <= set(ENSEMBLE_MODES), "ensemble.modes",
               f"must be a subset of {', '.join(ENSEMBLE_MODES)}")
        check(all(w >= 0 for w in self.weights.values()), "ensemble.weights", "must be >= 0")
        check(self.rrf_k >= 1, "ensemble.rrf_k", "must be >= 1")
        check(len(self.weight_grid) >= 2 and all(w >= 0 for w in self.weight_grid)
               and any(w > 0 for w in self.weight_grid), "ensemble.weight_grid",
               "list at least two weights >= 0, one of them > 0")
        check(1 <= self.max_combinations <= 100_000, "ensemble.max_combinations",
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
        check(self.model in LIGHTFM_VARIANTS, "tuning.model",
               f"must be one of {list(LIGHTFM_VARIANTS)}")
        check(self.method in ("grid", "random"), "tuning.method", "must be grid or random")
        check(self.trials >= 1, "tuning.trials", "must be >= 1")
        check(bool(self.space) or bool(self.ranges), "tuning.space", "name at least one knob")
        check(not self.ranges or self.method == "random", "tuning.ranges",
               "ranges are drawn by method: random; list values in tuning.space for a grid")
        check(not set(self.space) & set(self.ranges), "tuning.ranges",
               "a knob is either listed in space or drawn from ranges, not both")
        for knob, values in {**self.space, **self.ranges}.items():
            key = f"tuning.{'space' if knob in self.space else 'ranges'}.{knob}"
            check(knob in LIGHTFM_KNOBS, key, f"unknown knob; use one of {list(LIGHTFM_KNOBS)}")
            check(len(values) >= 1, key, "list at least one value")
            if LIGHTFM_KNOBS[knob] is int:
                check(all(float(v).is_integer() for v in values), key, "must be integers")
            for value in values:
                try:  # every value must be one train.lightfm itself would accept
                    LightFMConfig(**{knob: LIGHTFM_KNOBS[knob](value)})
                except ConfigError as exc:
                    raise ConfigError(f"config key '{key}': {value:g} is out of range ({exc})")
        for knob, bounds in self.ranges.items():
            check(len(bounds) == 2 and bounds[0] < bounds[1], f"tuning.ranges.{knob}",
                   "must be [low, high] with low < high")
        check(self.method == "random" or self.grid_size() <= self.max_grid, "tuning.space",
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
        check(len(self.models) > 0 and set(self.models) <= set(NCF_KINDS),
               "ncf.models", f"must be a non-empty subset of {', '.join(NCF_KINDS)}")
        check(self.embedding_dim >= 1, "ncf.embedding_dim", "must be >= 1")
        check(len(self.mlp_layers) >= 1 and all(x >= 1 for x in self.mlp_layers),
               "ncf.mlp_layers", "must be a non-empty list of positive sizes")
        check(self.negatives >= 1, "ncf.negatives", "must be >= 1")
        check(1 <= self.epochs <= 1000, "ncf.epochs", "must be in [1, 1000]")
        check(self.batch_size >= 1, "ncf.batch_size", "must be >= 1")
        check(0 < self.learning_rate < 1, "ncf.learning_rate", "must be in (0, 1)")
        check(1 <= self.processes <= 64, "ncf.processes", "must be in [1, 64]")
        check(0 <= self.alpha <= 1, "ncf.alpha", "must be in [0, 1]")
        check(self.eval_negatives >= 1, "ncf.eval_negatives", "must be >= 1")
        check(self.mlp_layers[0] % 2 == 0, "ncf.mlp_layers",
               "the first size must be even (the subscriber and offer embeddings, each half of "
               "it, are concatenated)")
        check(self.validation_subscribers >= 0, "ncf.validation_subscribers", "must be >= 0")
        check(self.use_features or self.subscriber_ids, "ncf.subscriber_ids",
               "must be true when ncf.use_features is false (a subscriber needs IDs or features)")
        check(self.batch_size >= self.processes, "ncf.batch_size",
               "must be >= ncf.processes (it is split evenly across the processes)")


def model_names(train: TrainConfig, ensemble: EnsembleConfig, ncf: NCFConfig) -> list[str]:
    """Every model these settings train or combine, in a stable order: the LightFM variants,
    the ensembles, then the NCF models (when ncf.enabled)."""
    return ([variant_model_name(v) for v in train.models]
            + [model_name("ensemble", m) for m in ensemble.modes]
            + ([model_name("ncf", k) for k in ncf.models] if ncf.enabled else []))
