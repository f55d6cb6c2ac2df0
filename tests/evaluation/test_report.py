"""The HTML run report, built from literal metrics rows and fake shard histories (no Spark)."""
import base64
import datetime as dt
import html
import json
import re

import numpy as np
import pandas as pd
import pytest

from telcorec.core import config
from telcorec.core.columns import Cohort, Col
from telcorec.evaluation import report
from telcorec.evaluation import report_sections as words
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


def verdict_position(text: str) -> int:
    """Where the verdict is: before the first section heading means at the top."""
    return text.index("class='verdict") - text.index("<h2>")


def test_every_table_and_figure_is_explained_in_plain_words():
    text = report.render(literal_metrics(), CURVES, "telcorec run X")
    for metric in ("precision", "recall", "ndcg", "hit_rate", "map", "auc", "coverage"):
        assert html.escape(words.METRICS[metric]) in text, metric
    for kind in ("lightfm", "ensemble", "popularity", "random", "oracle"):
        assert html.escape(words.MODELS[kind]) in text, kind
    assert "ncf_*" not in text  # NCF appears in the sampled table only: not in the headline
    for sentence in (words.FULL_PROTOCOL.format(k=5), words.CURVES,
                     words.SEGMENTS.format(k=5), words.COHORTS,
                     words.TRAINING.format(label="validation precision@5"),
                     words.SAMPLED.format(protocol="sampled99", n=99, n1=100)):
        assert html.escape(sentence) in text
    # each figure and each table is followed by its explanation (or by its section's figure)
    for match in re.finditer(r"<img [^>]*>|</table>", text):
        assert text[match.end():].lstrip().startswith(("<p class='note", "<img")), match.group()[:40]
    # before scoring: the verdict is pending, said at the top
    assert "Quality gate: not judged yet" in text and verdict_position(text) < 0


def test_a_kept_last_epoch_says_the_curve_may_still_be_rising():
    text = report.render(literal_metrics(), CURVES, "telcorec run X")
    notes = re.findall(r"<p class='note warn'>([^<]*)</p>", text)
    assert notes == [  # lightfm_warp shard 0 kept 10 of 15: no note
        "lightfm_warp shard 1 kept its last checked epoch (10): its validation curve may still "
        "be rising. Try more epochs (train.lightfm.epochs).",
        "lightfm_bpr shard 0 kept its last checked epoch (10): its validation curve may still "
        "be rising. Try more epochs (train.lightfm.epochs)."]


def test_metric_against_k_draws_grouped_bars_for_two_k_and_lines_for_more():
    metrics = literal_metrics()
    two = report.curves_figure(metrics)
    full = metrics[Col.MODEL][metrics[Col.PROTOCOL] == "full"].unique()
    models = len(full)
    for ax in two.axes:
        assert len(ax.patches) == models * 2 and not ax.lines  # 6 models x K in {5, 10}
    precision = two.axes[0]
    assert precision.get_title() == "precision"
    heights = [p.get_height() for p in precision.patches]
    order = report.model_order(full)
    assert heights[:models] == [value(metrics, m, "precision", 5) for m in order]
    more = pd.concat([metrics.assign(**{Col.K: metrics[Col.K] + shift})
                      for shift in (0, 1)])  # K in {5, 6, 10, 11}
    lines = report.curves_figure(more)
    assert all(len(ax.lines) == models and not ax.patches for ax in lines.axes)


REFUSED = words.OffersOutcome(
    published=False,
    reasons=("only 45747 offer rows for 7039 subscribers x K=10, of 70390 the rules and the "
             "campaign cap allow (minimum share 90%, gate.min_row_share)",
             "lightfm_warp precision@5 0.0500 does not beat popularity 0.0600 <by 0%>"),
    removed={"candidate_pairs": 91507, "current_plan": 7039, "campaign_cap": 1234},
    first_by_arm={"control": 700, "model": 6339}, rows_by_offer={"phone": 3519},
    rejects=pd.DataFrame({Col.SOURCE_TABLE: ["subscribers"], Col.REASON: ["duplicate_id"],
                          "rows": [4]}))


