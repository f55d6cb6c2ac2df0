"""LightFM hyperparameter search and ensemble weights, measured on validation.

Search (`tuning.enabled`): every trial of a grid or seeded random search over `tuning.space`
is one Spark task. The first shard's training pairs are laid out once per trial, one trial per
partition (shards.one_shard_per_partition keyed by trial), and each task fits the tuned
variant on them with the early-stopping validation subscribers held out (the same split, code
and seed the train stage uses), returning one small row. Why one shard: every production model
is trained on one shard, so a trial sees the data size a production model sees; shard 0 is a
hash sample of subscribers. The shuffle holds trials x that shard's training rows. The rows go
to the `trials` Delta table (run_date partition replaced on a rerun) and the best trial to
warehouse/tuning/run_date=.../best.json, which the train stage uses with
`train.lightfm_from_tuning: true`.

Ensemble weights (`ensemble.tune_weights`): in one task, each LightFM ensemble member is fitted
on the same shard without its validation subscribers (the early-stopping probe fit), scores
them once, and every weight combination of `ensemble.weight_grid` (normalised, at most
`ensemble.max_combinations`) is measured by precision@k on their held-out pairs, per mode, with
numpy. The test split is never read. Members without a LightFM variant (NCF, trained later)
keep their configured weight; the LightFM members' weights found are scaled to the total they
were configured with. Written to warehouse/models/run_date=.../ensemble_weights.json, which
scoring.load_scorer uses.
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import time
from dataclasses import asdict

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from telcorec.core import schemas
from telcorec.core.columns import LIGHTFM_KNOBS, Col
from telcorec.core.config import (
    Config,
    EarlyStoppingConfig,
    TuningConfig,
    model_name,
    variant_model_name,
)
from telcorec.core.exceptions import DataError
from telcorec.io import artifacts, delta_rs, runs
from telcorec.io.warehouse import Warehouse
from telcorec.models import shards
from telcorec.models.encoding import Vocabulary
from telcorec.models.lightfm import training
from telcorec.models.lightfm.model import LightFMRecommender, representations, scores
from telcorec.models.scoring import row_minmax, row_ranks, top_k

log = logging.getLogger(__name__)
TRIAL_RESULT = T.StructType([
    T.StructField(Col.TRIAL, T.IntegerType()), T.StructField(Col.VALUE, T.DoubleType()),
    T.StructField(Col.BEST_EPOCH, T.IntegerType()), T.StructField(Col.SECONDS, T.DoubleType()),
    T.StructField(Col.TRAIN_PAIRS, T.LongType()), T.StructField(Col.VALIDATION_PAIRS, T.LongType()),
])
COMBO = "combination"
WEIGHT_RESULT = T.StructType([
    T.StructField("mode", T.StringType()), T.StructField(COMBO, T.IntegerType()),
    T.StructField(Col.VALUE, T.DoubleType()), T.StructField("users", T.LongType()),
])


# ---- trials -----------------------------------------------------------------------------------

def _typed(knob: str, value: float) -> int | float:
    return LIGHTFM_KNOBS[knob](value)


def trial_grid(tuning: TuningConfig) -> list[dict]:
    """The knob values of every trial, in a stable order. grid: every combination of
    `space`; random: `trials` seeded draws, without repeats when every knob is a list."""
    knobs = list(tuning.space)
    if tuning.method == "grid":
        return [{k: _typed(k, v) for k, v in zip(knobs, combo)}
                for combo in itertools.product(*(tuning.space[k] for k in knobs))]
    rng = np.random.default_rng(tuning.seed)
    if not tuning.ranges:
        shape = tuple(len(tuning.space[k]) for k in knobs)
        picks = rng.choice(tuning.grid_size(), size=min(tuning.trials, tuning.grid_size()),
                           replace=False)
        return [{k: _typed(k, tuning.space[k][i]) for k, i in
                 zip(knobs, np.unravel_index(int(p), shape))} for p in picks]
    return [{**{k: _typed(k, tuning.space[k][rng.integers(len(tuning.space[k]))]) for k in knobs},
             **{k: _draw(rng, k, *bounds) for k, bounds in tuning.ranges.items()}}
            for _ in range(tuning.trials)]


def _draw(rng: np.random.Generator, knob: str, low: float, high: float) -> int | float:
    """Integers uniformly in [low, high]; rates log-uniformly (their scale is what matters),
    or uniformly when the range starts at 0."""
    if LIGHTFM_KNOBS[knob] is int:
        return int(rng.integers(int(low), int(high) + 1))
    if low > 0:
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return float(rng.uniform(low, high))


def _validation_fit(params: dict, data: training.ShardData, stopping: EarlyStoppingConfig,
                    threads: int) -> LightFMRecommender:
    """Fit without the validation subscribers, measuring precision@k on them every
    `stopping.every` epochs (only after the last epoch when early stopping is off)."""
    if data.validation.nnz == 0:
        raise DataError(f"shard {data.shard} has no validation subscribers to tune on: raise "
                        "train.early_stopping.validation_share or use more subscribers")
    return LightFMRecommender(**params).fit(
        data.probe.interactions, data.probe.user_features, data.item_features,
        num_threads=threads, validation=data.validation, exclude=data.exclude,
        every=stopping.every or params["epochs"], patience=stopping.patience, k=stopping.k)


def make_trial_runner(trials: list[dict], stopping: EarlyStoppingConfig, user_vocab: Vocabulary,
                      item_features: sp.csr_matrix, seed: int, history_weight: float | None):
    """The function each task runs: one trial (the group's `trial` id) on the shard's rows."""

    def run_trial(pdf: pd.DataFrame) -> pd.DataFrame:
        trial = int(pdf[Col.TRIAL].iloc[0])
        started = time.monotonic()
        data = training.shard_matrices(pdf, user_vocab, item_features, stopping, seed,
                                       validate=True, history_weight=history_weight)
        model = _validation_fit(trials[trial], data, stopping, training.task_threads())
        value = max((v for _, v in model.history), default=0.0)
        return pd.DataFrame([{Col.TRIAL: trial, Col.VALUE: value, Col.BEST_EPOCH: model.best_epoch,
                              Col.SECONDS: time.monotonic() - started,
                              Col.TRAIN_PAIRS: data.probe.interactions.nnz,
                              Col.VALIDATION_PAIRS: data.validation_pairs}])

    return run_trial


def run_trials(rows: DataFrame, trials: list[dict], stopping: EarlyStoppingConfig,
               user_vocab: Vocabulary, item_features: sp.csr_matrix, seed: int,
               history_weight: float | None = None) -> list[dict]:
    """Every trial in a task of its own; the driver gets one small row per trial."""
    ids = rows.sparkSession.range(len(trials)).select(F.col("id").cast("int").alias(Col.TRIAL))
    laid_out = shards.one_shard_per_partition(rows.crossJoin(F.broadcast(ids)), len(trials),
                                                column=Col.TRIAL)
    runner = make_trial_runner(trials, stopping, user_vocab, item_features, seed, history_weight)
    results = (laid_out.groupBy(shards.PARTITION_KEY).applyInPandas(runner, TRIAL_RESULT)
               .collect())
    return sorted((r.asDict() for r in results), key=lambda r: r[Col.TRIAL])


def trials_table(results: list[dict], trials: list[dict], model: str, metric: str,
                 run_id: str, run_date: dt.date) -> pa.Table:
    best = max(results, key=lambda r: (r[Col.VALUE], -r[Col.TRIAL]))[Col.TRIAL]
    records = [{Col.RUN_DATE: run_date, Col.RUN_ID: run_id, Col.MODEL: model,
                Col.PARAMS: json.dumps(trials[r[Col.TRIAL]], sort_keys=True),
                **{knob: trials[r[Col.TRIAL]][knob] for knob in LIGHTFM_KNOBS},
                Col.METRIC: metric, **r, Col.BEST: r[Col.TRIAL] == best} for r in results]
    return pa.Table.from_pylist(records, schema=to_arrow_schema(schemas.TRIALS))


def search(rows: DataFrame, cfg: Config, user_vocab: Vocabulary, item_features: sp.csr_matrix,
           wh: Warehouse, run_date: dt.date) -> dict:
    """Run the trials, write `trials` and best.json; return the best trial's figures."""
    tuning, model = cfg.tuning, variant_model_name(cfg.tuning.model)
    base = {**asdict(cfg.train.variant(tuning.model)), "seed": cfg.seed}
    knobs = trial_grid(tuning)
    trials = [{**base, **k} for k in knobs]
    log.info("tune %s: %d trials (%s search) over %s", model, len(trials), tuning.method,
             sorted(knobs[0]))
    results = run_trials(rows, trials, cfg.train.early_stopping, user_vocab, item_features,
                         cfg.seed, cfg.train.history)
    metric = f"precision@{cfg.train.early_stopping.k}"
    for r in results:
        log.info("tune %s trial %d %s: validation %s %.4f (best epoch %d, %.1fs)", model,
                 r[Col.TRIAL], knobs[r[Col.TRIAL]], metric, r[Col.VALUE], r[Col.BEST_EPOCH],
                 r[Col.SECONDS])
    table = trials_table(results, trials, model, metric, runs.run_id(cfg, run_date), run_date)
    delta_rs.write_small(table, wh.table("trials"),
                        f"{Col.RUN_DATE} = '{run_date.isoformat()}'")
    best = next(r for r in table.to_pylist() if r[Col.BEST])
    record = {"run_date": run_date.isoformat(), "run_id": best[Col.RUN_ID],
              "variant": tuning.model, "model": model, "trial": best[Col.TRIAL],
              "params": knobs[best[Col.TRIAL]], "full_params": trials[best[Col.TRIAL]],
              "metric": metric, "value": best[Col.VALUE], "best_epoch": best[Col.BEST_EPOCH]}
    out = wh.tuning_dir(run_date)
    out.mkdir(parents=True, exist_ok=True)
    (out / artifacts.TUNED_BEST).write_text(json.dumps(record, indent=2, sort_keys=True))
    log.info("tune %s: best trial %d %s, validation %s %.4f -> %s", model, record["trial"],
             record["params"], metric, record["value"], out / artifacts.TUNED_BEST)
    return {"trials": len(trials), "best_trial": record["trial"], metric: record["value"]}


# ---- ensemble weights ---------------------------------------------------------------------

def weight_combinations(members: int, grid: tuple[float, ...], limit: int, seed: int,
                        configured: tuple[float, ...]) -> list[tuple[float, ...]]:
    """Distinct weight vectors (normalised to sum 1) from the grid, the configured ones first
    (a tie keeps them); beyond `limit`, a seeded sample of the others."""
    def normal(w):
        total = sum(w)
        return tuple(round(x / total, 9) for x in w)

    found = dict.fromkeys([normal(configured)] + [normal(w) for w in
                                                  itertools.product(grid, repeat=members)
                                                  if sum(w) > 0])
    combos = list(found)
    if len(combos) > limit:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(np.arange(1, len(combos)), size=limit - 1, replace=False))
        combos = [combos[0]] + [combos[i] for i in keep]
    return combos


