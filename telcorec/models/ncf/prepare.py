"""NCF training inputs prepared in Spark: the run date's tables, the per-epoch examples
materialised by Petastorm, and the small arrays every worker reads (validation set with its
sampled offers, feature codes of the offers, which subscribers have training rows)."""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from telcorec.core.columns import OFFER_CATEGORICALS, SUBSCRIBER_CATEGORICALS, Col
from telcorec.core.config import Config, NCFConfig
from telcorec.io.warehouse import Warehouse
from telcorec.models import sampled_ranking
from telcorec.models.encoding import Vocabulary, fit_vocabulary
from telcorec.models.ncf import examples, feed
from telcorec.models.ncf.codes import code_columns, pandas_codes, spark_codes

log = logging.getLogger(__name__)
_VALIDATION_SALT = 9001


def rank_batch(cfg: NCFConfig) -> int:
    """ncf.batch_size is the examples per optimiser step, split evenly across the processes."""
    return cfg.batch_size // cfg.processes


@dataclass
class Inputs:
    """The run date's tables, read once."""
    features: DataFrame
    offers: pd.DataFrame        # the catalogue, offer_idx order
    index: DataFrame
    interactions: DataFrame
    n_users: int
    user_vocab: Vocabulary | None
    item_vocab: Vocabulary | None


@dataclass
class Examples:
    """Per-epoch Petastorm converters and the arrays every worker reads."""
    converters: tuple
    steps_per_epoch: int
    rows_per_epoch: int
    arrays: dict[str, np.ndarray]
    code_columns: tuple[str, ...]
    fingerprint: str


def read_inputs(read: Callable[[str], DataFrame], cfg: Config) -> Inputs:
    """The run date's tables NCF trains on; `read(name)` reads one (StageContext.read)."""
    features = read("subscriber_features")
    offer_df = read("offer_features")
    index = read("subscriber_index")
    interactions = read("interactions")
    offers = offer_df.toPandas().sort_values(Col.OFFER_IDX).reset_index(drop=True)  # catalogue
    if not np.array_equal(offers[Col.OFFER_IDX].to_numpy(), np.arange(len(offers))):
        raise ValueError("offer_features.offer_idx must be 0..offers-1; rerun the features stage")
    # the embedding table is sized by subscribers, so its size is a number we use
    top = index.agg(F.max(Col.SUBSCRIBER_IDX)).first()[0]
    n_users = 0 if top is None else int(top) + 1
    use = cfg.ncf.use_features
    return Inputs(features, offers, index, interactions, n_users,
                  fit_vocabulary(features, SUBSCRIBER_CATEGORICALS) if use else None,
                  fit_vocabulary(offer_df, OFFER_CATEGORICALS) if use else None)


def _user_codes(inputs: Inputs) -> DataFrame | None:
    if inputs.user_vocab is None:
        return None
    return (inputs.features.join(inputs.index.select(Col.SUBSCRIBER_ID, Col.SUBSCRIBER_IDX),
                                 on=Col.SUBSCRIBER_ID, how="inner")
            .select(Col.SUBSCRIBER_IDX, *spark_codes(inputs.user_vocab)))


def _validation_arrays(validation: DataFrame, held: DataFrame, codes: DataFrame | None,
                       n_offers: int, cfg: Config) -> dict[str, np.ndarray]:
    rows = validation.join(held, on=Col.SUBSCRIBER_IDX, how="inner")
    if codes is not None:
        rows = rows.join(codes, on=Col.SUBSCRIBER_IDX, how="left").fillna(0)
    frame = rows.orderBy(Col.SUBSCRIBER_IDX).toPandas()  # at most validation_subscribers rows
    users = frame[Col.SUBSCRIBER_IDX].to_numpy(np.int64)
    test = frame[Col.OFFER_IDX].to_numpy(np.int64)
    negatives = sampled_ranking.sample_negatives(cfg.seed + _VALIDATION_SALT, users,
                                                  list(frame[examples.HELD]), n_offers,
                                                  cfg.ncf.eval_negatives)
    out = {"val_users": users, "val_test": test, "val_negatives": negatives.astype(np.int64)}
    if codes is not None:
        cols = [c for c in codes.columns if c != Col.SUBSCRIBER_IDX]
        out["val_codes"] = frame[cols].to_numpy(np.int64).reshape(len(frame), len(cols))
    return out


