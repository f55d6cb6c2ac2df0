"""Categorical features as integer codes for the NCF feature embeddings.

Code of (column, value) = 1 + position of the token "column=value" in the fitted
`telcorec.encoding.Vocabulary`; 0 means unknown (a value first seen after training, or NULL)
and maps to the embedding's zero padding row. The same codes come out of Spark (training
examples) and pandas (scoring on executors); tests check the two agree.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F

from telcorec.models.encoding import Vocabulary

USER_CODE_PREFIX = "u_"


def code_columns(vocab: Vocabulary, prefix: str = USER_CODE_PREFIX) -> list[str]:
    return [f"{prefix}{i}" for i in range(len(vocab.columns))]


def spark_codes(vocab: Vocabulary, prefix: str = USER_CODE_PREFIX) -> list[Column]:
    """One int column per vocabulary column, named prefix0, prefix1, ..."""
    pairs = [x for i, token in enumerate(vocab.tokens) for x in (F.lit(token), F.lit(i + 1))]
    lookup = F.create_map(*pairs) if pairs else None
    out = []
    for name, column in zip(code_columns(vocab, prefix), vocab.columns):
        token = F.concat(F.lit(f"{column}="), F.col(column).cast("string"))
        code = F.lit(0) if lookup is None else F.coalesce(lookup[token], F.lit(0))
        out.append(code.cast("int").alias(name))
    return out


def pandas_codes(frame: pd.DataFrame, vocab: Vocabulary) -> np.ndarray:
    """(len(frame) x len(vocab.columns)) int64 codes."""
    lookup = pd.Series(np.arange(1, len(vocab.tokens) + 1), index=pd.Index(vocab.tokens))
    out = np.zeros((len(frame), len(vocab.columns)), dtype=np.int64)
    for j, column in enumerate(vocab.columns):
        values = frame[column]
        tokens = (column + "=" + values.astype(str)).to_numpy(dtype=object)
        codes = lookup.reindex(tokens).to_numpy()
        known = ~np.isnan(codes) & values.notna().to_numpy()
        out[known, j] = codes[known].astype(np.int64)
    return out
