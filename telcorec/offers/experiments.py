"""A/B arms: every subscriber lands deterministically in one arm of the experiment.

A subscriber's bucket is u = (first 8 hex digits of SHA-256("<salt>:<subscriber_id>")) / 16^8,
uniform in [0, 1). The arms, sorted by name, own consecutive slices of [0, 1) sized by their
shares (config `experiment.arms`). The same salt and id give the same arm in every run and on
any partitioning, and any tool with SHA-256 can recompute it, e.g. in Python:
`int(hashlib.sha256(f"{salt}:{subscriber_id}".encode()).hexdigest()[:8], 16) / 2**32`.
A new salt starts a new experiment: every subscriber is drawn again.
"""
from __future__ import annotations

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from telcorec.core.columns import Col
from telcorec.core.config import ExperimentConfig

_HEX_DIGITS = 8


def bucket(subscriber_id: Column, salt: str) -> Column:
    """The subscriber's position in [0, 1) for this salt."""
    digest = F.sha2(F.concat(F.lit(f"{salt}:"), subscriber_id.cast("string")), 256)
    return (F.conv(F.substring(digest, 1, _HEX_DIGITS), 16, 10).cast("long")
            / F.lit(float(16 ** _HEX_DIGITS)))


def arm(subscriber_id: Column, cfg: ExperimentConfig) -> Column:
    """The arm whose slice of [0, 1) holds the subscriber's bucket."""
    names = sorted(cfg.arms)
    edges = np.cumsum([cfg.arms[n] for n in names])
    u = bucket(subscriber_id, cfg.salt)
    # rounding can leave the last edge a hair below 1: the last arm with a share takes the rest
    expr = F.lit([n for n in names if cfg.arms[n] > 0][-1])
    for name, edge in reversed(list(zip(names, edges))):
        if cfg.arms[name] > 0:
            expr = F.when(u < F.lit(float(edge)), F.lit(name)).otherwise(expr)
    return expr


def with_arm(subscribers: DataFrame, cfg: ExperimentConfig) -> DataFrame:
    return subscribers.withColumn(Col.ARM, arm(F.col(Col.SUBSCRIBER_ID), cfg))