def combination_precision(matrices: list[np.ndarray], seen: sp.csr_matrix, truth: sp.csr_matrix,
                          combos: list[tuple[float, ...]], mode: str, rrf_k: int,
                          k: int) -> np.ndarray:
    """precision@k of every weight combination, combining the members' score matrices as
    scoring.EnsembleScorer does (min-max per row, or reciprocal rank), seen offers excluded."""
    parts = np.stack([row_minmax(np.asarray(s, np.float64)) if mode == "weighted"
                      else 1.0 / (rrf_k + row_ranks(np.asarray(s, np.float64)))
                      for s in matrices])
    exclude = pd.Series([seen.indices[seen.indptr[i]:seen.indptr[i + 1]]
                         for i in range(seen.shape[0])], dtype=object)
    rows = np.arange(truth.shape[0])[:, None]
    out = np.empty(len(combos))
    for c, weights in enumerate(combos):
        idx, _ = top_k(np.tensordot(np.asarray(weights), parts, axes=1), exclude, k)
        out[c] = float(np.mean(np.asarray(truth[rows, idx].sum(axis=1)).ravel() / k))
    return out


def make_weight_searcher(members: dict[str, dict], combos: list[tuple[float, ...]],
                         modes: tuple[str, ...], rrf_k: int, stopping: EarlyStoppingConfig,
                         user_vocab: Vocabulary, item_features: sp.csr_matrix, seed: int,
                         history_weight: float | None):
    """The function one task runs: fit each member without the validation subscribers, score
    them once, measure every combination per mode. Returns len(modes) x len(combos) rows."""

    def search_weights(pdf: pd.DataFrame) -> pd.DataFrame:
        data = training.shard_matrices(pdf, user_vocab, item_features, stopping, seed,
                                       validate=True, history_weight=history_weight)
        users = np.flatnonzero(np.diff(data.validation.indptr))
        matrices = []
        for params in members.values():
            arrays = _validation_fit(params, data, stopping, training.task_threads()).arrays()
            matrices.append(scores(
                representations(data.probe.user_features[users], arrays["user_embeddings"],
                                arrays["user_biases"]),
                representations(data.item_features, arrays["item_embeddings"],
                                arrays["item_biases"])))
        seen, truth = data.exclude[users], data.validation[users]
        return pd.DataFrame([{"mode": mode, COMBO: c, Col.VALUE: v, "users": len(users)}
                             for mode in modes for c, v in enumerate(combination_precision(
                                 matrices, seen, truth, combos, mode, rrf_k, stopping.k))])

    return search_weights


