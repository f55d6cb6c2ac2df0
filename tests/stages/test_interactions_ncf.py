"""The NCF paper's protocol on generic interaction data, from config alone.

conf/interactions_ncf.yaml maps a public implicit-feedback set through the generic interactions
adapter; this test points that config at a small literal data set and runs the whole pipeline:
GMF, MLP and NeuMF with ID embeddings (the paper's setting) trained through Petastorm and
TorchDistributor, each user's latest item ranked among the sampled negatives (protocol
sampled{N}: hr and ndcg at 10), and NeuMF's offers published.
"""
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from telcorec.core import config
from telcorec.core.columns import Col
from telcorec.stages import pipeline

pytestmark = pytest.mark.slow  # trains three networks: about 3 minutes on 2 cores

RUN = dt.date(2026, 11, 23)
USERS, ITEMS = 300, 30


def write_events(root) -> str:
    """Users in three taste groups, each rating 5 of its group's 10 items; no attributes."""
    rng = np.random.default_rng(11)
    base = int(dt.datetime(2026, 6, 1).timestamp())
    rows = [(u, int(item), 4, base + 86400 * (7 * k + u % 5))
            for u in range(USERS)
            for k, item in enumerate(rng.choice(10, 5, replace=False) + 10 * (u % 3))]
    root.mkdir()
    pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"]).to_csv(
        root / "ratings.csv", index=False)
    return str(root)


def test_ncf_paper_protocol_from_config_alone(spark, tmp_path):
    cfg = config.load("conf/interactions_ncf.yaml").with_overrides(**{
        "warehouse": str(tmp_path / "wh"),
        "inputs.interactions.path": write_events(tmp_path / "ml"),
        "inputs.interactions.items": {"path": ""},   # no item attributes in this data
        "evaluation.sampled_negatives": 20,           # 30 items: fewer than the paper's 99
        "ncf.eval_negatives": 20, "ncf.epochs": 4, "ncf.validation_subscribers": 60,
        "gate.min_lift_over_popularity": -1.0})       # publish whatever a 4-epoch model does
    result = pipeline.run(spark, cfg, RUN)

    metrics = DeltaTable(str(tmp_path / "wh" / "metrics")).to_pandas()
    sampled = metrics[(metrics[Col.PROTOCOL] == "sampled20") & (metrics[Col.SEGMENT] == "all")
                      & (metrics[Col.K] == 10)]
    got = {(r[Col.MODEL], r[Col.METRIC]) for _, r in sampled.iterrows()}
    for model in ("ncf_gmf", "ncf_mlp", "ncf_neumf", "popularity"):
        assert {(model, "hr"), (model, "ndcg")} <= got
    assert sampled[Col.VALUE].between(0, 1).all()
    # the NCF models saw user IDs: they must rank the held-out item better than chance
    # (10 of 21 candidates in the top 10 -> hr 0.48)
    neumf = sampled[(sampled[Col.MODEL] == "ncf_neumf") & (sampled[Col.METRIC] == "hr")]
    assert neumf[Col.VALUE].iloc[0] > 0.48

    offers = DeltaTable(str(tmp_path / "wh" / "offers")).to_pandas()
    assert result["score"]["model"] == "ncf_neumf"
    assert offers[Col.MODEL_VERSION].str.startswith("ncf_neumf-").all()
    assert offers[Col.SUBSCRIBER_ID].nunique() == USERS
    assert (offers.groupby(Col.SUBSCRIBER_ID)[Col.RANK].max() == cfg.scoring.k).all()


def test_a_negatives_file_replaces_the_sampled_candidates_of_both_stages(spark, tmp_path):
    # each user's candidates: the 20 items outside its taste group (its held-out item is in
    # the group), plus one row for an unknown user; a model that learned the groups ranks the
    # held-out item above them (both stages write sampled_file rows, none sampled20)
    root = write_events(tmp_path / "ml")
    rows = [(u, item) for u in range(USERS) for item in range(ITEMS) if item // 10 != u % 3]
    pd.DataFrame(rows + [(USERS + 1, 0)], columns=["user", "item"]).to_csv(
        tmp_path / "ml" / "negatives.csv", index=False)
    cfg = config.load("conf/interactions_ncf.yaml").with_overrides(**{
        "warehouse": str(tmp_path / "wh"), "inputs.interactions.path": root,
        "inputs.interactions.items": {"path": ""},
        "inputs.interactions.negatives": {"path": "negatives.csv",
                                          "columns": {"user": "user", "item": "item"}},
        "evaluation.sampled_negatives": 20, "ncf.eval_negatives": 20, "ncf.epochs": 4,
        "ncf.models": ["gmf"], "scoring.model": "ncf_gmf", "ncf.validation_subscribers": 60,
        "gate.min_lift_over_popularity": -1.0})
    pipeline.run(spark, cfg, RUN)
    metrics = DeltaTable(str(tmp_path / "wh" / "metrics")).to_pandas()
    assert not (metrics[Col.PROTOCOL] == "sampled20").any()
    hr = metrics[(metrics[Col.PROTOCOL] == "sampled_file") & (metrics[Col.SEGMENT] == "all")
                 & (metrics[Col.K] == 10) & (metrics[Col.METRIC] == "hr")].set_index(Col.MODEL)
    assert {"ncf_gmf", "popularity"} <= set(hr.index), hr
    # chance is 10 of 21 candidates in the top 10 (0.48); 4 epochs of GMF measured 0.84
    assert (hr.loc[["ncf_gmf"], Col.VALUE] > 0.6).all(), hr