def test_a_refused_run_says_so_at_the_top_in_red_and_why():
    text = report.render(literal_metrics(), CURVES, "telcorec run R", outcome=REFUSED)
    top = text[:text.index("<h2>")]
    assert "<div class='verdict refused'>Quality gate: refused, offers not published" in top
    assert "<li>only 45747 offer rows for 7039 subscribers x K=10" in top
    assert "does not beat popularity 0.0600 &lt;by 0%&gt;</li>" in top  # escaped
    assert re.search(r"\.refused\{[^}]*color:#b00020", text)  # red
    assert "verdict passed" not in text and "not judged yet" not in text
    offers = text[text.index("<h2>Offers</h2>"):]
    for heading in ("Rows per offer in the refused pass (not published)", "Subscribers per arm",
                    "Removed by each rule", "Rejected input rows by reason"):
        assert f"<h3>{heading}</h3>" in offers
    assert re.search(r"<th>campaign_cap</th>\s*<td>1,234</td>", offers)
    assert re.search(r"<th>duplicate_id</th>\s*<td>4</td>", offers)
    assert html.escape(words.RULES) in offers and html.escape(words.REJECTS) in offers


def test_a_published_run_shows_the_verdict_and_the_offer_mix():
    by_segment = pd.DataFrame({"adult": [10, 3], "senior": [2, 0], "total": [12, 3]},
                              index=pd.Index(["phone", "tech_support"], name=Col.OFFER_ID))
    passed = words.OffersOutcome(published=True, rows_line="35,195 offer rows of 35,195 ...",
                                 removed={"current_plan": 7043}, first_by_arm={"model": 7043},
                                 by_segment=by_segment, by_arm=by_segment.rename(
                                     columns={"adult": "model", "senior": "control"}),
                                 rejects=pd.DataFrame(columns=[Col.SOURCE_TABLE, Col.REASON,
                                                               "rows"]))
    text = report.render(literal_metrics(), CURVES, "telcorec run P", outcome=passed)
    assert verdict_position(text) < 0
    assert ("<div class='verdict passed'>Quality gate: passed, offers published: 35,195 offer "
            "rows of 35,195 ...</div>") in text
    assert "verdict refused" not in text
    offers = text[text.index("<h2>Offers</h2>"):]
    assert "<h3>Offer mix by segment</h3>" in offers and "<h3>Offer mix by experiment arm</h3>" in offers
    assert re.search(r"<th>tech_support</th>\s*<td>3</td>\s*<td>0</td>\s*<td>3</td>", offers)
    assert "No input row was rejected." in offers
    assert html.escape(words.MIX_SEGMENT) in offers and html.escape(words.MIX_ARM) in offers
    for match in re.finditer(r"</table>", offers):  # every offers table has its note
        assert offers[match.end():].lstrip().startswith("<p class='note"), offers[:match.end()]


def test_offer_mix_and_rejects_are_spark_aggregates(spark):
    offers = spark.createDataFrame(
        [("s1", "phone", "model"), ("s1", "fiber", "model"), ("s2", "phone", "control"),
         ("s3", "phone", "model")], [Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.ARM])
    features = spark.createDataFrame([("s1", "adult"), ("s2", "senior"), ("s3", "adult")],
                                      [Col.SUBSCRIBER_ID, Col.SEGMENT])
    by_segment, by_arm = words.offer_mix(offers, features)
    assert by_segment.to_dict("index") == {"phone": {"adult": 2, "senior": 1, "total": 3},
                                           "fiber": {"adult": 1, "senior": 0, "total": 1}}
    assert by_arm.to_dict("index") == {"phone": {"control": 1, "model": 2, "total": 3},
                                       "fiber": {"control": 0, "model": 1, "total": 1}}
    rejects = spark.createDataFrame(
        [("cdr", "absurd_duration", "{}"), ("cdr", "absurd_duration", "{}"),
         ("subscribers", "duplicate_id", "{}")], [Col.SOURCE_TABLE, Col.REASON, Col.RECORD])
    assert words.rejects_by_reason(rejects).values.tolist() == [
        ["cdr", "absurd_duration", 2], ["subscribers", "duplicate_id", 1]]
