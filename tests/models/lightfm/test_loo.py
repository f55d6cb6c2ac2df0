"""Leave-one-out rows with a bounded history (telcorec/models/lightfm/loo.py) against the whole
leave-one-out histories of telcorec/models/lightfm/history.py."""
import numpy as np
import pytest

from telcorec.models.lightfm import history, loo


def random_pairs(seed: int, users: int, items: int):
    rng = np.random.default_rng(seed)
    codes, offers = [], []
    for user in range(users):
        n = int(rng.integers(1, 30))
        codes.append(np.full(n, user))
        offers.append(rng.choice(items, size=n, replace=False))
    order = rng.permutation(sum(len(c) for c in codes))  # pairs in no particular order
    return np.concatenate(codes)[order], np.concatenate(offers)[order].astype(np.int64)


def whole_histories(codes: np.ndarray, items: np.ndarray) -> list[np.ndarray]:
    """The reference: pair j's history is every other offer of its subscriber, uncut."""
    histories: list[np.ndarray] = []
    for code, item in zip(codes, items):
        mine = items[codes == code]
        histories.append(np.sort(mine[mine != item]))
    return histories


def test_uncapped_rows_equal_the_whole_leave_one_out_histories():
    codes, items = random_pairs(1, users=40, items=50)
    got = loo.capped_history_block(codes, items, 50, weight=1.5, cap=1_000, seed=3)
    expected = history.history_block(whole_histories(codes, items), 50, 1.5)
    np.testing.assert_array_equal(got.toarray(), expected.toarray())  # the same bits


@pytest.mark.parametrize("cap", [1, 4, 10])
def test_capped_rows_keep_cap_of_the_other_offers_at_inverse_probability_weights(cap):
    codes, items = random_pairs(2, users=40, items=50)
    got = loo.capped_history_block(codes, items, 50, weight=2.0, cap=cap, seed=5).tocsr()
    for j in range(len(codes)):
        others = set(items[(codes == codes[j]) & (items != items[j])].tolist())
        row = got.getrow(j)
        assert set(row.indices.tolist()) <= others
        kept = min(cap, len(others))
        assert row.nnz == kept
        if kept:
            np.testing.assert_allclose(row.data, 2.0 * np.sqrt(len(others)) / kept, rtol=1e-6)


def test_the_sample_follows_the_seed_and_is_unbiased_over_seeds():
    codes, items = random_pairs(4, users=5, items=50)
    first = loo.capped_history_block(codes, items, 50, 1.0, 3, seed=9)
    assert (first != loo.capped_history_block(codes, items, 50, 1.0, 3, seed=9)).nnz == 0
    assert (first != loo.capped_history_block(codes, items, 50, 1.0, 3, seed=10)).nnz > 0
    mean = sum(loo.capped_history_block(codes, items, 50, 1.0, 3, seed=s).toarray()
               for s in range(400)) / 400
    whole = history.history_block(whole_histories(codes, items), 50, 1.0).toarray()
    np.testing.assert_allclose(mean, whole, atol=0.12)


def test_the_cap_keeps_histories_whole_within_the_budget_and_bounds_them_beyond():
    # 3 subscribers with 40, 20 and 2 pairs: whole, they hold 40*39 + 20*19 + 2*1 = 1942 tokens
    codes = np.repeat([0, 1, 2], [40, 20, 2])
    assert loo.history_cap(codes, budget=1942) == 39              # every history whole
    cap = loo.history_cap(codes, budget=1500)
    assert 40 * min(39, cap) + 20 * min(19, cap) + 2 <= 1500      # within the budget ...
    assert 40 * min(39, cap + 1) + 20 * min(19, cap + 1) + 2 > 1500  # ... and the largest
    assert loo.history_cap(codes, budget=10) == loo.MIN_CAP       # never below the floor
