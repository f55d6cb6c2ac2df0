"""NCF end to end on a tiny warehouse: Spark examples -> Petastorm -> TorchDistributor -> metrics,
plus the trainer's checkpoint/resume run in-process."""
import datetime as dt
import socket

import numpy as np
import pandas as pd
import pytest
import torch
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core import config, schemas
from telcorec.core.columns import SUBSCRIBER_CATEGORICALS, Col, Split
from telcorec.evaluation import sampled_protocol
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter
from telcorec.models.ncf import examples, feed, trainer
from telcorec.models.ncf.model import NCFRecommender
from telcorec.models.ncf.scorer import NCFScorer
from telcorec.stages import ncf as stage

RUN = dt.date(2026, 11, 23)
SEGMENTS = ("youth", "family", "business", "senior")
N_SUBS, N_OFFERS = 240, 12


def _fill(frame: pd.DataFrame, schema: T.StructType) -> pd.DataFrame:
    """Give every schema column a value: ours where set, a neutral constant elsewhere."""
    defaults = {T.StringType: "x", T.DoubleType: 0.0, T.IntegerType: 0, T.LongType: 0,
                T.BooleanType: False, T.DateType: RUN}
    for f in schema.fields:
        if f.name not in frame:
            frame[f.name] = defaults[type(f.dataType)]
    return frame[schema.fieldNames()]


def write(spark, wh, name, frame, schema):
    df = schemas.conform(spark.createDataFrame(_fill(frame, schema), schema), schema)
    DeltaRsWriter().replace_partition(df, wh.table(name), schema, RUN)


def tiny_warehouse(spark, root):
    """240 subscribers in 4 segments; each segment holds plans from its own 3 of 12 offers, so
    the segment feature predicts the held-out plan; 10 cold-start subscribers hold none."""
    rng = np.random.default_rng(0)
    cfg = config.load("conf/base.yaml").with_overrides(warehouse=str(root))
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    ids = [f"S{i:04d}" for i in range(N_SUBS)]
    segment = [SEGMENTS[i % 4] for i in range(N_SUBS)]
    features = pd.DataFrame({Col.SUBSCRIBER_ID: ids, Col.SEGMENT: segment,
                             Col.REGION: rng.choice(["North", "South"], N_SUBS)})
    for column in SUBSCRIBER_CATEGORICALS:
        if column not in features:
            features[column] = "medium"
    write(spark, wh, "subscriber_features", features, schemas.SUBSCRIBER_FEATURES)
    offers = pd.DataFrame({Col.OFFER_ID: [f"O{j:02d}" for j in range(N_OFFERS)],
                           Col.OFFER_IDX: np.arange(N_OFFERS, dtype=np.int32),
                           Col.PLAN_TYPE: ["postpaid" if j % 2 else "prepaid"
                                           for j in range(N_OFFERS)],
                           Col.PRICE_TIER: [["budget", "standard", "premium"][j % 3]
                                            for j in range(N_OFFERS)]})
    write(spark, wh, "offer_features", offers, schemas.OFFER_FEATURES)
    write(spark, wh, "subscriber_index", pd.DataFrame(
        {Col.SUBSCRIBER_ID: ids, Col.SUBSCRIBER_IDX: np.arange(N_SUBS, dtype=np.int64)}),
        schemas.SUBSCRIBER_INDEX)
    rows = []
    for i in range(N_SUBS - 10):
        own = 3 * (i % 4) + rng.permutation(3)
        n = int(rng.integers(1, 4))
        for step, offer in enumerate(own[:n]):
            rows.append({Col.SUBSCRIBER_ID: ids[i], Col.SUBSCRIBER_IDX: i,
                         Col.OFFER_ID: f"O{offer:02d}", Col.OFFER_IDX: int(offer),
                         Col.WEIGHT: 1.0, Col.EVENT_DATE: dt.date(2024, 1 + step, 1),
                         Col.SPLIT: Split.TEST if n >= 2 and step == n - 1 else Split.TRAIN})
    write(spark, wh, "interactions", pd.DataFrame(rows), schemas.INTERACTIONS)
    return cfg, wh


def tiny_config(cfg, **overrides):
    return cfg.with_overrides(**{"ncf.enabled": True, "ncf.epochs": 2, "ncf.batch_size": 64,
                                 "ncf.validation_subscribers": 20, "ncf.eval_negatives": 5,
                                 "ncf.embedding_dim": 8, "ncf.mlp_layers": [16, 8],
                                 **overrides})


@pytest.fixture(scope="module")
def warehouse(spark, tmp_path_factory):
    return tiny_warehouse(spark, tmp_path_factory.mktemp("ncf-wh"))


def metric_rows(spark, wh, protocol):
    metrics = DeltaRsWriter().read(spark, wh.table("metrics"), schemas.METRICS, [RUN])
    return {(r[Col.MODEL], r[Col.METRIC], r[Col.K]): r[Col.VALUE]
            for r in metrics.filter((F.col(Col.PROTOCOL) == protocol)
                                    & (F.col(Col.SEGMENT) == "all")).collect()}


