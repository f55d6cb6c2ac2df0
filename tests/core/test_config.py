import datetime as dt
from pathlib import Path

import pytest

from telcorec.core import config
from telcorec.core.exceptions import ConfigError


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
    ({"generator": {"snapshot_date": "2026-11-23T10:00"}}, "generator.snapshot_date': must be"),
    ({"inputs": {"ibm_telco": {"snapshot_date": "23/11/2026"}}}, "inputs.ibm_telco.snapshot_date"),
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


def test_full_config_trains_every_variant_and_both_ensembles():
    cfg = config.load("conf/full.yaml")
    assert cfg.train.models == ("warp", "bpr", "warp-kos", "logistic", "deep")
    assert cfg.ensemble.modes == ("weighted", "rrf")
    assert cfg.train.variant("deep").no_components == 128
    assert cfg.train.variant("deep").loss == "warp"
    assert cfg.train.variant("bpr").loss == "bpr"


@pytest.mark.parametrize("data, message", [
    ({"scoring": {"model": "lightfm_bpr"}}, "scoring.model"),
    ({"train": {"models": ["warp", "hinge"]}}, "train.models"),
    ({"ensemble": {"modes": ["weighted"]}}, "ensemble.weights"),
    ({"train": {"shard_key": "msisdn"}}, "train.shard_key"),
])
def test_model_selection_is_validated(data, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        config.from_dict(data)


def test_a_config_leaves_out_stages_with_a_reason_that_says_what_to_set():
    from telcorec.stages.pipeline import STAGES, skip_reason
    local, full = config.load("conf/local.yaml"), config.load("conf/full.yaml")
    ibm = config.load("conf/ibm_telco.yaml")
    assert [s for s in STAGES if skip_reason(full, s)] == []
    assert "ncf.enabled" in skip_reason(local, "ncf")
    assert "tuning: {enabled: true}" in skip_reason(local, "tune")
    # the generator never writes over another source's input tables
    assert "inputs.source is 'ibm_telco'" in skip_reason(ibm, "generate")
    assert skip_reason(ibm, "features") is None


def test_a_stage_job_refuses_a_stage_its_config_leaves_out_with_the_reason():
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "jobs/ncf.py", "--conf", "conf/local.yaml"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "error: ncf.enabled is false in this config" in done.stderr


EXAMPLE = Path("conf/interactions_example.yaml").resolve()


def child_of_example(tmp_path, events_columns: str):
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {EXAMPLE}\ninputs:\n  interactions:\n    events:\n"
                     f"      columns: {events_columns}\n")
    return config.load(child)


def test_extends_keeps_an_inherited_column_mapping_the_child_does_not_repeat(tmp_path):
    cfg = child_of_example(tmp_path, "{user: uid, item: iid, timestamp: ts}")
    assert cfg.inputs.interactions.events.columns == {
        "user": "uid", "item": "iid", "timestamp": "ts", "weight": "rating"}
    assert cfg.inputs.interactions.events.path == "ratings.csv"  # a sibling key survives too


def test_extends_null_removes_an_inherited_key(tmp_path):
    cfg = child_of_example(tmp_path, "{weight: null}")
    assert cfg.inputs.interactions.events.columns == {
        "user": "userId", "item": "movieId", "timestamp": "timestamp"}
    # a whole mapping is replaced by nulling the inherited keys it does not want
    cfg = child_of_example(tmp_path, "{user: u, item: i, timestamp: ~, weight: ~}")
    assert cfg.inputs.interactions.events.columns == {"user": "u", "item": "i"}


def test_null_setting_falls_back_to_the_code_default(tmp_path):
    (tmp_path / "parent.yaml").write_text("scoring: {k: 12}\nseed: 3\n")
    (tmp_path / "child.yaml").write_text("extends: parent.yaml\nscoring: {k: null}\n")
    cfg = config.load(tmp_path / "child.yaml")
    assert (cfg.scoring.k, cfg.seed) == (config.ScoringConfig().k, 3)
    (tmp_path / "alone.yaml").write_text("seed: ~\n")  # no parent: null means "not set" too
    assert config.load(tmp_path / "alone.yaml").seed == config.Config().seed


def test_unweighted_events_weigh_one_each(spark, tmp_path):
    from telcorec.core.columns import Col
    from telcorec.sources import interactions

    cfg = child_of_example(tmp_path, "{weight: null}").inputs.interactions
    raw = spark.createDataFrame([("u1", "m1", "1700000000", "4.5"),
                                 ("u1", "m2", "1700000100", "0.5")],
                                ["userId", "movieId", "timestamp", "rating"])
    rows = interactions.events(raw, cfg, dt.date(2026, 11, 23)).collect()
    assert sorted((r[Col.OFFER_ID], r[Col.USAGE]) for r in rows) == [("m1", 1.0), ("m2", 1.0)]
    weighted = config.load(EXAMPLE).inputs.interactions
    rows = interactions.events(raw, weighted, dt.date(2026, 11, 23)).collect()
    assert sorted((r[Col.OFFER_ID], r[Col.USAGE]) for r in rows) == [("m1", 4.5), ("m2", 0.5)]
