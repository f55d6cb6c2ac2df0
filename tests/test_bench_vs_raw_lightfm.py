"""The MovieLens-style ratings generator and the benchmark that runs telcorec's pipeline path and
raw LightFM on the same interactions file (benchmarks/bench_vs_raw_lightfm.py)."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from telcorec.synthetic.ratings import COLUMNS, MIN_RATINGS, ratings

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_ratings_have_movielens_shape_and_are_seeded():
    a = ratings(users=120, items=200, seed=3)
    assert tuple(a.columns) == COLUMNS
    assert a["userId"].nunique() == 120 and a["movieId"].between(1, 200).all()
    assert a.groupby("userId").size().min() >= MIN_RATINGS
    assert not a.duplicated(["userId", "movieId"]).any()
    assert set(a["rating"].unique()) <= {1, 2, 3, 4, 5}
    assert a.equals(ratings(users=120, items=200, seed=3))
    assert not a.equals(ratings(users=120, items=200, seed=4))


def test_ratings_carry_a_learnable_taste():
    """Users who rated an item rate its nearest items (cosine over co-ratings) more often than popularity predicts: what
    a model learning from history picks up. A generator drawing items by popularity alone fails."""
    r = ratings(users=400, items=300, seed=1)
    m = np.zeros((400, 300))
    m[r["userId"] - 1, r["movieId"] - 1] = 1
    rng = np.random.default_rng(0)
    half = rng.random(m.shape) < 0.5
    train, test = m * half, m * ~half
    norm = np.sqrt(train.sum(axis=0)) + 1e-9
    item_sim = (train.T @ train) / norm[:, None] / norm[None, :]  # cosine
    np.fill_diagonal(item_sim, 0)
    scores = train @ item_sim
    pop = np.tile(train.sum(axis=0), (400, 1))

    def precision(s):
        s = np.where(train > 0, -np.inf, s)
        top = np.argsort(-s, axis=1)[:, :10]
        return np.take_along_axis(test, top, axis=1).mean()

    assert precision(scores) > 1.1 * precision(pop)


@pytest.mark.slow
def test_bench_runs_both_paths_on_a_generated_file(spark, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = importlib.import_module("bench_vs_raw_lightfm")
    monkeypatch.chdir(BENCHMARKS.parent)
    result = bench.main(["--generate", str(tmp_path / "ratings.csv"), "--users", "80",
                         "--items", "120", "--out-dir", str(tmp_path / "results"),
                         "--set", "train.lightfm.epochs=5"], spark=spark)
    written = json.loads((tmp_path / "results" / "ratings.json").read_text())
    stored = next(iter(written.values()))
    mine = stored["telcorec"]["precision@10"]
    theirs = stored["raw_lightfm_identity"]["precision@10"]
    assert 0 < mine <= 1 and 0 < theirs <= 1
    assert stored["ratio_telcorec_over_raw"] == pytest.approx(mine / theirs, abs=1e-3)
    assert stored["users"] == 80 and stored["test_pairs"] > 0
    assert result["telcorec"] == stored["telcorec"]
    sys.modules.pop("bench_vs_raw_lightfm", None)
