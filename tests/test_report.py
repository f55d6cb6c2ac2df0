"""The HTML run report, built from literal metrics rows and fake shard histories (no Spark)."""
import base64
import datetime as dt
import json
import re

import numpy as np
import pandas as pd
import pytest

from telcorec.core import config
from telcorec.core.columns import Cohort, Col
from telcorec.evaluation import report
from telcorec.io import artifacts, metrics_store, runs
from telcorec.io.artifacts import MANIFEST
from telcorec.io.warehouse import Warehouse

RUN = dt.date(2026, 11, 23)
MODELS = ("lightfm_warp", "lightfm_bpr", "ensemble_rrf", "popularity", "random", "oracle")
SEGMENTS = ("all", "business", "youth", Cohort.WARM, Cohort.COLD_START)


def literal_metrics() -> pd.DataFrame:
    """Full-protocol rows for every model, segment and K, and sampled99 rows for a few."""
    rng = np.random.default_rng(0)
    rows = []
    for model in MODELS:
        for segment in SEGMENTS:
            for metric, k in [(m, k) for m in ("precision", "recall", "ndcg", "hit_rate", "map",
                                               "coverage") for k in (5, 10)] + [("auc", 0)]:
                rows.append((model, "full", metric, k, segment, float(rng.uniform())))
    for model in ("ncf_neumf", "lightfm_warp", "popularity"):
        for metric, k in (("hr", 5), ("hr", 10), ("ndcg", 5), ("ndcg", 10)):
            rows.append((model, "sampled99", metric, k, "all", float(rng.uniform())))
    return pd.DataFrame(rows, columns=[Col.MODEL, Col.PROTOCOL, Col.METRIC, Col.K, Col.SEGMENT,
                                       Col.VALUE])


CURVES = [report.TrainingCurve("lightfm_warp", 0, [(5, 0.10), (10, 0.14), (15, 0.13)], 10),
          report.TrainingCurve("lightfm_warp", 1, [(5, 0.11), (10, 0.12)], 10),
          report.TrainingCurve("lightfm_bpr", 0, [(5, 0.05), (10, 0.07)], 10)]


def value(metrics, model, metric, k, segment="all", protocol="full"):
    m = metrics
    hit = m[(m[Col.MODEL] == model) & (m[Col.METRIC] == metric) & (m[Col.K] == k)
            & (m[Col.SEGMENT] == segment) & (m[Col.PROTOCOL] == protocol)]
    return hit[Col.VALUE].item()


def test_headline_table_is_models_by_metrics_at_5_baselines_last():
    metrics = literal_metrics()
    table = report.headline_table(metrics)
    order = ["ensemble_rrf", "lightfm_bpr", "lightfm_warp", "popularity", "random", "oracle"]
    columns = ["precision@5", "recall@5", "ndcg@5", "auc", "coverage@5"]
    expected = pd.DataFrame(
        [[value(metrics, m, c.split("@")[0], 5 if "@" in c else 0) for c in columns]
         for m in order], index=pd.Index(order, name=Col.MODEL),
        columns=pd.Index(columns, name="label"))
    pd.testing.assert_frame_equal(table, expected)


def test_sampled_table_has_every_model_and_k_of_the_protocol():
    metrics = literal_metrics()
    table = report.sampled_table(metrics, "sampled99")
    assert list(table.index) == ["lightfm_warp", "ncf_neumf", "popularity"]
    assert list(table.columns) == ["hr@10", "hr@5", "ndcg@10", "ndcg@5"]
    assert table.loc["ncf_neumf", "ndcg@10"] == value(metrics, "ncf_neumf", "ndcg", 10,
                                                      protocol="sampled99")


def test_training_figure_draws_one_line_per_shard_and_circles_the_kept_epoch():
    figure = report.training_figure(CURVES, "validation precision@5")
    bpr, warp = [ax for ax in figure.axes if ax.get_visible()]
    assert (bpr.get_title(), warp.get_title()) == ("lightfm_bpr", "lightfm_warp")
    assert len(warp.lines) == 4  # 2 shards x (curve + best-epoch marker)
    assert list(warp.lines[1].get_xdata()) == [10] and list(warp.lines[1].get_ydata()) == [0.14]


