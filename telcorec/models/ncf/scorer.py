"""`NCFScorer`: an NCF model behind the model contract (telcorec/models/contract.py).

It is broadcast to the executors by `scoring.recommend` (or `sampled_protocol.sampled_metrics`) as
plain arrays (the state_dict as numpy) and rebuilds the network once per Python worker; every
batch of subscribers is scored against every offer through the network in vectorised chunks.
A batch needs the subscriber categoricals (`telcorec.columns.SUBSCRIBER_CATEGORICALS`) when
the model uses features, and `subscriber_idx` when it has subscriber ID embeddings
(`ncf.subscriber_ids`); without them the production scoring batch (subscriber_features +
exclusions) is enough. A subscriber the model never saw in training (cold start, or an index
beyond its table) is scored from the features alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pyspark import TaskContext

from telcorec.core.columns import Col
from telcorec.models.encoding import Vocabulary
from telcorec.models.ncf.codes import pandas_codes
from telcorec.models.ncf.model import NCFRecommender


@dataclass
class NCFScorer:
    name: str
    version: str
    offer_ids: list[str]
    params: dict
    state: dict[str, np.ndarray]
    user_vocab: Vocabulary | None
    item_codes: np.ndarray | None
    _model: NCFRecommender | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_model(cls, model: NCFRecommender, meta: dict) -> "NCFScorer":
        vocab = meta.get("user_vocabulary")
        item_codes = meta.get("item_codes")
        return cls(name=meta["model"], version=meta["model_version"],
                   offer_ids=list(meta["offer_ids"]), params=model.get_params(),
                   state={k: v.detach().cpu().numpy().copy()
                          for k, v in model.network.state_dict().items()},
                   user_vocab=None if vocab is None else Vocabulary.from_json(vocab),
                   item_codes=None if item_codes is None else np.asarray(item_codes, np.int64))

    @classmethod
    def load(cls, model_dir: Path) -> "NCFScorer":
        model, meta = NCFRecommender.load(model_dir)
        return cls.from_model(model, meta)

    def save(self, directory: Path) -> Path:
        """model.pt + metadata.json with what `load` needs (the NCF stage's save adds its
        training record to the same metadata)."""
        meta = {"model": self.name, "model_version": self.version,
                "offer_ids": list(self.offer_ids),
                "user_vocabulary": None if self.user_vocab is None else self.user_vocab.to_json(),
                "item_codes": None if self.item_codes is None else self.item_codes.tolist()}
        return self.model().save(directory, meta)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None}  # broadcast arrays, not the torch module

    def model(self) -> NCFRecommender:
        if self._model is None:
            model = NCFRecommender(**self.params)
            model.network.load_state_dict({k: torch.from_numpy(v) for k, v in self.state.items()})
            self._model = model
            context = TaskContext.get()
            if context is not None:  # on an executor: one torch thread per task core
                torch.set_num_threads(max(1, context.cpus()))
        return self._model

    def score(self, batch: pd.DataFrame) -> np.ndarray:
        if Col.SUBSCRIBER_IDX in batch:
            users = batch[Col.SUBSCRIBER_IDX].to_numpy(np.int64)
        elif not self.params.get("subscriber_ids", True):
            users = np.full(len(batch), -1, dtype=np.int64)  # unused: features only
        else:
            raise ValueError(f"{self.name} has subscriber ID embeddings: join subscriber_index "
                             f"for the column '{Col.SUBSCRIBER_IDX}' before scoring")
        codes = None if self.user_vocab is None else pandas_codes(batch, self.user_vocab)
        return self.model().scores(users, codes, self.item_codes)
