"""Losses as pure functions of logits and labels."""
from __future__ import annotations

import torch
from torch.nn import functional as F


def log_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The NCF paper's objective: binary cross-entropy of sigmoid(logit) against 1/0 labels."""
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
