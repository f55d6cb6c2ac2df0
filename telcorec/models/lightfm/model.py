"""LightFM hybrid model behind the project's model contract.

Keyword-only hyperparameters, `get_params()` for logging, an epoch loop that checks for
divergence after every epoch, and state saved as arrays (never pickle). Representations follow
LightFM's own definition: features @ embeddings (and features @ biases), so a subscriber who
never interacted is still scored from the features they have.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from lightfm import LightFM

from telcorec.core.exceptions import ModelError

log = logging.getLogger(__name__)
PROGRESS_EVERY = 5  # epochs between progress lines of a fit without validation checks


@dataclass(frozen=True)
class Representations:
    """Latent vectors and biases for a set of rows (users or items)."""
    vectors: np.ndarray
    biases: np.ndarray


class LightFMRecommender:
    def __init__(self, *, loss: str = "warp", no_components: int = 32,
                 learning_rate: float = 0.05, item_alpha: float = 0.0, user_alpha: float = 0.0,
                 max_sampled: int = 10, epochs: int = 30, k: int = 5, n: int = 10,
                 seed: int = 42) -> None:
        self._params = dict(loss=loss, no_components=no_components, learning_rate=learning_rate,
                            item_alpha=item_alpha, user_alpha=user_alpha,
                            max_sampled=max_sampled, epochs=epochs, k=k, n=n, seed=seed)
        self._model: LightFM | None = None
        self.epoch_seconds: list[float] = []
        self.history: list[tuple[int, float]] = []  # (epoch, validation precision@k)
        self.best_epoch = 0

    def get_params(self) -> dict:
        return dict(self._params)

    def fit(self, interactions: sp.coo_matrix, user_features: sp.csr_matrix,
            item_features: sp.csr_matrix, *, sample_weight: sp.coo_matrix | None = None,
            num_threads: int = 1, validation: sp.csr_matrix | None = None,
            exclude: sp.csr_matrix | None = None, every: int = 0, patience: int = 2,
            k: int = 5) -> "LightFMRecommender":
        """Fit for up to `epochs` epochs. With a `validation` matrix (same shape as
        `interactions`, disjoint from it) and every > 0, precision@k on it is measured every
        `every` epochs, the best epoch's state is kept and training stops after `patience`
        checks without improvement. `exclude`: the offers not ranked for each validation row
        (default: the row's training pairs)."""
        p = self._params
        self._model = LightFM(no_components=p["no_components"], k=p["k"], n=p["n"],
                              learning_schedule="adagrad", loss=p["loss"],
                              learning_rate=p["learning_rate"], item_alpha=p["item_alpha"],
                              user_alpha=p["user_alpha"], max_sampled=p["max_sampled"],
                              random_state=np.random.RandomState(p["seed"]))
        check = validation is not None and validation.nnz > 0 and every > 0
        best, best_state, misses = -1.0, None, 0
        fit_started = time.monotonic()
        for epoch in range(1, p["epochs"] + 1):
            started = time.monotonic()
            self._model.fit_partial(interactions, user_features=user_features,
                                    item_features=item_features, sample_weight=sample_weight,
                                    epochs=1, num_threads=num_threads)
            self.epoch_seconds.append(time.monotonic() - started)
            self._check_finite(epoch)
            if not check or (epoch % every and epoch != p["epochs"]):
                if epoch % PROGRESS_EVERY == 0:
                    log.info("epoch %d/%d: %.1f s since the fit began (%.1f s an epoch)", epoch,
                             p["epochs"], time.monotonic() - fit_started, self.epoch_seconds[-1])
                continue
            value = validation_precision(self.arrays(), user_features, item_features,
                                         interactions.tocsr() if exclude is None else exclude,
                                         validation, k)
            self.history.append((epoch, value))
            log.info("epoch %d/%d: validation precision@%d %.4f, %.1f s since the fit began "
                     "(%.1f s an epoch)", epoch, p["epochs"], k, value,
                     time.monotonic() - fit_started, self.epoch_seconds[-1])
            if value > best:
                best, misses, self.best_epoch = value, 0, epoch
                best_state = {name: a.copy() for name, a in self.arrays().items()}
            else:
                misses += 1
                if misses >= patience:
                    break
        if best_state is not None:
            for name, value in best_state.items():
                setattr(self._model, name, value)
        else:
            self.best_epoch = len(self.epoch_seconds)
        return self

    def _check_finite(self, epoch: int) -> None:
        m = self._model
        for name in ("user_embeddings", "item_embeddings", "user_biases", "item_biases"):
            if not np.isfinite(getattr(m, name)).all():
                raise ModelError(
                    f"LightFM diverged at epoch {epoch} ({name} holds NaN or inf). Decrease "
                    "train.lightfm.learning_rate or raise item_alpha/user_alpha in the config.")

    def arrays(self) -> dict[str, np.ndarray]:
        m = self._require()
        return {"user_embeddings": m.user_embeddings, "user_biases": m.user_biases,
                "item_embeddings": m.item_embeddings, "item_biases": m.item_biases}

    def _require(self) -> LightFM:
        if self._model is None:
            raise ModelError("the model is not fitted; call fit() first")
        return self._model


def representations(features: sp.csr_matrix, embeddings: np.ndarray,
                    biases: np.ndarray) -> Representations:
    """LightFM's representation of rows given by features: features @ embeddings (+ biases)."""
    return Representations(np.asarray(features @ embeddings, dtype=np.float32),
                           np.asarray(features @ biases, dtype=np.float32))


# Rows per matrix product in `scores`: every product has this one shape (the last block padded
# with zero rows) and is computed in float64 by its own 2-D product. A subscriber's scores must not
# depend on how many others a Spark task happens to score with them, or a rerun with other
# partitioning would publish other bits (and, at near ties, other offers). BLAS picks its kernel
# and splits the work by the shape of a product, and the last bits of a row follow the kernel:
# measured, OpenBLAS's sgemm gives other bits for 1-5 rows than for more; on an AMD EPYC with the
# Haswell kernel it even gives a row other bits at another position inside the same 64-row block,
# while its dgemm on blocks of one shape does not. So: one shape, float64, cast back to the
# representations' dtype (a deterministic rounding). tests/models/test_scoring.py checks it on the
# machine that runs it. 0.84 s per 1M rows x 200 items x 64 components measured here.
SCORE_BLOCK = 64


def scores(users: Representations, items: Representations) -> np.ndarray:
    """Score of every (user, item) pair: dot product plus both biases, as LightFM.predict;
    each user's row the same bits whatever other rows are scored with it (SCORE_BLOCK)."""
    n, dim = users.vectors.shape
    blocks = -(-n // SCORE_BLOCK)
    padded = np.zeros((blocks * SCORE_BLOCK, dim), dtype=np.float64)
    padded[:n] = users.vectors
    item_vectors = np.ascontiguousarray(items.vectors.T, dtype=np.float64)
    wide = np.empty((blocks * SCORE_BLOCK, len(items.biases)), dtype=np.float64)
    for b in range(blocks):
        rows = slice(b * SCORE_BLOCK, (b + 1) * SCORE_BLOCK)
        np.matmul(padded[rows], item_vectors, out=wide[rows])
    out = wide[:n].astype(users.vectors.dtype)
    out += users.biases[:, None]  # in place: no (users x items) temporaries
    out += items.biases[None, :]
    return out


def validation_precision(arrays: dict[str, np.ndarray], user_features: sp.csr_matrix,
                         item_features: sp.csr_matrix, exclude: sp.csr_matrix,
                         validation: sp.csr_matrix, k: int) -> float:
    """Mean precision@k over users with validation pairs, the offers of `exclude` not ranked."""
    users = np.flatnonzero(np.diff(validation.indptr))
    reprs_u = representations(user_features[users], arrays["user_embeddings"],
                              arrays["user_biases"])
    reprs_i = representations(item_features, arrays["item_embeddings"], arrays["item_biases"])
    s = scores(reprs_u, reprs_i).astype(np.float64)
    seen = exclude[users]
    s[np.repeat(np.arange(len(users)), np.diff(seen.indptr)), seen.indices] = -np.inf
    k = min(k, s.shape[1])
    top = np.argpartition(-s, k - 1, axis=1)[:, :k]
    truth = validation[users]
    hits = np.asarray(truth[np.arange(len(users))[:, None], top].sum(axis=1)).ravel()
    return float(np.mean(hits / k)) if len(users) else 0.0
