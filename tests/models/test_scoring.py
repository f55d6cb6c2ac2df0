import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from telcorec.core.columns import Col
from telcorec.core.exceptions import ModelError
from telcorec.io import artifacts
from telcorec.models.encoding import Vocabulary
from telcorec.models.lightfm.model import (
    LightFMRecommender,
    Representations,
    representations,
    scores,
)
from telcorec.models.scoring import PopularityScorer, rank_frame, recommend, top_k


def reference_top_k(s, exclude, k):
    """Slow and obvious: sort each row's eligible offers by (-score, offer index)."""
    out = []
    for i, row in enumerate(s):
        eligible = [j for j in range(len(row)) if j not in set(exclude[i])]
        out.append(sorted(eligible, key=lambda j: (-row[j], j))[:k])
    return out


@pytest.mark.parametrize("seed", range(5))
def test_top_k_agrees_with_reference(seed):
    rng = np.random.default_rng(seed)
    n, m, k = 50, 30, 7
    s = rng.integers(0, 6, size=(n, m)).astype(float)  # many ties on purpose
    exclude = pd.Series([rng.choice(m, size=rng.integers(0, 5), replace=False) for _ in range(n)])
    idx, best = top_k(s, exclude, k)
    assert idx.tolist() == reference_top_k(s, exclude, k)
    assert np.array_equal(best, np.take_along_axis(s, idx, axis=1))


@pytest.mark.parametrize("seed", range(3))
def test_top_k_keeps_float32_ranks_nan_last_and_reports_exclusions_as_neg_inf(seed):
    rng = np.random.default_rng(seed)
    n, m, k = 40, 12, 8
    s = rng.integers(0, 4, size=(n, m)).astype(np.float32)
    s[rng.random((n, m)) < 0.2] = np.nan
    exclude = pd.Series([rng.choice(m, size=rng.integers(0, 8), replace=False) for _ in range(n)])
    idx, best = top_k(s, exclude, k)
    key = np.where(np.isnan(s), -np.inf, s)  # NaN after every number, then by offer index
    for i in range(n):
        out = set(exclude[i])  # excluded last (all at -inf, so by offer index)
        ranked = sorted(range(m), key=lambda j: (j in out, 0 if j in out else -key[i, j], j))[:k]
        assert idx[i].tolist() == ranked
        for j, value in zip(ranked, best[i]):
            expected = -np.inf if j in out else s[i, j]
            assert value == expected or (np.isnan(value) and np.isnan(expected))
    assert best.dtype == np.float32


def test_rank_frame_exact_and_drops_excluded_when_too_few():
    batch = pd.DataFrame({Col.SUBSCRIBER_ID: ["A", "B"],
                          Col.EXCLUDE_IDX: [np.array([0]), np.array([], dtype=int)]})
    scorer = PopularityScorer(["O0", "O1", "O2"], np.array([5.0, 3.0, 1.0]))
    got = rank_frame(batch, scorer, k=3)
    assert got.to_dict("list") == {
        Col.SUBSCRIBER_ID: ["A", "A", "B", "B", "B"], Col.OFFER_ID: ["O1", "O2", "O0", "O1", "O2"],
        Col.RANK: [1, 2, 1, 2, 3], Col.SCORE: [3.0, 1.0, 5.0, 3.0, 1.0]}


def fitted_lightfm(seed=0):
    rng = np.random.default_rng(seed)
    n_users, n_items = 40, 12
    inter = sp.coo_matrix((np.ones(120), (rng.integers(0, n_users, 120),
                                          rng.integers(0, n_items, 120))),
                          shape=(n_users, n_items))
    inter.sum_duplicates()
    uf = sp.csr_matrix(rng.integers(0, 2, size=(n_users, 6)).astype(np.float32))
    itf = sp.identity(n_items, format="csr", dtype=np.float32)
    model = LightFMRecommender(no_components=8, epochs=3, seed=seed).fit(
        sp.coo_matrix((np.ones(inter.nnz), (inter.row, inter.col)), shape=inter.shape), uf, itf)
    return model, uf, itf


