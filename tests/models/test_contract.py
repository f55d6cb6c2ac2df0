"""The model contract (telcorec/models/contract.py), checked on every model: each LightFM loss
and the deep preset in both representations, NCF GMF/MLP/NeuMF, both ensembles and the
baselines (popularity, random, oracle, content rules), and the cold-start blend of a model with
the content rules that the score stage serves. Models come from conftest.py."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from telcorec.core.columns import SUBSCRIBER_CATEGORICALS, Col
from telcorec.core.config.models import KNOWN_MODELS
from telcorec.core.exceptions import DataError
from telcorec.models.contract import SavedModel
from telcorec.models.scoring import load_saved, rank_frame, recommend

K = 5
ALWAYS_SAVED = ("lightfm_", "ncf_", "ensemble_", "popularity")


def test_every_trained_model_ensemble_and_popularity_is_a_saved_model(model_id, models):
    saved = isinstance(models[model_id], SavedModel)
    assert saved == model_id.startswith(ALWAYS_SAVED), model_id


def test_save_then_load_gives_identical_scores(model_id, models, contract_data, tmp_path,
                                               rebuilt_baselines):
    scorer, batch = models[model_id], contract_data["batch"]
    if isinstance(scorer, SavedModel):
        directory = scorer.save(tmp_path / "model")
        loaded = (load_saved(scorer.name, directory) if scorer.name in KNOWN_MODELS
                  else type(scorer).load(directory))
        assert (loaded.name, loaded.version) == (scorer.name, scorer.version)
    else:  # a baseline is built from the run's data each time: the same data, the same scores
        loaded = rebuilt_baselines[model_id]
    assert list(loaded.offer_ids) == list(scorer.offer_ids)
    np.testing.assert_array_equal(loaded.score(batch), scorer.score(batch))


def test_a_batch_of_one_scores_as_within_the_whole_batch(model_id, models, contract_data):
    scorer = models[model_id]
    batch = contract_data["batch"].iloc[:80]  # more rows than one LightFM score block (64)
    whole = scorer.score(batch)
    assert whole.shape == (len(batch), len(scorer.offer_ids))
    single = np.vstack([scorer.score(batch.iloc[[i]]) for i in range(len(batch))])
    np.testing.assert_array_equal(single, whole)


def unknown_subscribers(batch: pd.DataFrame, value: str) -> pd.DataFrame:
    """Copies of a few subscribers as new ones: every categorical a value no model saw, no
    history, no subscriber index (-1)."""
    new = batch.iloc[:4].copy()
    new[Col.SUBSCRIBER_ID] = [f"NEW{i}" for i in range(len(new))]
    for column in SUBSCRIBER_CATEGORICALS:
        new[column] = value
    new[Col.HISTORY_IDX] = [np.empty(0, np.int32)] * len(new)
    new[Col.EXCLUDE_IDX] = new[Col.HISTORY_IDX]
    new[Col.SUBSCRIBER_IDX] = -1
    return new


def test_an_unknown_subscriber_gets_finite_scores_whatever_the_unseen_values(
        model_id, models, contract_data):
    """Documented: unseen feature values are ignored, so any two of them score alike."""
    scorer, batch = models[model_id], contract_data["batch"]
    first = scorer.score(unknown_subscribers(batch, "never-seen"))
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(scorer.score(unknown_subscribers(batch, "other-unseen")), first)


@pytest.mark.parametrize("representation", ["features", "history"])
def test_lightfm_refuses_a_subscriber_of_a_shard_it_has_no_model_for(representation, models,
                                                                      contract_data):
    rows = contract_data["batch"].iloc[:3].copy()
    rows[Col.SHARD] = [0, 1, 2]  # trained with two shards
    with pytest.raises(DataError, match=r"shard\(s\) \[2\]"):
        models[f"lightfm_warp/{representation}"].score(rows)


@pytest.mark.parametrize("kind", ["gmf", "mlp", "neumf"])
def test_ncf_scores_an_unseen_index_from_the_features_alone(kind, models, contract_data):
    """subscriber_idx -1, an index beyond the table and one without training rows (mark_seen)
    are the same subscriber to an NCF model with ID embeddings; a seen one is not."""
    scorer, batch = models[f"ncf_{kind}"], contract_data["batch"]
    rows = batch.iloc[[0] * 4].copy()
    n = len(batch)
    rows[Col.SUBSCRIBER_IDX] = [-1, n + 50, n - 1, 0]  # n - 1 was never seen, 0 was
    s = scorer.score(rows)
    np.testing.assert_array_equal(s[1], s[0])
    np.testing.assert_array_equal(s[2], s[0])
    assert not np.array_equal(s[3], s[0])


def test_scoring_inside_a_spark_task_equals_scoring_locally(model_id, models, contract_data,
                                                           as_spark):
    scorer, batch = models[model_id], contract_data["batch"]
    key = [Col.SUBSCRIBER_ID, Col.RANK]
    local = rank_frame(batch, scorer, K).sort_values(key).reset_index(drop=True)
    remote = (recommend(as_spark(batch), scorer, K).toPandas()
              .sort_values(key).reset_index(drop=True))
    assert len(local) == len(batch) * K
    pd.testing.assert_frame_equal(remote, local, check_exact=True)
