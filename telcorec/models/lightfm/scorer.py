"""A trained LightFM variant loaded for scoring: one model per shard, each subscriber scored by
the model of their shard from their feature tokens (telcorec/models/lightfm/training.py)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from telcorec.core.columns import Col
from telcorec.core.exceptions import DataError
from telcorec.io import artifacts
from telcorec.io.artifacts import MANIFEST
from telcorec.models.encoding import Vocabulary
from telcorec.models.lightfm import history
from telcorec.models.lightfm.model import Representations, representations, scores


@dataclass
class LightFMScorer:
    name: str
    version: str
    offer_ids: list[str]
    user_vocab: Vocabulary
    users: dict[int, tuple[np.ndarray, np.ndarray]]  # shard -> (feature embeddings, biases)
    items: dict[int, Representations]                # shard -> offer representations
    item_vocab: Vocabulary                           # the offer side by feature (reasons)
    item_features: sp.csr_matrix                     # offers x item tokens, offer_idx order
    item_embeddings: dict[int, np.ndarray]           # shard -> item feature embeddings
    history_weight: float | None = None              # None: features only (history.py)

    @classmethod
    def load(cls, model_dir: Path) -> "LightFMScorer":
        manifest = json.loads((model_dir / MANIFEST).read_text())
        item_vocab = Vocabulary.from_json(manifest["item_vocabulary"])
        users, items = {}, {}
        for shard, sub in manifest["shard_paths"].items():
            arrays, _ = artifacts.load(model_dir / sub)
            users[int(shard)] = (arrays["user_embeddings"], arrays["user_biases"])
            items[int(shard)] = (arrays["item_embeddings"], arrays["item_biases"])
        item_rows = pd.DataFrame(manifest["offer_rows"])
        item_features = item_vocab.encode(item_rows, identity=item_rows[Col.OFFER_ID])
        item_reprs = {s: representations(item_features, emb, bias)
                      for s, (emb, bias) in items.items()}
        return cls(manifest["model"], manifest["model_version"], manifest["offer_ids"],
                   Vocabulary.from_json(manifest["user_vocabulary"]), users, item_reprs,
                   item_vocab, item_features, {s: emb for s, (emb, _) in items.items()},
                   manifest.get("history_weight"))

    def user_features(self, batch: pd.DataFrame) -> sp.csr_matrix:
        """The batch's user rows as the model was fitted on them: feature tokens, and for a
        history-aware model the offers of the batch's `history_idx` column."""
        features = self.user_vocab.encode(batch)
        if self.history_weight is None:
            return features
        if Col.HISTORY_IDX not in batch:
            raise DataError(f"{self.version} is history-aware (train.representation "
                            f"features+history) but the batch has no {Col.HISTORY_IDX} column: "
                            "join the subscribers' offers (interactions) before scoring")
        return history.user_matrix(features, history.batch_histories(batch[Col.HISTORY_IDX]),
                                   len(self.offer_ids), self.history_weight)

    def score(self, batch: pd.DataFrame) -> np.ndarray:
        features = self.user_features(batch)
        out = np.empty((len(batch), len(self.offer_ids)), dtype=np.float32)
        shard_col = batch[Col.SHARD].to_numpy()
        for shard, (emb, bias) in self.users.items():
            rows = np.flatnonzero(shard_col == shard)
            if rows.size:
                out[rows] = scores(representations(features[rows], emb, bias), self.items[shard])
        return out