def test_representation_scores_equal_lightfm_predict():
    model, uf, itf = fitted_lightfm()
    a = model.arrays()
    got = scores(representations(uf, a["user_embeddings"], a["user_biases"]),
                 representations(itf, a["item_embeddings"], a["item_biases"]))
    lfm = model._require()
    users, items = np.repeat(np.arange(uf.shape[0]), itf.shape[0]), np.tile(
        np.arange(itf.shape[0]), uf.shape[0])
    expected = lfm.predict(users, items, user_features=uf, item_features=itf)
    np.testing.assert_allclose(got.ravel(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_users_scores_have_the_same_bits_in_any_batch(dtype):
    """A Spark task scores whichever subscribers its partition holds: a subscriber's scores
    must not change with the rows scored beside them (a plain product of all rows at once
    fails this here: other bits for batches of 1-5 float32 rows, for most float64 sizes)."""
    rng = np.random.default_rng(0)
    users = Representations(rng.standard_normal((1000, 64)).astype(dtype),
                            rng.standard_normal(1000).astype(dtype))
    items = Representations(rng.standard_normal((200, 64)).astype(dtype),
                            rng.standard_normal(200).astype(dtype))
    everyone = scores(users, items)
    np.testing.assert_allclose(everyone, users.vectors @ items.vectors.T
                               + users.biases[:, None] + items.biases[None, :], rtol=1e-4,
                               atol=1e-4)
    for start, size in [(0, 1), (5, 2), (17, 3), (100, 5), (7, 63), (300, 65), (1, 999)]:
        part = Representations(users.vectors[start:start + size],
                               users.biases[start:start + size])
        assert np.array_equal(scores(part, items), everyone[start:start + size]), (start, size)


def test_divergence_is_reported_with_the_fix():
    model, _, _ = fitted_lightfm()
    model._require().item_embeddings[0, 0] = np.nan
    with pytest.raises(ModelError, match="Decrease train.lightfm.learning_rate"):
        model._check_finite(0)


def test_artifacts_round_trip_and_refuse_tampering(tmp_path):
    model, _, _ = fitted_lightfm()
    artifacts.save(tmp_path / "m", model.arrays(), {"params": model.get_params()})
    arrays, meta = artifacts.load(tmp_path / "m")
    for name, value in model.arrays().items():
        np.testing.assert_array_equal(arrays[name], value)
    assert meta["params"]["no_components"] == 8
    np.savez(tmp_path / "m" / artifacts.ARRAYS, user_embeddings=np.zeros(3))
    with pytest.raises(ModelError, match="does not match the checksum"):
        artifacts.load(tmp_path / "m")


def test_object_arrays_are_refused(tmp_path):
    directory = tmp_path / "m"
    artifacts.save(directory, {"x": np.array([{"a": 1}], dtype=object)}, {})
    with pytest.raises(ModelError, match="object arrays"):
        artifacts.load(directory)


def test_vocabulary_encoding_normalises_and_ignores_unknown_values():
    vocab = Vocabulary(("a", "b"), ("a=x", "a=y", "b=1"))
    m = vocab.encode(pd.DataFrame({"a": ["x", "y", "z"], "b": ["1", "2", "1"]})).toarray()
    np.testing.assert_allclose(m, [[0.5, 0, 0.5], [0, 1, 0], [0, 0, 1]])


def test_recommend_on_executors_matches_local_ranking(spark):
    scorer = PopularityScorer([f"O{i}" for i in range(6)], np.array([1., 6., 3., 5., 2., 4.]))
    rows = [(f"S{i}", [i % 6]) for i in range(20)]
    df = spark.createDataFrame(rows, f"{Col.SUBSCRIBER_ID} string, {Col.EXCLUDE_IDX} array<int>")
    got = recommend(df.repartition(3), scorer, 3).toPandas()
    local = rank_frame(df.toPandas(), scorer, 3)
    key = [Col.SUBSCRIBER_ID, Col.RANK]
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                  local.sort_values(key).reset_index(drop=True),
                                  check_dtype=False)
