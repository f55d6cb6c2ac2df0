"""The MovieLens-style ratings generator (telcorec/synthetic/ratings.py): shape, seeding and a taste
that a model learning from history can pick up."""
from __future__ import annotations

import numpy as np

from telcorec.synthetic.ratings import COLUMNS, MIN_RATINGS, ratings


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
