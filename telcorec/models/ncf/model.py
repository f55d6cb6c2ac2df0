"""NCF models behind the project's model contract: keyword-only hyperparameters, `get_params()`,
scores for every (subscriber, offer) pair, and save/load as a `state_dict` plus JSON (read back
with `torch.load(weights_only=True)`, never pickle).

Training itself (the epoch loop) lives in `telcorec.ncf.trainer`; `train_step` here is the one
optimisation step both the distributed trainer and the in-memory `fit` use.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn

from telcorec.core.config import NCF_KINDS
from telcorec.core.config import model_name as family_model_name
from telcorec.core.exceptions import ModelError
from telcorec.io import artifacts
from telcorec.models.ncf import networks
from telcorec.models.ncf.losses import log_loss

KINDS = NCF_KINDS
WEIGHTS = "model.pt"
SCORE_CHUNK_PAIRS = 1 << 16  # (subscriber, offer) pairs per forward pass when scoring


def model_name(kind: str) -> str:
    """The name in the `metrics` table and under warehouse/models: ncf_gmf, ncf_mlp, ncf_neumf."""
    return family_model_name("ncf", kind)


class NCFRecommender:
    def __init__(self, *, kind: str = "neumf", n_users: int, n_items: int,
                 n_user_tokens: int = 0, n_item_tokens: int = 0, embedding_dim: int = 32,
                 mlp_layers: Iterable[int] = (64, 32, 16, 8), subscriber_ids: bool = True,
                 seed: int = 42) -> None:
        layers = tuple(int(x) for x in mlp_layers)
        if kind not in KINDS:
            raise ValueError(f"NCF model kind {kind!r} is unknown; use one of {KINDS}")
        if layers[0] % 2:
            raise ValueError(f"mlp_layers[0] = {layers[0]} must be even (it is the two "
                             "embeddings concatenated); set ncf.mlp_layers accordingly")
        self._params = dict(kind=kind, n_users=int(n_users), n_items=int(n_items),
                            n_user_tokens=int(n_user_tokens), n_item_tokens=int(n_item_tokens),
                            embedding_dim=int(embedding_dim), mlp_layers=list(layers),
                            subscriber_ids=bool(subscriber_ids), seed=int(seed))
        if not subscriber_ids and not n_user_tokens:
            raise ValueError("a model without subscriber ID embeddings needs subscriber "
                             "features: set ncf.subscriber_ids or ncf.use_features to true")
        # without subscriber IDs the subscriber side is its feature embeddings alone
        sizes = dict(n_users=n_users if subscriber_ids else 0, n_items=n_items,
                     n_user_tokens=n_user_tokens, n_item_tokens=n_item_tokens)
        with torch.random.fork_rng(devices=[]):  # same seed -> same weights; global RNG untouched
            torch.manual_seed(seed)
            if kind == "gmf":
                self.network: nn.Module = networks.GMF(**sizes, dim=embedding_dim)
            elif kind == "mlp":
                self.network = networks.MLP(**sizes, layers=layers)
            else:
                self.network = networks.NeuMF(**sizes, dim=embedding_dim, layers=layers)

    @property
    def kind(self) -> str:
        return self._params["kind"]

    @property
    def n_items(self) -> int:
        return self._params["n_items"]

    def get_params(self) -> dict:
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self._params.items()}

    def mark_seen(self, seen_users: np.ndarray) -> None:
        """Which subscriber indices have training rows; the others are scored from features."""
        seen = torch.as_tensor(np.asarray(seen_users, dtype=bool))
        for name, module in self.network.named_modules():
            if name.split(".")[-1] == "user" and module.n_ids:
                module.seen.copy_(seen)

    def scores(self, users: np.ndarray, user_codes: np.ndarray | None,
               item_codes: np.ndarray | None) -> np.ndarray:
        """Logit of every (subscriber, offer) pair: len(users) x n_items, offer_idx order."""
        return score_matrix(self.network, users, user_codes, item_codes, self.n_items)

    def fit(self, examples: dict[str, np.ndarray], item_codes: np.ndarray | None, *,
            epochs: int, batch_size: int, learning_rate: float, seed: int = 42) -> list[float]:
        """Train in this process from in-memory arrays (subscriber_idx, offer_idx, label and
        optional user_codes); returns the mean loss per epoch. The distributed path is
        `telcorec.ncf.trainer`; this one is the in-memory baseline it is compared with."""
        tensors = {k: torch.as_tensor(v) for k, v in examples.items()}
        icodes = None if item_codes is None else torch.as_tensor(item_codes, dtype=torch.long)
        optimizer = torch.optim.Adam(trainable(self.network), lr=learning_rate)
        generator = torch.Generator().manual_seed(seed)
        n = len(tensors["label"])
        losses = []
        for _ in range(epochs):
            order = torch.randperm(n, generator=generator)
            total = 0.0
            steps = n // batch_size
            for s in range(steps):
                idx = order[s * batch_size:(s + 1) * batch_size]
                batch = {k: v[idx] for k, v in tensors.items()}
                total += train_step(self.network, optimizer, batch, icodes)
            losses.append(total / max(steps, 1))
        return losses

    def save(self, directory: Path, metadata: dict) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.network.state_dict(), directory / WEIGHTS)
        artifacts.write_metadata(directory, WEIGHTS, "weights_sha256",
                                 {**metadata, "params": self.get_params()})
        return directory

    @classmethod
    def load(cls, directory: Path) -> tuple["NCFRecommender", dict]:
        meta = artifacts.read_metadata(directory, WEIGHTS, "weights_sha256", "NCF model", "ncf")
        model = cls(**meta["params"])
        model.network.load_state_dict(load_weights(directory / WEIGHTS))
        return model, meta


def load_weights(path: Path) -> dict:
    """A state_dict or checkpoint saved with torch.save, read with `weights_only=True`: only
    tensors, numbers, strings and containers of them are rebuilt, so a crafted file whose
    pickle would call anything else is refused before any of it runs."""
    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError:
        # not chained: torch's text suggests weights_only=False, which is what must never happen
        raise ModelError(f"{path} holds Python objects besides tensors and was refused (loading "
                         "it could run code). Delete it and retrain; never load it with "
                         "weights_only=False.") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise ModelError(f"{path} is not a readable PyTorch weights file "
                         f"({type(exc).__name__}); delete it and retrain") from None


def score_matrix(network: nn.Module, users: np.ndarray, user_codes: np.ndarray | None,
                 item_codes: np.ndarray | None, n_items: int) -> np.ndarray:
    """Logits of every user x every offer, through the network in vectorised chunks of
    SCORE_CHUNK_PAIRS pairs (len(users) x n_items, float32)."""
    n, m = len(users), n_items
    out = np.empty((n, m), dtype=np.float32)
    step = max(1, SCORE_CHUNK_PAIRS // m)
    items = torch.arange(m)
    users_t = torch.as_tensor(np.asarray(users, dtype=np.int64))
    ucodes = None if user_codes is None else torch.as_tensor(np.asarray(user_codes, np.int64))
    icodes = None if item_codes is None else torch.as_tensor(np.asarray(item_codes, np.int64))
    was_training = network.training
    network.eval()
    with torch.inference_mode():
        for start in range(0, n, step):
            rows = users_t[start:start + step]
            r = len(rows)
            logits = network(rows.repeat_interleave(m),
                             None if ucodes is None else
                             ucodes[start:start + step].repeat_interleave(m, dim=0),
                             items.repeat(r),
                             None if icodes is None else icodes.repeat(r, 1))
            out[start:start + r] = logits.view(r, m).numpy()
    network.train(was_training)
    return out


def trainable(network: nn.Module) -> list[nn.Parameter]:
    return [p for p in network.parameters() if p.requires_grad]


def train_step(network: nn.Module, optimizer: torch.optim.Optimizer,
               batch: dict[str, torch.Tensor], item_codes: torch.Tensor | None) -> float:
    """One Adam step on a batch {subscriber_idx, offer_idx, label[, user_codes]}; the loss."""
    items = batch["offer_idx"].long()
    logits = network(batch["subscriber_idx"], batch.get("user_codes"), items,
                     None if item_codes is None else item_codes[items])
    loss = log_loss(logits, batch["label"])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def pretrained_neumf(gmf: NCFRecommender, mlp: NCFRecommender, alpha: float,
                     seed: int) -> NCFRecommender:
    """NeuMF initialised from trained GMF and MLP as in the paper: both branches copied, the
    output layer the concatenation of alpha x GMF's and (1 - alpha) x MLP's."""
    g, m = gmf.get_params(), mlp.get_params()
    if gmf.kind != "gmf" or mlp.kind != "mlp":
        raise ValueError("pretrained_neumf needs a GMF and an MLP model, in that order")
    sizes = {k: g[k] for k in ("n_users", "n_items", "n_user_tokens", "n_item_tokens")}
    if g["subscriber_ids"] != m["subscriber_ids"]:
        raise ValueError("GMF and MLP disagree on subscriber_ids; train both with one config")
    if any(m[k] != v for k, v in sizes.items()):
        raise ValueError(f"GMF and MLP were trained on different data sizes: {g} vs {m}")
    neumf = NCFRecommender(kind="neumf", **sizes, embedding_dim=g["embedding_dim"],
                           mlp_layers=m["mlp_layers"], subscriber_ids=g["subscriber_ids"],
                           seed=seed)
    net = neumf.network
    net.gmf.load_state_dict(gmf.network.state_dict())
    net.mlp.load_state_dict(mlp.network.state_dict())
    with torch.no_grad():
        net.out.weight.copy_(torch.cat([alpha * gmf.network.out.weight,
                                        (1 - alpha) * mlp.network.out.weight], dim=1))
        net.out.bias.copy_(alpha * gmf.network.out.bias + (1 - alpha) * mlp.network.out.bias)
    return neumf