def tune_weights(rows: DataFrame, cfg: Config, user_vocab: Vocabulary,
                 item_features: sp.csr_matrix, wh: Warehouse, run_date: dt.date) -> dict:
    ens = cfg.ensemble
    tuned = (training.tuned_overrides(wh, run_date, cfg.train)
             if cfg.train.lightfm_from_tuning else None)
    params = training.variant_params(cfg.train, cfg.seed, tuned)
    names = sorted(n for n in ens.weights if n in params)  # the order load_scorer uses
    configured = tuple(ens.weights[n] for n in names)
    if sum(configured) == 0:
        configured = (1.0,) * len(names)
    combos = weight_combinations(len(names), ens.weight_grid, ens.max_combinations, cfg.seed,
                                 configured)
    log.info("tune ensemble weights of %s: %d combinations x %s", names, len(combos), ens.modes)
    searcher = make_weight_searcher({n: params[n] for n in names}, combos, ens.modes, ens.rrf_k,
                                    cfg.train.early_stopping, user_vocab, item_features, cfg.seed,
                                    cfg.train.history)
    results = pd.DataFrame([r.asDict() for r in  # len(modes) x len(combos) rows
                            rows.groupBy(Col.SHARD).applyInPandas(searcher, WEIGHT_RESULT)
                            .collect()])
    scale = sum(ens.weights[n] for n in names) or float(len(names))
    record = {"run_date": run_date.isoformat(), "members_searched": names,
              "metric": f"precision@{cfg.train.early_stopping.k}",
              "validation_subscribers": int(results["users"].iloc[0]), "modes": {}}
    for mode in ens.modes:
        values = results[results["mode"] == mode].set_index(COMBO)[Col.VALUE].sort_index()
        best = int(values.idxmax())  # the first of equals: the configured weights on a tie
        weights = {**ens.weights, **{n: w * scale for n, w in zip(names, combos[best])}}
        record["modes"][mode] = {
            "weights": weights, "value": float(values[best]), "configured_value": float(values[0]),
            "combinations": [{"weights": dict(zip(names, combos[c])), "value": float(v)}
                             for c, v in values.items()]}
        log.info("ensemble_%s: weights %s, validation %s %.4f (configured weights %.4f)", mode,
                 {n: round(w, 3) for n, w in weights.items()}, record["metric"], values[best],
                 values[0])
    out = wh.models_root(run_date)
    out.mkdir(parents=True, exist_ok=True)
    (out / artifacts.ENSEMBLE_WEIGHTS).write_text(json.dumps(record, indent=2))
    return {model_name("ensemble", m): {n: round(w, 3) for n, w in v["weights"].items()}
            for m, v in record["modes"].items()}


# ---- the stage ------------------------------------------------------------------------------


