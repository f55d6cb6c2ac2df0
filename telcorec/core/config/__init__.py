"""Typed configuration: YAML in conf/ loaded once into frozen dataclasses (`load`).

The root `Config` holds one section per area; each area's dataclasses live in a module of this
package (sources, features, models, offers, evaluation), the generic YAML machinery in loader.py,
and every default value an operator may change is written out in conf/base.yaml."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telcorec.core import paths
from telcorec.core.config.evaluation import EvaluationConfig, GateConfig
from telcorec.core.config.features import FeaturesConfig, InteractionsConfig
from telcorec.core.config.loader import build, check, read_yaml
from telcorec.core.config.models import (
    LIGHTFM_VARIANTS,
    NCF_KINDS,
    EarlyStoppingConfig,
    EnsembleConfig,
    LightFMConfig,
    NCFConfig,
    TrainConfig,
    TuningConfig,
    model_name,
    model_names,
    parse_model_name,
    variant_model_name,
)
from telcorec.core.config.monitoring import DriftConfig, RunsConfig, SimulationConfig
from telcorec.core.config.offers import (
    CampaignCapConfig,
    ColdStartConfig,
    ContentWeights,
    EligibilityRule,
    ExperimentConfig,
    FatigueConfig,
    ReasonsConfig,
    RerankConfig,
    RerankWeights,
    RuleCondition,
    RulesConfig,
    ScoringConfig,
)
from telcorec.core.config.sources import (
    EXTRA_COLUMNS,
    INPUT_SOURCES,
    SOURCE_FORMATS,
    CopenhagenConfig,
    CsvConfig,
    GeneratorConfig,
    IbmTelcoConfig,
    IngestConfig,
    InputsConfig,
    InteractionsSourceConfig,
    OperatorSourceConfig,
    PseudonymisationConfig,
    StorageConfig,
    TableSourceConfig,
)

__all__ = [
    "CampaignCapConfig", "ColdStartConfig", "Config", "ContentWeights", "CopenhagenConfig",
    "CsvConfig", "DriftConfig", "EXTRA_COLUMNS", "EarlyStoppingConfig", "EligibilityRule", "EnsembleConfig",
    "EvaluationConfig", "ExperimentConfig", "FatigueConfig", "FeaturesConfig", "GateConfig",
    "GeneratorConfig", "INPUT_SOURCES", "IbmTelcoConfig", "IngestConfig", "InputsConfig",
    "InteractionsConfig", "InteractionsSourceConfig", "LIGHTFM_VARIANTS", "LightFMConfig", "NCF_KINDS",
    "NCFConfig", "OperatorSourceConfig", "PseudonymisationConfig", "ReasonsConfig",
    "RerankConfig", "RerankWeights", "RuleCondition", "RulesConfig", "RunsConfig", "SOURCE_FORMATS",
    "ScoringConfig", "SimulationConfig", "StorageConfig", "TableSourceConfig", "TrainConfig", "TuningConfig",
    "from_dict", "load", "model_name", "model_names", "parse_model_name", "variant_model_name",
]



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
    drift: DriftConfig = field(default_factory=DriftConfig)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    runs: RunsConfig = field(default_factory=RunsConfig)

    def __post_init__(self) -> None:
        check(bool(self.warehouse), "warehouse", "must be a non-empty path")
        paths.check_config_paths(self)  # the path rule lives in telcorec/core/paths.py
        check(self.scoring.k >= max(self.evaluation.ks), "scoring.k",
               f"must be >= the largest evaluation.ks ({max(self.evaluation.ks)})")
        publishable = set(model_names(self.train, self.ensemble, self.ncf))
        check(self.scoring.model in publishable, "scoring.model",
               f"must be a model this config trains: one of {sorted(publishable)}")
        members = set(self.ensemble.weights) & publishable
        check(not self.ensemble.modes or len(members) >= 2, "ensemble.weights",
               "an ensemble needs weights for at least two trained models (train.models, or "
               "ncf.models when ncf.enabled)")
        lightfm_members = members & {variant_model_name(v) for v in self.train.models}
        check(not self.ensemble.tune_weights or (bool(self.ensemble.modes)
                                                  and len(lightfm_members) >= 2),
               "ensemble.tune_weights", "needs ensemble.modes and weights for at least two "
               "trained LightFM models (the members whose weights are searched)")
        check(not self.tuning.enabled or self.tuning.model in self.train.models,
               "tuning.model", f"must be one of train.models {list(self.train.models)}")
        check(self.gate.k in self.evaluation.ks, "gate.k",
               f"must be one of evaluation.ks {list(self.evaluation.ks)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """A short stable hash of the effective configuration (recorded with every run). The
        `runs` section (how attempts are watched) is left out: it changes no result."""
        settings = {k: v for k, v in self.to_dict().items() if k != "runs"}
        blob = json.dumps(settings, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def with_overrides(self, **dotted: Any) -> "Config":
        """Return a copy with `section.key=value` overrides applied and validated."""
        data = self.to_dict()
        for key, value in dotted.items():
            node = data
            *parents, leaf = key.split(".")
            for part in parents:
                node = node[part]
            check(leaf in node, key, "no such key")
            node[leaf] = value
        return from_dict(data)


def from_dict(data: dict[str, Any]) -> Config:
    return build(Config, data)


def load(path: str | Path) -> Config:
    """Load and validate a YAML config (following `extends:`)."""
    return from_dict(read_yaml(Path(path)))
