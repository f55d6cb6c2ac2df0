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
from telcorec.core.exceptions import DataError, ModelError
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
    # what `save` writes besides the above (set by `load`): shard -> item feature biases, and
    # the offer rows the item vocabulary encodes
    item_biases: dict[int, np.ndarray] | None = None
    offer_rows: list[dict] | None = None

    @classmethod
    def load(cls, model_dir: Path) -> "LightFMScorer":
        """The model directory the train stage writes (one artifact per shard + manifest)."""
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
                   manifest.get("history_weight"), {s: b for s, (_, b) in items.items()},
                   manifest["offer_rows"])

    def save(self, directory: Path) -> Path:
        """The layout `load` reads: shard=NNNN/ arrays per shard and the manifest's scoring keys
        (the train stage writes the same, with its training record beside them)."""
        if self.item_biases is None or self.offer_rows is None:
            raise ModelError(f"{self.version} was built in memory without its item biases and "
                             "offer rows; save it from a scorer made by LightFMScorer.load")
        shard_paths = {}
        for shard, (embeddings, biases) in self.users.items():
            sub = f"shard={shard:04d}"
            artifacts.save(directory / sub, {
                "user_embeddings": embeddings, "user_biases": biases,
                "item_embeddings": self.item_embeddings[shard],
                "item_biases": self.item_biases[shard]}, {"model": self.name, "shard": shard})
            shard_paths[str(shard)] = sub
        manifest = {"model": self.name, "model_version": self.version,
                    "shard_paths": shard_paths, "user_vocabulary": self.user_vocab.to_json(),
                    "item_vocabulary": self.item_vocab.to_json(), "offer_ids": self.offer_ids,
                    "offer_rows": self.offer_rows, "history_weight": self.history_weight}
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        return directory

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
        unknown = sorted(set(pd.unique(shard_col).tolist()) - set(self.users))
        if unknown:  # their rows would be left unscored
            raise DataError(f"{self.version} has models for shards {sorted(self.users)} but the "
                            f"batch has subscribers of shard(s) {unknown}: score with the "
                            "train.shards and train.shard_key the model was trained with, or "
                            "retrain it")
        for shard, (emb, bias) in self.users.items():
            rows = np.flatnonzero(shard_col == shard)
            if rows.size:
                out[rows] = scores(representations(features[rows], emb, bias), self.items[shard])
        return out
