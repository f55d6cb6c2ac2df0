"""A/B arms: the documented hash, stable across runs and partitionings, close to the shares."""
import hashlib

import pytest
from pyspark.sql import functions as F

from telcorec.core import config
from telcorec.core.columns import Col
from telcorec.core.config import ExperimentConfig
from telcorec.core.exceptions import ConfigError
from telcorec.offers import experiments


def reference_arm(subscriber_id: str, cfg: ExperimentConfig) -> str:
    """The README's recipe, in plain Python."""
    u = int(hashlib.sha256(f"{cfg.salt}:{subscriber_id}".encode()).hexdigest()[:8], 16) / 2 ** 32
    edge = 0.0
    for name in sorted(cfg.arms):
        edge += cfg.arms[name]
        if u < edge and cfg.arms[name] > 0:
            return name
    return [n for n in sorted(cfg.arms) if cfg.arms[n] > 0][-1]


def assigned(spark, ids, cfg, partitions=2):
    df = spark.createDataFrame([(i,) for i in ids], f"{Col.SUBSCRIBER_ID} string")
    rows = experiments.with_arm(df.repartition(partitions), cfg).collect()
    return {r[Col.SUBSCRIBER_ID]: r[Col.ARM] for r in rows}


def test_arms_follow_the_documented_hash(spark):
    cfg = ExperimentConfig(salt="s1", arms={"model": 0.5, "control": 0.2, "rerank_off": 0.3})
    ids = [f"SUB{i:05d}" for i in range(300)]
    assert assigned(spark, ids, cfg) == {i: reference_arm(i, cfg) for i in ids}
    # slices by sorted name: control [0, .2), model [.2, .7), rerank_off [.7, 1)
    assert [reference_arm(i, cfg) for i in ("SUB00000", "SUB00001", "SUB00002")] == \
        ["model", "model", "control"]  # u = 0.6686, 0.2665, 0.1467


def test_assignment_is_stable_across_runs_and_partitionings(spark):
    cfg = ExperimentConfig()
    ids = [f"{i:08d}" for i in range(2000)]
    assert assigned(spark, ids, cfg, partitions=1) == assigned(spark, ids, cfg, partitions=4)


def test_shares_are_close_to_the_configured_ones_and_a_new_salt_redraws(spark):
    cfg = ExperimentConfig(salt="q4", arms={"model": 0.9, "control": 0.1})
    df = spark.range(20000).select(F.col("id").cast("string").alias(Col.SUBSCRIBER_ID))
    arms = experiments.with_arm(df, cfg).cache()
    shares = {r[Col.ARM]: r["count"] / 20000 for r in arms.groupBy(Col.ARM).count().collect()}
    assert shares["control"] == pytest.approx(0.1, abs=0.01)  # 0.3 points = 1 sd
    redrawn = experiments.with_arm(df, ExperimentConfig(salt="q1", arms=cfg.arms))
    moved = (arms.join(redrawn.withColumnRenamed(Col.ARM, "other"), on=Col.SUBSCRIBER_ID,
                       how="inner").where(F.col(Col.ARM) != F.col("other")).count())
    assert moved / 20000 == pytest.approx(2 * 0.9 * 0.1, abs=0.02)  # independent draws


def test_an_arm_with_no_share_gets_nobody(spark):
    cfg = ExperimentConfig(arms={"a": 0.0, "b": 1.0, "control": 0.0})
    assert set(assigned(spark, [str(i) for i in range(200)], cfg).values()) == {"b"}


@pytest.mark.parametrize("section, message", [
    ({"arms": {"model": 0.8, "control": 0.1}}, "shares must be >= 0 and sum to 1"),
    ({"control": "holdout"}, "experiment.control': must be one of the arms"),
    ({"arms": {"control": 1.0}}, "at least one arm besides the control arm"),
    ({"arms": {"Model A": 1.0}, "control": ""}, "lower-case letters"),
    ({"salt": ""}, "experiment.salt"),
])
def test_bad_experiments_are_refused(section, message):
    with pytest.raises(ConfigError, match=message):
        config.from_dict({"experiment": section})
