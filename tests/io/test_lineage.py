"""Which run trained the model behind an offer: the manifest records it, scoring stamps it."""
from __future__ import annotations

import datetime as dt
import json

from deltalake import DeltaTable
from pyspark.sql import types as T

from helpers.rows import full_row
from telcorec.core import config, schemas
from telcorec.core.columns import Col
from telcorec.io import artifacts, runs
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter
from telcorec.stages import score

D1, D2, D3 = dt.date(2026, 11, 20), dt.date(2026, 11, 22), dt.date(2026, 11, 23)


def _model(wh: Warehouse, day: dt.date, name: str, trained_by: dict | None, file: str) -> None:
    directory = wh.models(day, name)
    directory.mkdir(parents=True)
    (directory / file).write_text(json.dumps({"model": name}))
    if trained_by is not None:
        artifacts.record_training_run(directory / file, trained_by)


def test_the_manifest_keeps_what_it_held_and_names_the_training_run(tmp_path):
    (tmp_path / artifacts.MANIFEST).write_text(json.dumps({"model_version": "v1", "shards": 2}))
    artifacts.record_training_run(tmp_path / artifacts.MANIFEST,
                                  {"run_id": "20261120-abc", "attempt_id": "a1", "job": "train"})
    assert json.loads((tmp_path / artifacts.MANIFEST).read_text()) == {
        "model_version": "v1", "shards": 2,
        "trained_by": {"run_id": "20261120-abc", "attempt_id": "a1", "job": "train"}}
    assert artifacts.training_run(tmp_path) == "20261120-abc"
    assert sorted(p.name for p in tmp_path.iterdir()) == [artifacts.MANIFEST]  # no temp file
    assert artifacts.training_run(tmp_path / "nothing") is None


def test_lineage_names_the_recording_attempt_only_inside_one(tmp_path):
    cfg = config.load("conf/local.yaml")
    outside = runs.lineage(cfg, D3)
    assert outside == {"run_id": runs.run_id(cfg, D3), "attempt_id": None, "job": None}
    seen = {}
    runs.recorded(tmp_path / "runs", tmp_path / "metrics", cfg, D3,
                  lambda done: seen.update(runs.lineage(cfg, D3)), job="train")
    attempt = {r[Col.ATTEMPT_ID] for r in runs.read_rows(tmp_path / "runs")}
    assert seen == {"run_id": runs.run_id(cfg, D3), "attempt_id": attempt.pop(), "job": "train"}
    assert runs.lineage(cfg, D3)["attempt_id"] is None  # reset when the attempt ends


def test_the_served_models_training_run_is_found_as_the_scorer_finds_the_model(tmp_path):
    cfg = config.load("conf/full.yaml").with_overrides(**{
        "warehouse": str(tmp_path), "ensemble.tune_weights": False,
        "ensemble.weights": {"lightfm_warp": 1.0, "ncf_neumf": 1.0, "lightfm_unknown": 1.0}})
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    _model(wh, D1, "lightfm_warp", {"run_id": "run-old"}, artifacts.MANIFEST)
    _model(wh, D2, "lightfm_warp", {"run_id": "run-a"}, artifacts.MANIFEST)
    _model(wh, D2, "ncf_neumf", {"run_id": "run-b"}, artifacts.META)  # NCF: its metadata.json
    _model(wh, D2, "lightfm_bpr", None, artifacts.MANIFEST)  # trained before lineage
    # the newest trained at or before the run date (train.every_days > 1 leaves gaps)
    assert score.model_run_id(wh, cfg, D3, "lightfm_warp") == "run-a"
    assert score.model_run_id(wh, cfg, D1, "lightfm_warp") == "run-old"
    assert score.model_run_id(wh, cfg, D3, "ensemble_weighted") == "run-a+run-b"
    assert score.model_run_id(wh, cfg, D3, "lightfm_bpr") is None


def test_offers_written_before_the_lineage_column_read_it_as_null(spark, tmp_path):
    before = T.StructType([f for f in schemas.OFFERS.fields if f.name != Col.MODEL_RUN_ID])
    path = tmp_path / "offers"
    DeltaRsWriter().replace_partition(
        spark.createDataFrame([full_row(before, **{Col.RUN_DATE: D1})], before), path, before, D1)
    DeltaRsWriter().replace_partition(spark.createDataFrame(
        [full_row(schemas.OFFERS, **{Col.RUN_DATE: D2, Col.MODEL_RUN_ID: "run-a"})],
        schemas.OFFERS), path, schemas.OFFERS, D2)
    assert DeltaTable(str(path)).schema().to_pyarrow().names == schemas.OFFERS.fieldNames()
    got = DeltaRsWriter().read(spark, path, schemas.OFFERS).select(Col.RUN_DATE, Col.MODEL_RUN_ID)
    assert sorted(got.collect()) == [(D1, None), (D2, "run-a")]
