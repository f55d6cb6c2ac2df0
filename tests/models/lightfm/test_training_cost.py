"""What the LightFM train stage spends: the refit after early stopping only when the validation
pairs are worth a second fit (telcorec/models/lightfm/training.py, REFIT_MIN_SHARE)."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from telcorec.core.columns import SUBSCRIBER_CATEGORICALS, Col
from telcorec.core.config import EarlyStoppingConfig
from telcorec.models.encoding import Vocabulary
from telcorec.models.lightfm import training

PARAMS = dict(loss="warp", no_components=4, learning_rate=0.05, item_alpha=0.0, user_alpha=0.0,
              max_sampled=5, epochs=6, k=5, n=10, seed=1)


def shard_rows(subscribers: int, per_subscriber: int, items: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        Col.SUBSCRIBER_ID: np.repeat([f"S{i:04d}" for i in range(subscribers)], per_subscriber),
        Col.OFFER_IDX: np.concatenate([rng.choice(items, per_subscriber, replace=False)
                                       for _ in range(subscribers)]),
        Col.WEIGHT: np.float32(1.0), Col.SHARD: 0})
    for column in SUBSCRIBER_CATEGORICALS:
        frame[column] = "x"
    return frame


@pytest.mark.parametrize("representation,per_subscriber,refit", [
    # history-aware: one validation pair per validation subscriber, 0.5% of 20 pairs each
    ("features+history", 20, False),
    # history-aware with 2 pairs each: one of 2 pairs of 10% of subscribers, 5%
    ("features+history", 2, True),
    # features-only: every pair of 10% of subscribers
    ("features", 20, True),
])
def test_the_refit_runs_only_when_the_validation_pairs_are_worth_it(representation,
                                                                    per_subscriber, refit):
    rows = shard_rows(200, per_subscriber)
    vocab = Vocabulary(SUBSCRIBER_CATEGORICALS, tuple(f"{c}=x" for c in SUBSCRIBER_CATEGORICALS))
    stopping = EarlyStoppingConfig(every=2, patience=5, validation_share=0.1, k=5)
    data = training.shard_matrices(rows, vocab, sp.identity(40, format="csr"), stopping, seed=2,
                                   validate=True,
                                   history_weight=1.0 if representation != "features" else None)
    share = data.validation_pairs / data.interactions
    assert (share >= training.REFIT_MIN_SHARE) == refit
    model = training._fit_variant(PARAMS, data, threads=1, stopping=stopping)
    # a refit model is a new fit of best_epoch epochs; the probe keeps its configured epochs
    assert model.get_params()["epochs"] == (model.best_epoch if refit else PARAMS["epochs"])
    assert len(model.history) == 3


def test_every_validation_check_is_logged_with_its_epoch_metric_and_elapsed_time(caplog):
    rows = shard_rows(200, 2)
    vocab = Vocabulary(SUBSCRIBER_CATEGORICALS, tuple(f"{c}=x" for c in SUBSCRIBER_CATEGORICALS))
    stopping = EarlyStoppingConfig(every=2, patience=5, validation_share=0.1, k=5)
    data = training.shard_matrices(rows, vocab, sp.identity(40, format="csr"), stopping, seed=2,
                                   validate=True, history_weight=1.0)
    with caplog.at_level("INFO", logger="telcorec"):
        model = training._fit_variant(PARAMS, data, threads=1, stopping=stopping)
    checks = [r.getMessage() for r in caplog.records if "validation precision@5" in r.getMessage()]
    assert [m.split(":")[0] for m in checks] == ["epoch 2/6", "epoch 4/6", "epoch 6/6"]
    for message, (epoch, value) in zip(checks, model.history):
        assert f"{value:.4f}" in message and "s since the fit began" in message