def test_render_embeds_every_figure_and_names_every_model():
    text = report.render(literal_metrics(), CURVES, "telcorec run X")
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)
    # metric vs K, per segment, cold vs warm, training curves, sampled99
    assert len(images) == 5
    assert all(base64.b64decode(i).startswith(b"\x89PNG\r\n\x1a\n") for i in images)
    for model in (*MODELS, "ncf_neumf"):
        assert f"<th>{model}</th>" in text
    assert "Sampled candidates: protocol sampled99" in text
    assert "class='missing'" not in text


def test_render_says_what_is_missing_instead_of_failing():
    only = literal_metrics()
    only = only[(only[Col.SEGMENT] == "all") & (only[Col.PROTOCOL] == "full")
                & (only[Col.METRIC] == "precision")]
    text = report.render(only, [], "telcorec run Y")
    assert text.count("data:image/png") == 1  # metric vs K only
    for missing in ("no per-segment rows", "no cohort rows", "no validation history"):
        assert missing in text
    assert "sampled" not in text


def fake_lightfm_model(models_root, name, histories):
    """A manifest and per-shard metadata as training.run writes them (arrays omitted)."""
    model_dir = models_root / name
    paths = {}
    for shard, (points, best) in histories.items():
        sub = f"shard={shard:04d}"
        (model_dir / sub).mkdir(parents=True)
        (model_dir / sub / artifacts.META).write_text(json.dumps(
            {"model": name, "shard": shard, "history": points, "best_epoch": best}))
        paths[str(shard)] = sub
    (model_dir / MANIFEST).write_text(json.dumps({"model": name, "shard_paths": paths}))


def rows_of(frame: pd.DataFrame) -> list[tuple]:
    return list(frame[[Col.METRIC, Col.K, Col.SEGMENT, Col.VALUE]].itertuples(index=False,
                                                                              name=None))


def test_write_reads_this_runs_metrics_and_the_shard_histories(tmp_path):
    cfg = config.load("conf/local.yaml").with_overrides(**{
        "warehouse": str(tmp_path / "wh"), "train.models": ["warp", "bpr"]})
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    metrics = literal_metrics()
    rid = runs.run_id(cfg, RUN)
    full = metrics[metrics[Col.PROTOCOL] == "full"]
    tables = [metrics_store.metrics_table(rows_of(full[full[Col.MODEL] == m]), m, rid, RUN, "full")
              for m in ("lightfm_warp", "popularity")]
    # another config's rows of the same run date stay in the table, not in this run's report
    tables.append(metrics_store.metrics_table(rows_of(full[full[Col.MODEL] == "random"]),
                                              "lightfm_logistic", "20261123-older000", RUN,
                                              "full"))
    metrics_store.write_metrics(wh.table("metrics"), tables, RUN, "full")
    fake_lightfm_model(wh.models_root(RUN), "lightfm_warp", {0: ([[5, 0.1], [10, 0.2]], 10),
                                                              1: ([[5, 0.3]], 5)})
    fake_lightfm_model(wh.models_root(RUN), "lightfm_deep", {0: ([[5, 0.4]], 5)})  # not in cfg

    path = report.write(wh, cfg, RUN)

    assert path == wh.report_dir(RUN) / "report.html"
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]
    text = path.read_text()
    assert f"telcorec run {rid}" in text
    assert "<th>lightfm_warp</th>" in text and "<th>popularity</th>" in text
    assert "lightfm_logistic" not in text  # another run's rows
    curves = report.load_training_curves(wh.models_root(RUN), ["lightfm_warp", "lightfm_bpr"])
    assert curves == [report.TrainingCurve("lightfm_warp", 0, [(5, 0.1), (10, 0.2)], 10),
                      report.TrainingCurve("lightfm_warp", 1, [(5, 0.3)], 5)]


@pytest.mark.parametrize("models,expected", [
    (["oracle", "lightfm_warp", "random", "ncf_gmf", "popularity"],
     ["lightfm_warp", "ncf_gmf", "popularity", "random", "oracle"]),
    (["random"], ["random"])])
def test_model_order_puts_baselines_last(models, expected):
    assert report.model_order(models) == expected
