"""A subscriber's own history in their LightFM representation (item-based, as in NSVD / FISM).

Beside the feature tokens (a block that sums to 1, telcorec/models/encoding.py) the user row gets
one column per offer the subscriber holds or held, each weighing `weight / sqrt(n)` for a history
of n offers (FISM's normalisation with alpha = 0.5). A representation is then the mean of the
feature embeddings plus the scaled sum of the history embeddings, so any shard model still scores
any subscriber, including one it never saw: from their features and what they hold.

Training must not teach the shortcut "history token i -> offer i": if the offers a row is fitted
on were also its history tokens, the model would learn to recommend what the subscriber already
holds, which the ranking then excludes (measured on the IBM Telco table: below popularity). So
training uses one row per training pair, whose history is the subscriber's *other* offers
(telcorec/models/lightfm/loo.py). At scoring time the history is every offer the subscriber holds.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp


def history_block(histories: list[np.ndarray], n_items: int, weight: float) -> sp.csr_matrix:
    """Rows of weight/sqrt(n) at the n offers of each history (an empty history: an empty row)."""
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    cols = (np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
            if lengths.sum() else np.empty(0, np.int64))
    scale = np.where(lengths > 0, weight / np.sqrt(np.maximum(lengths, 1)), 0.0)
    data = np.repeat(scale, lengths).astype(np.float32)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    return sp.csr_matrix((data, cols, indptr), shape=(len(histories), n_items))


def user_matrix(feature_rows: sp.csr_matrix, histories: list[np.ndarray], n_items: int,
                weight: float) -> sp.csr_matrix:
    """[feature tokens | history tokens]: the user features a history-aware model is fitted and
    scored with."""
    return sp.hstack([feature_rows, history_block(histories, n_items, weight)], format="csr")


def batch_histories(values: pd.Series) -> list[np.ndarray]:
    """A batch's history column (lists of offer indices, None for none) as integer arrays."""
    return [np.empty(0, np.int64) if v is None else np.asarray(v, dtype=np.int64)
            for v in values]