def _data_fingerprint(positives: DataFrame, inputs: Inputs, extra: dict) -> tuple[int, str]:
    row = positives.agg(F.count(F.lit(1)).alias("n"), F.bit_xor(
        F.xxhash64(Col.SUBSCRIBER_IDX, Col.OFFER_IDX)).alias("x")).first()
    blob = json.dumps({"positives": row["n"], "xor": row["x"], "users": inputs.n_users,
                       "offers": inputs.offers[Col.OFFER_ID].tolist(),
                       "user_vocab": None if inputs.user_vocab is None else
                       inputs.user_vocab.to_json(), **extra}, sort_keys=True, default=str)
    return int(row["n"]), hashlib.sha256(blob.encode()).hexdigest()[:16]


def _seen_users(positives: DataFrame, n_users: int) -> np.ndarray:
    """A flag per subscriber index: has training rows. Only for ID embeddings, whose table is
    sized by subscribers anyway (so is this array); unseen ones are scored from features."""
    seen = np.zeros(n_users, dtype=bool)
    idx = positives.select(Col.SUBSCRIBER_IDX).distinct().toPandas()[Col.SUBSCRIBER_IDX]
    seen[idx.to_numpy(np.int64)] = True
    return seen


def build_examples(spark: SparkSession, cfg: Config, wh: Warehouse, inputs: Inputs) -> Examples:
    """Positives, validation, negatives per epoch, each epoch materialised by Petastorm."""
    ncf = cfg.ncf
    pairs = examples.train_pairs(inputs.interactions).persist()
    held = examples.held_offers(pairs).persist()
    positives, validation = examples.validation_split(pairs, ncf.validation_subscribers, cfg.seed)
    positives = positives.persist()
    codes = _user_codes(inputs)
    codes = codes.persist() if codes is not None else None
    n_offers = len(inputs.offers)
    n_pos, fingerprint = _data_fingerprint(positives, inputs, {
        "negatives": ncf.negatives, "resample": ncf.resample_negatives, "seed": cfg.seed,
        "validation": ncf.validation_subscribers, "eval_negatives": ncf.eval_negatives})
    if n_pos == 0:
        raise ValueError("no training interactions for this run date: nothing to train NCF on")
    arrays = _validation_arrays(validation, held, codes, n_offers, cfg)
    arrays["seen_users"] = _seen_users(positives, inputs.n_users) if ncf.subscriber_ids \
        else np.zeros(0, dtype=bool)
    if inputs.item_vocab is not None:
        arrays["item_codes"] = pandas_codes(inputs.offers, inputs.item_vocab)
    files = feed.file_count(n_pos * (1 + ncf.negatives), ncf.processes)
    feed.use_cache_under(spark, wh.root)
    epochs = range(ncf.epochs) if ncf.resample_negatives else [0]
    converters = []
    try:
        for epoch in epochs:
            df = examples.epoch_examples(positives, held, codes, n_offers, ncf.negatives,
                                         cfg.seed, epoch, files)
            converters.append(feed.make_converter(df))
    except Exception:
        for converter in converters:
            converter.delete()
        raise
    finally:
        for frame in (pairs, held, positives, codes):
            if frame is not None:
                frame.unpersist()
    group_rows = [feed.row_group_rows(c.file_urls) for c in converters]
    steps = min(feed.steps_per_epoch(g, ncf.processes, rank_batch(ncf)) for g in group_rows)
    if not ncf.resample_negatives:
        converters = converters * ncf.epochs
    log.info("ncf examples: %d positives, %d rows per epoch in %d files, %d steps per epoch "
             "(%d processes x batch %d)", n_pos, sum(group_rows[0]), files, steps,
             ncf.processes, rank_batch(ncf))
    return Examples(tuple(converters), steps, sum(group_rows[0]), arrays,
                    tuple(code_columns(inputs.user_vocab)) if inputs.user_vocab else (),
                    fingerprint)
