import pytest

from telcorec import config
from telcorec.exceptions import ConfigError


def test_local_config_loads_with_base_defaults():
    cfg = config.load("conf/local.yaml")
    assert cfg.train.lightfm.loss == "warp"
    assert cfg.scoring.k == 10
    assert cfg.inputs.source == "generated"


def test_cluster_example_is_valid():
    cfg = config.load("conf/cluster.yaml")
    assert cfg.inputs.source == "tables"
    assert cfg.train.shards == 16


@pytest.mark.parametrize("data, message", [
    ({"train": {"lightfm": {"losss": "warp"}}}, "train.lightfm.losss' is unknown"),
    ({"scoring": {"k": "ten"}}, "scoring.k': must be an integer"),
    ({"train": {"lightfm": {"loss": "hinge"}}}, "train.lightfm.loss"),
    ({"generator": {"offers": 10}}, "generator.offers"),
    ({"scoring": {"k": 3}}, "scoring.k': must be >= the largest evaluation.ks"),
    ({"seed": True}, "seed': must be an integer"),
])
def test_bad_values_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("'", "'")):
        config.from_dict(data)


def test_extends_merges_child_over_parent(tmp_path):
    (tmp_path / "parent.yaml").write_text("seed: 1\nscoring:\n  k: 12\n")
    (tmp_path / "child.yaml").write_text("extends: parent.yaml\nscoring:\n  k: 20\n")
    cfg = config.load(tmp_path / "child.yaml")
    assert (cfg.seed, cfg.scoring.k) == (1, 20)


def test_overrides_are_validated():
    cfg = config.from_dict({})
    assert cfg.with_overrides(**{"generator.subscribers": 500}).generator.subscribers == 500
    with pytest.raises(ConfigError, match="generator.subscribers"):
        cfg.with_overrides(**{"generator.subscribers": 1})


def test_fingerprint_changes_with_config():
    a, b = config.from_dict({}), config.from_dict({"seed": 7})
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == config.from_dict({}).fingerprint()
