"""The model contract: what every model, ensemble and baseline offers the rest of the package.

Scoring side (`Scorer`, every one of them): `name`, `version`, `offer_ids` and
`score(batch) -> (len(batch) x len(offer_ids))`, higher is better, columns in offer_idx order.
A subscriber's row depends on that subscriber's columns only, never on the others in the batch
(a batch of one gives the same bits as the whole batch), and a subscriber the model never saw
(no history, feature values first seen after training, `subscriber_idx` -1) gets finite scores
from what is known of them: unknown feature tokens are ignored (models/encoding.py, NCF's code
0), an empty history adds nothing, an NCF subscriber without a trained ID embedding is scored
from the features alone.

Persistence (`SavedModel`: the trained models, the ensembles, popularity): `save(directory)`
writes arrays (.npz, `allow_pickle=False`) or a `state_dict` (`weights_only=True`) plus JSON,
never pickle, and `load(directory)` reads back a scorer whose scores are identical. The
registry from a model name to its class is `telcorec.models.scoring.REGISTRY`; the name
grammar is `telcorec.core.config.models.model_name`.

Building from training data (each family's own entry point, callable on small in-memory data;
the pipeline runs the same code inside Spark tasks):
- LightFM: `models.lightfm.training.fit_local` runs the shard trainer a Spark task runs on
  pandas rows and writes the model directory (`LightFMScorer.load` reads it);
  `LightFMRecommender` (keyword-only hyperparameters, `get_params()`) is the fit itself.
- NCF: `NCFRecommender(...).fit(examples, item_codes, ...)` (in memory; the pipeline's
  distributed epoch loop is `models.ncf.trainer`), then `NCFScorer.from_model(model, meta)`.
- Ensembles: `scoring.ensemble_of(name, members, weights, rrf_k)` over trained members.
- Baselines are built from the run's data each time they are used, not trained: popularity
  from offer counts (`PopularityScorer`, also a SavedModel), random from a seed, the oracle
  from the generator's truth, content rules from the offer catalogue and the config.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd


@runtime_checkable
class Scorer(Protocol):
    name: str
    version: str
    offer_ids: list[str]

    def score(self, batch: pd.DataFrame) -> np.ndarray:
        """Scores (len(batch) x len(offer_ids)), higher is better."""


@runtime_checkable
class SavedModel(Scorer, Protocol):
    def save(self, directory: Path) -> Path:
        """Write everything `load` needs under `directory` (created); returns it."""

    @classmethod
    def load(cls, directory: Path) -> "SavedModel":
        """The scorer `save` wrote: the same scores for every batch."""
