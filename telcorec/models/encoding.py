"""Categorical features -> sparse indicator rows: one encoder for training and for scoring.

A vocabulary is the sorted list of "column=value" tokens. Rows are normalised to sum to 1 (as
LightFM's own Dataset does), so a representation is the mean of its features' embeddings. Tokens
the vocabulary does not know (a value first seen after training) are ignored, never an error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


@dataclass(frozen=True)
class Vocabulary:
    columns: tuple[str, ...]
    tokens: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.tokens)

    def to_json(self) -> dict:
        return {"columns": list(self.columns), "tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, data: dict) -> "Vocabulary":
        return cls(tuple(data["columns"]), tuple(data["tokens"]))

    def encode(self, frame: pd.DataFrame, identity: pd.Series | None = None) -> sp.csr_matrix:
        """Row-normalised indicator matrix (len(frame) x len(self)), one row per frame row."""
        lookup = pd.Series(np.arange(len(self.tokens)), index=pd.Index(self.tokens))
        n = len(frame)
        row_parts, col_parts = [], []
        sources = [(c, frame[c]) for c in self.columns]
        if identity is not None:
            sources.append(("id", identity))
        for column, values in sources:
            tokens = column + "=" + values.astype(str).to_numpy(dtype=object)
            idx = lookup.reindex(tokens).to_numpy()
            known = ~np.isnan(idx)
            row_parts.append(np.flatnonzero(known))
            col_parts.append(idx[known].astype(np.int64))
        rows = np.concatenate(row_parts) if row_parts else np.empty(0, np.int64)
        cols = np.concatenate(col_parts) if col_parts else np.empty(0, np.int64)
        counts = np.bincount(rows, minlength=n).astype(np.float32)
        data = 1.0 / counts[rows]
        return sp.csr_matrix((data.astype(np.float32), (rows, cols)), shape=(n, len(self.tokens)))


def fit_vocabulary(df: DataFrame, columns: tuple[str, ...],
                   identity: str | None = None) -> Vocabulary:
    """Distinct "column=value" tokens; the result grows with categories, not with rows."""
    token_sets = [F.concat(F.lit(f"{c}="), F.col(c).cast("string")) for c in columns]
    if identity is not None:
        token_sets.append(F.concat(F.lit("id="), F.col(identity).cast("string")))
    tokens = (df.select(F.explode(F.array(*token_sets)).alias("token"))
              .where(F.col("token").isNotNull()).distinct().collect())
    return Vocabulary(tuple(columns), tuple(sorted(r["token"] for r in tokens)))
