"""Plain `lightfm.LightFM` on a run's own train/test split: the reference the benchmarks compare
telcorec's models with. Reads the run's `interactions` to the driver: benchmarks on small data."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from lightfm import LightFM
from pyspark.sql import SparkSession

from telcorec.core import schemas
from telcorec.core.columns import Col, Split
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter


@dataclass(frozen=True)
class RunSplit:
    """The run's pairs as matrices over (users x offers): training pairs with their confidence
    weights (`fit_on`), held-out pairs (`test`); rows in `users` order."""
    users: pd.Index
    fit_on: sp.coo_matrix
    test: sp.csr_matrix


def run_split(spark: SparkSession, wh: Warehouse, run_date: dt.date) -> RunSplit:
    pairs = DeltaRsWriter().read(spark, wh.table("interactions"), schemas.INTERACTIONS,
                                 [run_date]).toPandas()
    n_items = int(pairs[Col.OFFER_IDX].max()) + 1
    users = pd.Index(sorted(pairs[Col.SUBSCRIBER_ID].unique()))
    row = users.get_indexer(pairs[Col.SUBSCRIBER_ID])
    train = (pairs[Col.SPLIT] == Split.TRAIN).to_numpy()
    items = pairs[Col.OFFER_IDX].to_numpy()
    shape = (len(users), n_items)
    fit_on = sp.coo_matrix((pairs[Col.WEIGHT].to_numpy(np.float32)[train],
                            (row[train], items[train])), shape=shape)
    test = sp.csr_matrix((np.ones((~train).sum()), (row[~train], items[~train])), shape=shape)
    return RunSplit(users, fit_on, test)


def model(params, seed: int, loss: str | None = None) -> LightFM:
    """Plain LightFM with train.lightfm's hyperparameters (`params`: a LightFMConfig, its loss
    unless `loss` says otherwise), built as telcorec's own model builds it
    (telcorec/models/lightfm/model.py): the one reference every benchmark compares with."""
    return LightFM(no_components=params.no_components, k=params.k, n=params.n,
                   learning_schedule="adagrad", loss=loss or params.loss,
                   learning_rate=params.learning_rate, item_alpha=params.item_alpha,
                   user_alpha=params.user_alpha, max_sampled=params.max_sampled,
                   random_state=np.random.RandomState(seed))


def fit_and_rank(split: RunSplit, params, epochs: int, seed: int, k: int,
                 user_features: sp.csr_matrix | None = None) -> dict[str, float]:
    """WARP LightFM with `params` (train.lightfm's fields) for `epochs`, then precision@k and
    hit_rate@k over the users with held-out pairs, their training offers excluded from the
    ranking as telcorec's evaluate stage does. No user features: identity only (one embedding
    per user, LightFM's default)."""
    fitted = model(params, seed, loss="warp")
    fitted.fit(split.fit_on, user_features=user_features, epochs=epochs, num_threads=2)
    n_items = split.fit_on.shape[1]
    evaluated = np.flatnonzero(np.diff(split.test.indptr))
    u = np.repeat(evaluated, n_items)
    i = np.tile(np.arange(n_items), len(evaluated))
    s = fitted.predict(u, i, user_features=user_features).reshape(len(evaluated), n_items)
    held = split.fit_on.tocsr()[evaluated]
    s[np.repeat(np.arange(len(evaluated)), np.diff(held.indptr)), held.indices] = -np.inf
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    hits = np.asarray(split.test[evaluated][np.arange(len(evaluated))[:, None], top].sum(axis=1))
    return {f"precision@{k}": round(float(np.mean(hits / k)), 4),
            f"hit_rate@{k}": round(float(np.mean(hits > 0)), 4)}
