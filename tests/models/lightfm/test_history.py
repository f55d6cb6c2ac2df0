"""The subscriber's history in the LightFM representation: tokens, leave-one-out training rows,
no leakage of held-out pairs, scoring and reasons from the same history."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from telcorec.core.columns import Col, Split
from telcorec.core.config import EarlyStoppingConfig
from telcorec.core.exceptions import DataError
from telcorec.evaluation import offline, sampled_protocol
from telcorec.models.encoding import Vocabulary
from telcorec.models.lightfm import history, loo, training
from telcorec.models.lightfm.model import LightFMRecommender, Representations
from telcorec.models.lightfm.scorer import LightFMScorer
from telcorec.offers import reasons, selection

RUN = dt.date(2026, 11, 23)
N_ITEMS = 6
VOCAB = Vocabulary((Col.SEGMENT,), ("segment=a", "segment=b"))


def test_history_tokens_weigh_w_over_sqrt_n_beside_a_feature_block_summing_to_one():
    features = VOCAB.encode(pd.DataFrame({Col.SEGMENT: ["a", "b", "a"]}))
    got = history.user_matrix(features, [np.array([1, 4]), np.array([], np.int64),
                                         np.array([0, 2, 5, 3])], N_ITEMS, 2.0).toarray()
    expected = np.zeros((3, 2 + N_ITEMS))
    expected[0, [0, 3, 6]] = [1.0, 2 / np.sqrt(2), 2 / np.sqrt(2)]
    expected[1, 1] = 1.0
    expected[2, [0, 2, 4, 7, 5]] = [1.0, 1.0, 1.0, 1.0, 1.0]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_each_training_row_has_the_subscribers_other_offers_as_history():
    codes = np.array([1, 0, 1, 1, 2])
    items = np.array([4, 3, 0, 2, 5])
    got = loo.capped_history_block(codes, items, 6, weight=1.0, cap=loo.MIN_CAP, seed=0)
    assert [sorted(got.getrow(j).indices.tolist()) for j in range(len(codes))] == [
        [0, 2], [], [2, 4], [0, 4], []]


def shard_rows() -> pd.DataFrame:
    """Training rows of one shard as training_rows makes them: 40 subscribers, 2-4 offers."""
    rng = np.random.default_rng(3)
    rows = []
    for s in range(40):
        for o in rng.choice(N_ITEMS, size=2 + s % 3, replace=False):
            rows.append({Col.SUBSCRIBER_ID: f"S{s:03d}", Col.OFFER_IDX: int(o), Col.WEIGHT: 1.0,
                         Col.SHARD: 0, Col.SEGMENT: "ab"[s % 2]})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=1)  # in shuffle order


def test_validation_pairs_are_in_no_training_row_nor_any_history():
    pdf = shard_rows()
    item_features = sp.identity(N_ITEMS, format="csr", dtype=np.float32)
    data = training.shard_matrices(pdf, VOCAB, item_features, EarlyStoppingConfig(
        validation_share=0.3), seed=7, validate=True, history_weight=1.0)
    history_of = data.probe.user_features[:, len(VOCAB):].tocsr()
    fitted = data.probe.interactions.tocsr()
    val_rows = np.flatnonzero(np.diff(data.validation.indptr))
    assert 0 < len(val_rows) == data.validation_pairs < 40
    for r in val_rows:
        held = data.validation[r].indices
        assert len(held) == 1 and fitted[r].nnz == 0
        # its history is what it is ranked without: the subscriber's other offers
        assert set(history_of[r].indices) == set(data.exclude[r].indices)
        assert held[0] not in history_of[r].indices
    # every training row: one target, never among its own history tokens
    train_rows = np.flatnonzero(np.diff(fitted.indptr))
    assert len(train_rows) == data.interactions - data.validation_pairs
    for r in train_rows:
        assert fitted[r].nnz == 1 and fitted[r].indices[0] not in history_of[r].indices
    # the refit sees every pair, still one row per pair, histories of the other offers
    full = data.full.interactions.tocsr()
    assert full.shape[0] == full.nnz == data.interactions


@pytest.mark.parametrize("history_weight", [None, 1.0])
def test_the_same_rows_in_any_order_give_the_same_matrices(history_weight):
    """A shard's rows arrive in the order the shuffle delivers them; LightFM visits the pairs in
    matrix order, so an unsorted matrix made reruns fit (and publish) other models."""
    pdf = shard_rows()
    item_features = sp.identity(N_ITEMS, format="csr", dtype=np.float32)
    a, b = (training.shard_matrices(frame, VOCAB, item_features, EarlyStoppingConfig(), 7, True,
                                    history_weight=history_weight)
            for frame in (pdf, pdf.sample(frac=1.0, random_state=9)))
    for x, y in ((a.probe.user_features, b.probe.user_features),
                 (a.full.user_features, b.full.user_features), (a.validation, b.validation)):
        assert (x != y).nnz == 0
    for x, y in ((a.probe.interactions, b.probe.interactions),
                 (a.full.interactions, b.full.interactions)):  # the order LightFM visits
        for part in ("row", "col", "data"):
            np.testing.assert_array_equal(getattr(x, part), getattr(y, part))


def test_evaluation_history_is_the_training_offers_only(spark):
    rows = [("S1", 0, Split.TRAIN), ("S1", 2, Split.TRAIN), ("S1", 4, Split.TEST),
            ("S2", 1, Split.TRAIN), ("S2", 3, Split.TEST)]
    interactions = spark.createDataFrame(
        [(s, o, f"O{o}", split, i) for i, (s, o, _o, split) in
         enumerate([(s, o, None, split) for s, o, split in rows])],
        f"{Col.SUBSCRIBER_ID} string, {Col.OFFER_IDX} int, {Col.OFFER_ID} string, "
        f"{Col.SPLIT} string, {Col.SUBSCRIBER_IDX} int")
    subs, _ = offline.evaluation_frame(interactions)
    got = {r[Col.SUBSCRIBER_ID]: sorted(r[Col.HISTORY_IDX]) for r in subs.collect()}
    assert got == {"S1": [0, 2], "S2": [1]}  # the held-out offers 4 and 3 appear nowhere
    sampled = {r[Col.SUBSCRIBER_ID]: sorted(r[Col.HISTORY_IDX])
               for r in sampled_protocol.evaluation_rows(interactions).collect()}
    assert sampled == got


def test_scoring_history_is_every_pair_of_the_run_date(spark):
    features = spark.createDataFrame([("S1",), ("S2",), ("S3",)], f"{Col.SUBSCRIBER_ID} string")
    pairs = spark.createDataFrame([("S1", 3), ("S1", 0), ("S2", 5), ("S1", 3)],
                                  f"{Col.SUBSCRIBER_ID} string, {Col.OFFER_IDX} int")
    got = {r[Col.SUBSCRIBER_ID]: list(r[Col.HISTORY_IDX])
           for r in selection.with_holdings(features, pairs).collect()}
    assert got == {"S1": [0, 3], "S2": [5], "S3": []}


def fitted_scorer(history_weight: float | None) -> LightFMScorer:
    pdf = shard_rows()
    item_features = sp.identity(N_ITEMS, format="csr", dtype=np.float32)
    data = training.shard_matrices(pdf, VOCAB, item_features, EarlyStoppingConfig(), 7, False,
                                   history_weight=history_weight)
    model = LightFMRecommender(no_components=4, epochs=3, seed=1).fit(
        data.full.interactions, data.full.user_features, item_features)
    arrays = model.arrays()
    items = Representations(arrays["item_embeddings"], arrays["item_biases"])
    item_vocab = Vocabulary((), tuple(f"id=O{i}" for i in range(N_ITEMS)))
    return LightFMScorer("lightfm_warp", "v1", [f"O{i}" for i in range(N_ITEMS)], VOCAB,
                         {0: (arrays["user_embeddings"], arrays["user_biases"])}, {0: items},
                         item_vocab, item_features, {0: arrays["item_embeddings"]},
                         history_weight)


def test_a_history_aware_model_scores_by_history_and_refuses_a_batch_without_it():
    scorer = fitted_scorer(1.0)
    batch = pd.DataFrame({Col.SEGMENT: ["a", "a"], Col.SHARD: [0, 0],
                          Col.HISTORY_IDX: [[0, 1], [4]]})
    got = scorer.score(batch)
    assert not np.allclose(got[0], got[1])  # same features, other history, other scores
    with pytest.raises(DataError, match="history_idx"):
        scorer.score(batch.drop(columns=[Col.HISTORY_IDX]))
    assert fitted_scorer(None).user_features(batch).shape[1] == len(VOCAB)


def test_the_history_reason_names_the_held_offer_that_adds_most():
    n = len(VOCAB)
    user_emb = np.zeros((n + N_ITEMS, 2))
    user_emb[n + 1] = [1.0, 0.0]   # holding O1 points at dimension 0
    user_emb[n + 4] = [0.0, 1.0]   # holding O4 at dimension 1
    item_emb = np.zeros((N_ITEMS, 2))
    item_emb[2] = [2.0, 0.5]       # O2 sits on dimension 0, O5 on dimension 1
    item_emb[5] = [-1.0, 3.0]
    item_vocab = Vocabulary((), tuple(f"id=O{i}" for i in range(N_ITEMS)))
    offers = pd.DataFrame({Col.OFFER_ID: [f"O{i}" for i in range(N_ITEMS)],
                           Col.OFFER_IDX: range(N_ITEMS)})
    for c in reasons.OFFER_CATEGORICALS:
        offers[c] = "x"
    offers[Col.PRICE], offers[Col.DATA_GB] = 10.0, 5.0
    explainer = reasons.Explainer.build(VOCAB, item_vocab,
                                        sp.identity(N_ITEMS, format="csr", dtype=np.float32),
                                        {0: (user_emb, item_emb)}, offers, history_weight=1.0)
    batch = pd.DataFrame({Col.SHARD: [0, 0, 0], Col.HISTORY_IDX: [[1, 4], [1, 4], []]})
    got = explainer.history_reason(batch, np.array([0, 1, 2]), np.array([2, 5, 2])).to_pylist()
    assert got[0].startswith("history: holds O1") and got[1].startswith("history: holds O4")
    assert got[2] is None
