"""NCF end to end on a tiny warehouse: Spark examples -> Petastorm -> TorchDistributor -> metrics,
plus the trainer's checkpoint/resume run in-process."""
import socket

import numpy as np
import pytest
import torch
from pyspark.sql import functions as F

from helpers.tiny_warehouse import RUN, tiny_warehouse
from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.evaluation import sampled_protocol
from telcorec.io.writer import DeltaRsWriter
from telcorec.models.ncf import examples, feed, trainer
from telcorec.models.ncf.model import NCFRecommender
from telcorec.models.ncf.scorer import NCFScorer
from telcorec.stages import ncf as stage


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
