"""The model-name grammar (telcorec/core/config/models.py) and the registry that maps a name to
its loader (telcorec/models/scoring.py)."""
from __future__ import annotations

import datetime as dt

import pytest

from telcorec.core.config import Config, model_name, model_names, parse_model_name
from telcorec.core.config.models import KNOWN_MODELS, MODEL_FAMILIES
from telcorec.core.exceptions import ConfigError
from telcorec.models import scoring


def test_every_name_parses_back_to_its_family_and_variant():
    expected = {f"{family}_{variant.replace('-', '')}": (family, variant)
                for family, variants in MODEL_FAMILIES.items() for variant in variants}
    assert KNOWN_MODELS == expected
    for name, (family, variant) in expected.items():
        assert parse_model_name(name) == (family, variant)
        assert model_name(family, variant) == name
    assert parse_model_name("lightfm_warpkos") == ("lightfm", "warp-kos")


@pytest.mark.parametrize("name", ["lightfm_foo", "ncf_", "ensemble", "popularity", "warp"])
def test_a_name_outside_the_grammar_is_refused_naming_the_known_ones(name):
    with pytest.raises(ConfigError, match="lightfm_warp"):
        parse_model_name(name)
    with pytest.raises(ConfigError, match="unknown"):  # before any warehouse is read
        scoring.load_scorer(None, Config(), dt.date(2026, 11, 1), name)
    with pytest.raises(ConfigError):
        scoring.load_saved(name, None)


def test_the_registry_has_one_family_per_family_of_the_grammar():
    assert set(scoring.REGISTRY) == set(MODEL_FAMILIES)
    assert scoring.REGISTRY["ncf"].saved().__name__ == "NCFScorer"


def test_configured_names_follow_the_grammar_in_a_stable_order():
    cfg = Config().with_overrides(**{
        "train.models": ["bpr", "warp-kos", "deep"], "ensemble.modes": ["rrf", "weighted"],
        "ensemble.weights": {"lightfm_bpr": 1.0, "lightfm_deep": 1.0},
        "ncf.enabled": True, "ncf.models": ["neumf", "gmf"], "scoring.model": "ncf_gmf"})
    assert scoring.model_names(cfg) == model_names(cfg.train, cfg.ensemble, cfg.ncf) == [
        "lightfm_bpr", "lightfm_warpkos", "lightfm_deep", "ensemble_rrf", "ensemble_weighted",
        "ncf_neumf", "ncf_gmf"]
    with pytest.raises(ConfigError, match="scoring.model"):
        cfg.with_overrides(**{"scoring.model": "ncf_mlp"})  # not trained by this config