def check_run(spark, cfg, wh, result, models):
    names = [f"ncf_{m}" for m in models]
    assert sorted(result["models"]) == sorted(names)
    protocol = sampled_protocol.protocol_name(cfg.ncf.eval_negatives)  # sampled5 here
    full, sampled = metric_rows(spark, wh, "full"), metric_rows(spark, wh, protocol)
    for name in names:
        assert {(m, k) for (model, m, k) in full if model == name} == {
            (m, k) for m in ("precision", "recall") for k in cfg.evaluation.ks}
        for metric in ("hr", "ndcg"):
            value = sampled[(name, metric, 10)]
            assert 0.0 <= value <= 1.0
            assert result["metrics"][name][f"{protocol}:{metric}@10"] == pytest.approx(value)
        assert result["metrics"][name]["full:precision@5"] == pytest.approx(
            full[(name, "precision", 5)])
        scorer = NCFScorer.load(wh.models(RUN, name))
        assert scorer.version == result["models"][name]["model_version"]
        assert scorer.version.startswith(f"{name}-{RUN.isoformat()}-")
        checkpoint = torch.load(wh.models(RUN, name) / "checkpoints" / trainer.LAST,
                                weights_only=True)
        assert checkpoint["epoch"] == cfg.ncf.epochs - 1
    assert ("popularity", "hr", 10) in sampled
    assert not any((wh.root / feed.CACHE_DIR).iterdir())  # converters deleted
    return full, sampled


def test_stage_one_process_end_to_end(spark, warehouse):
    base, wh = warehouse
    cfg = tiny_config(base, **{"ncf.processes": 1, "ncf.models": ["gmf"]})
    result = stage.run(spark, cfg, RUN)
    check_run(spark, cfg, wh, result, ["gmf"])
    assert result["processes"] == 1 and result["steps_per_epoch"] >= 1


@pytest.mark.slow
def test_stage_two_processes_all_models_resumes_identically(spark, warehouse):
    base, wh = warehouse
    cfg = tiny_config(base, **{"ncf.processes": 2})
    result = stage.run(spark, cfg, RUN)
    full, sampled = check_run(spark, cfg, wh, result, ["gmf", "mlp", "neumf"])
    meta = NCFRecommender.load(wh.models(RUN, "ncf_neumf"))[1]
    assert meta["train"]["pretrain"] and meta["training"]["world_size"] == 2
    # a rerun finds complete checkpoints of the same configuration: same weights, same rows
    again = stage.run(spark, cfg, RUN)
    assert again["models"] == {k: {**v, "train_seconds": again["models"][k]["train_seconds"]}
                               for k, v in result["models"].items()}
    assert metric_rows(spark, wh, "full") == full
    assert metric_rows(spark, wh, sampled_protocol.protocol_name(cfg.ncf.eval_negatives)) == sampled


# ---- the trainer in this process (world size 1), for checkpoint/resume ---------------------

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def single_process_env(monkeypatch):
    for key, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0",
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}.items():
        monkeypatch.setenv(key, value)


def test_resumed_training_equals_uninterrupted(spark, tmp_path, single_process_env):
    feed.use_cache_under(spark, tmp_path)
    pairs = spark.createDataFrame(
        [(u, (u * 7 + j) % 10) for u in range(60) for j in range(2)],
        f"{Col.SUBSCRIBER_IDX} long, {Col.OFFER_IDX} int")
    held = examples.held_offers(pairs)
    converters = [feed.make_converter(examples.epoch_examples(pairs, held, None, 10, 2, 1,
                                                              epoch, 2)) for epoch in range(3)]
    try:
        steps = min(feed.steps_per_epoch(feed.row_group_rows(c.file_urls), 1, 16)
                    for c in converters)
        params = NCFRecommender(kind="neumf", n_users=60, n_items=10, embedding_dim=4,
                                mlp_layers=(8, 4), subscriber_ids=True).get_params()

        def spec(directory, epochs):
            trainer.save_inputs(directory, {"seen_users": np.ones(60, bool),
                                            "val_users": np.arange(5), "val_test": np.arange(5),
                                            "val_negatives": np.tile(np.arange(5, 9), (5, 1))})
            return trainer.TrainSpec(model_params=params, epochs=epochs, batch_size=16,
                                     learning_rate=0.01, seed=3, converters=tuple(converters),
                                     steps_per_epoch=steps, code_columns=(),
                                     checkpoint_dir=str(directory), fingerprint="same")

        trainer.train_worker((spec(tmp_path / "straight", 3),))
        trainer.train_worker((spec(tmp_path / "resumed", 2),))
        trainer.train_worker((spec(tmp_path / "resumed", 3),))
    finally:
        for converter in converters:
            converter.delete()
    straight = torch.load(tmp_path / "straight" / trainer.LAST, weights_only=True)
    resumed = torch.load(tmp_path / "resumed" / trainer.LAST, weights_only=True)
    assert straight["epoch"] == resumed["epoch"] == 2
    assert [h["loss"] for h in straight["history"]] == [h["loss"] for h in resumed["history"]]
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    best = torch.load(tmp_path / "resumed" / trainer.BEST, weights_only=True)
    assert set(best) == set(straight["model"])
