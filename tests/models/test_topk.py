"""telcorec.models.topk against the obvious implementation: a stable argsort of every whole row."""
import numpy as np
import pytest

from telcorec.models.topk import top_k_columns


def reference(key: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-key.astype(np.float64), axis=1, kind="stable")[:, :min(k, key.shape[1])]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8])
@pytest.mark.parametrize("k", [1, 3, 10, 40, 60])
def test_top_k_columns_agrees_with_a_stable_argsort_with_ties_and_minus_infinity(dtype, k):
    rng = np.random.default_rng(k)
    key = np.round(rng.normal(size=(500, 60)), 1)  # many ties
    if dtype == np.int8:
        key = rng.integers(-3, 3, size=key.shape)
    else:
        key[rng.random(key.shape) < 0.3] = -np.inf     # excluded offers
        key[:40, 5:] = -np.inf                         # rows with fewer than k open columns
        key[40:60] = -np.inf                           # rows with none
    key = key.astype(dtype)
    assert np.array_equal(top_k_columns(key, k), reference(key, k))
