"""The NCF networks (He et al., "Neural Collaborative Filtering", WWW 2017) as nn.Modules only.

Every network maps (subscriber index, subscriber feature codes, offer index, offer feature codes)
to one logit per pair. Training, losses, data and persistence live elsewhere in `telcorec.ncf`.

`Representation` is the "feature integration" of the project's seed guide: an ID embedding plus
the mean of the embeddings of the row's categorical feature codes (code 0 = unknown value). An
index the network never saw in training (the `seen` buffer is False for it, or it lies outside
the table) uses the padding row, which stays zero, so a cold-start subscriber is represented by
their features alone. With n_ids = 0 there are no ID embeddings at all (features only).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

EMBEDDING_STD = 0.01  # the paper's initialisation of embeddings: N(0, 0.01)


class Representation(nn.Module):
    """ID embedding (+ mean feature embedding) of subscribers or offers; n_ids = 0: no IDs."""

    def __init__(self, n_ids: int, n_tokens: int, dim: int) -> None:
        super().__init__()
        if not n_ids and not n_tokens:
            raise ValueError("a representation needs IDs or features (both are empty)")
        self.n_ids = n_ids
        self.ids = nn.Embedding(n_ids + 1, dim, padding_idx=0) if n_ids else None
        self.features = nn.Embedding(n_tokens + 1, dim, padding_idx=0) if n_tokens else None
        self.register_buffer("seen", torch.ones(n_ids, dtype=torch.bool))
        for table in (self.ids, self.features):
            if table is not None:
                nn.init.normal_(table.weight, std=EMBEDDING_STD)
                with torch.no_grad():
                    table.weight[0].zero_()

    def rows(self, index: torch.Tensor) -> torch.Tensor:
        """Embedding row of each index: index + 1 when seen in training, else the zero row 0."""
        index = index.long()
        inside = (index >= 0) & (index < self.n_ids)
        safe = torch.where(inside, index, torch.zeros_like(index))
        return torch.where(inside & self.seen[safe], safe + 1, torch.zeros_like(index))

    def forward(self, index: torch.Tensor, codes: torch.Tensor | None) -> torch.Tensor:
        out = None if self.ids is None else self.ids(self.rows(index))
        if self.features is not None:
            if codes is None:
                raise ValueError("this model was trained with feature embeddings; pass the codes")
            codes = codes.long()
            known = (codes > 0).sum(dim=1, keepdim=True).clamp(min=1)
            mean = self.features(codes).sum(dim=1) / known
            out = mean if out is None else out + mean
        return out


class GMF(nn.Module):
    """Generalized matrix factorisation: a learned weighting of the element-wise product."""

    def __init__(self, *, n_users: int, n_items: int, n_user_tokens: int, n_item_tokens: int,
                 dim: int) -> None:
        super().__init__()
        self.user = Representation(n_users, n_user_tokens, dim)
        self.item = Representation(n_items, n_item_tokens, dim)
        self.out = nn.Linear(dim, 1)

    def hidden(self, users, user_codes, items, item_codes) -> torch.Tensor:
        return self.user(users, user_codes) * self.item(items, item_codes)

    def forward(self, users, user_codes, items, item_codes) -> torch.Tensor:
        return self.out(self.hidden(users, user_codes, items, item_codes)).squeeze(-1)


def tower(layers: Sequence[int]) -> nn.Sequential:
    """ReLU layers layers[0] -> layers[1] -> ... -> layers[-1]."""
    blocks: list[nn.Module] = []
    for size_in, size_out in zip(layers[:-1], layers[1:]):
        blocks += [nn.Linear(size_in, size_out), nn.ReLU()]
    return nn.Sequential(*blocks)


class MLP(nn.Module):
    """Concatenated embeddings (layers[0] / 2 each) through a ReLU tower."""

    def __init__(self, *, n_users: int, n_items: int, n_user_tokens: int, n_item_tokens: int,
                 layers: Sequence[int]) -> None:
        super().__init__()
        half = layers[0] // 2
        self.user = Representation(n_users, n_user_tokens, half)
        self.item = Representation(n_items, n_item_tokens, half)
        self.tower = tower(layers)
        self.out = nn.Linear(layers[-1], 1)

    def hidden(self, users, user_codes, items, item_codes) -> torch.Tensor:
        pair = torch.cat([self.user(users, user_codes), self.item(items, item_codes)], dim=-1)
        return self.tower(pair)

    def forward(self, users, user_codes, items, item_codes) -> torch.Tensor:
        return self.out(self.hidden(users, user_codes, items, item_codes)).squeeze(-1)


class NeuMF(nn.Module):
    """GMF and MLP with separate embeddings, their last hidden layers concatenated."""

    def __init__(self, *, n_users: int, n_items: int, n_user_tokens: int, n_item_tokens: int,
                 dim: int, layers: Sequence[int]) -> None:
        super().__init__()
        sizes = dict(n_users=n_users, n_items=n_items, n_user_tokens=n_user_tokens,
                     n_item_tokens=n_item_tokens)
        self.gmf = GMF(**sizes, dim=dim)
        self.mlp = MLP(**sizes, layers=layers)
        self.out = nn.Linear(dim + layers[-1], 1)
        # the branches' own output layers are not used by NeuMF (kept so that a pretrained
        # GMF or MLP state loads into its branch unchanged)
        self.gmf.out.requires_grad_(False)
        self.mlp.out.requires_grad_(False)

    def forward(self, users, user_codes, items, item_codes) -> torch.Tensor:
        both = torch.cat([self.gmf.hidden(users, user_codes, items, item_codes),
                          self.mlp.hidden(users, user_codes, items, item_codes)], dim=-1)
        return self.out(both).squeeze(-1)
