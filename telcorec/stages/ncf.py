"""The NCF stage: examples in Spark -> Petastorm -> TorchDistributor workers -> offline.

`run(spark, cfg, run_date)` reads `subscriber_features`, `offer_features`, `subscriber_index`
and `interactions` of the run date, trains every model of `cfg.ncf.models` (GMF and MLP first
when NeuMF is pretrained from them), saves each under warehouse/models/run_date=.../ncf_<kind>/
(`model.pt` state_dict + `metadata.json`; checkpoints beside them), and writes to `metrics`:
protocol `full` (precision/recall@k, the project's ranking, via `scoring.recommend`) and
protocol `sampled{ncf.eval_negatives}` (`sampled99`: the paper's HR@10 / NDCG@10) for each
model and for popularity.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import platform
import time

import torch
from pyspark.sql import SparkSession

from telcorec.core.columns import SUBSCRIBER_CATEGORICALS, Col
from telcorec.core.config import Config, NCFConfig
from telcorec.evaluation import offline, sampled_protocol
from telcorec.io import runs
from telcorec.io.artifacts import TRAINED_BY
from telcorec.io.metrics_store import ALL_SEGMENTS, metrics_table, write_metrics
from telcorec.io.warehouse import Warehouse
from telcorec.models.ncf import trainer
from telcorec.models.ncf.model import NCFRecommender, model_name
from telcorec.models.ncf.prepare import Examples, Inputs, build_examples, rank_batch, read_inputs
from telcorec.models.ncf.scorer import NCFScorer
from telcorec.models.scoring import recommend
from telcorec.stages.context import StageContext

log = logging.getLogger(__name__)
CHECKPOINTS = "checkpoints"


def training_order(cfg: NCFConfig) -> list[str]:
    """Models to train, in order: NeuMF's pretraining needs GMF and MLP first."""
    wanted = set(cfg.models) | ({"gmf", "mlp"} if "neumf" in cfg.models and cfg.pretrain else set())
    return [k for k in ("gmf", "mlp", "neumf") if k in wanted]


def _model_params(kind: str, cfg: Config, inputs: Inputs) -> dict:
    return dict(kind=kind, n_users=inputs.n_users, n_items=len(inputs.offers),
                n_user_tokens=len(inputs.user_vocab) if inputs.user_vocab else 0,
                n_item_tokens=len(inputs.item_vocab) if inputs.item_vocab else 0,
                embedding_dim=cfg.ncf.embedding_dim, mlp_layers=list(cfg.ncf.mlp_layers),
                subscriber_ids=cfg.ncf.subscriber_ids, seed=cfg.seed)


def state_sha(model: NCFRecommender) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def train_spec(kind: str, cfg: Config, wh: Warehouse, run_date: dt.date, inputs: Inputs,
               data: Examples, fingerprints: dict[str, str]) -> trainer.TrainSpec:
    """What the workers need to train one model; its fingerprint names the checkpoints it may
    resume from (same parameters, data and, for NeuMF, the same GMF and MLP)."""
    ncf = cfg.ncf
    ckpt = wh.models(run_date, model_name(kind)) / CHECKPOINTS
    trainer.save_inputs(ckpt, data.arrays)
    params = _model_params(kind, cfg, inputs)
    pretrain = kind == "neumf" and ncf.pretrain
    fingerprints[kind] = hashlib.sha256(json.dumps(
        {"params": params, "train": _train_params(cfg, pretrain), "data": data.fingerprint,
         "steps": data.steps_per_epoch,
         "from": [fingerprints["gmf"], fingerprints["mlp"]] if pretrain else None},
        sort_keys=True).encode()).hexdigest()[:16]
    return trainer.TrainSpec(
        model_params=params, epochs=ncf.epochs, batch_size=rank_batch(ncf),
        learning_rate=ncf.learning_rate, seed=cfg.seed, converters=data.converters,
        steps_per_epoch=data.steps_per_epoch, code_columns=data.code_columns,
        checkpoint_dir=str(ckpt), fingerprint=fingerprints[kind],
        pretrained_from=(str(wh.models(run_date, model_name("gmf")) / CHECKPOINTS),
                         str(wh.models(run_date, model_name("mlp")) / CHECKPOINTS))
        if pretrain else None,
        alpha=ncf.alpha, k=10, log_level=logging.getLogger("telcorec").getEffectiveLevel())


def _train_params(cfg: Config, pretrain: bool) -> dict:
    ncf = cfg.ncf
    return {"batch_size": ncf.batch_size, "learning_rate": ncf.learning_rate,
            "negatives": ncf.negatives, "resample_negatives": ncf.resample_negatives,
            "processes": ncf.processes, "pretrain": pretrain,
            "alpha": ncf.alpha if pretrain else None}


def save_model(spec: trainer.TrainSpec, summary: dict, cfg: Config, wh: Warehouse,
               run_date: dt.date, inputs: Inputs, data: Examples) -> tuple[NCFRecommender, dict]:
    """The best epoch of a trained model as its artifact: model.pt + metadata.json."""
    kind = spec.model_params["kind"]
    name = model_name(kind)
    model = trainer.best_model(spec.checkpoint_dir, spec.model_params)
    meta = {"model": name,
            "model_version": f"{name}-{run_date.isoformat()}-{state_sha(model)[:10]}",
            "run_date": run_date.isoformat(),
            "train": {**_train_params(cfg, spec.pretrained_from is not None),
                      "epochs": spec.epochs},
            "training": summary,
            "offer_ids": inputs.offers[Col.OFFER_ID].tolist(),
            "user_vocabulary": inputs.user_vocab.to_json() if inputs.user_vocab else None,
            "item_vocabulary": inputs.item_vocab.to_json() if inputs.item_vocab else None,
            "item_codes": data.arrays["item_codes"].tolist() if "item_codes" in data.arrays
            else None,
            "data_fingerprint": data.fingerprint,
            TRAINED_BY: runs.lineage(cfg, run_date),  # offers name the run that trained it
            "versions": {"torch": torch.__version__, "python": platform.python_version()}}
    model.save(wh.models(run_date, name), meta)
    log.info("trained %s: best epoch %d of %d, validation HR@10 %.4f, %.0fs in the workers",
             name, summary["best_epoch"], spec.epochs, summary["best_val_hr"],
             summary["seconds"])
    return model, meta


def evaluate(ctx: StageContext, inputs: Inputs, scorers: list) -> dict[str, dict]:
    """Per model and protocol, (metric, k, segment, value) rows: `full` (the project's ranking
    through `scoring.recommend`, NCF only: popularity's full rows come from the evaluate stage)
    and `sampled{ncf.eval_negatives}`, or `sampled_file` with a negatives file (every NCF model
    and popularity, in one pass)."""
    cfg, interactions = ctx.cfg, inputs.interactions
    segments = inputs.features.select(Col.SUBSCRIBER_ID, Col.SEGMENT)
    subscriber_cols = inputs.features.select(Col.SUBSCRIBER_ID, *SUBSCRIBER_CATEGORICALS)
    idx = inputs.index.select(Col.SUBSCRIBER_ID, Col.SUBSCRIBER_IDX)
    subs, held_out = offline.evaluation_frame(interactions)  # refuses train/test overlap
    full_batch = (subs.join(subscriber_cols, on=Col.SUBSCRIBER_ID, how="inner")
                  .join(idx, on=Col.SUBSCRIBER_ID, how="inner")).cache()
    offer_ids = inputs.offers[Col.OFFER_ID].tolist()
    popularity = offline.popularity(interactions, len(offer_ids), offer_ids)
    results: dict[str, dict] = {}
    try:
        for scorer in scorers:
            results[scorer.name] = {"full": offline.ranking_metrics(
                recommend(full_batch, scorer, max(cfg.evaluation.ks)), held_out, segments,
                cfg.evaluation.ks)}
    finally:
        full_batch.unpersist()
    sampled_batch = (sampled_protocol.evaluation_rows(interactions)
                     .join(subscriber_cols, on=Col.SUBSCRIBER_ID, how="inner"))
    offer_df = ctx.spark.createDataFrame(inputs.offers[[Col.OFFER_ID, Col.OFFER_IDX]])
    candidates, _ = offline.negatives_file_candidates(ctx.spark, cfg, ctx.writer, interactions,
                                                      offer_df)  # the counts are logged
    if candidates is not None:
        sampled_batch = sampled_batch.join(candidates, on=Col.SUBSCRIBER_ID, how="inner")
    by_model = sampled_protocol.sampled_metrics(sampled_batch, [*scorers, popularity], segments,
                                                cfg.seed, cfg.ncf.eval_negatives, (10,))
    for name, rows in by_model.items():
        results.setdefault(name, {})[_sampled_protocol(cfg)] = rows
    return results


def _sampled_protocol(cfg: Config) -> str:
    return sampled_protocol.protocol_name(cfg.ncf.eval_negatives,
                                          offline.uses_negatives_file(cfg))


def _write(cfg: Config, wh: Warehouse, run_date: dt.date, results: dict[str, dict]) -> None:
    rid = runs.run_id(cfg, run_date)
    for protocol in ("full", _sampled_protocol(cfg)):
        tables = [metrics_table(rows[protocol], model, rid, run_date, protocol)
                  for model, rows in results.items() if protocol in rows]
        if tables:
            write_metrics(wh.table("metrics"), tables, run_date, protocol)


def run(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict:
    """Train, save and evaluate the NCF models of `cfg.ncf.models` for one run date."""
    ctx = StageContext.open(spark, cfg, run_date)
    wh = ctx.wh
    started = time.monotonic()
    inputs = read_inputs(ctx.read, cfg)
    data = build_examples(spark, cfg, wh, inputs)
    examples_seconds = time.monotonic() - started
    fingerprints: dict[str, str] = {}
    try:
        specs = [train_spec(kind, cfg, wh, run_date, inputs, data, fingerprints)
                 for kind in training_order(cfg.ncf)]
        summaries = trainer.run_distributed(specs, cfg.ncf.processes)
    finally:
        for converter in set(data.converters):
            converter.delete()
    trained, metas = {}, {}
    for spec, summary in zip(specs, summaries):
        kind = spec.model_params["kind"]
        trained[kind], metas[kind] = save_model(spec, summary, cfg, wh, run_date, inputs, data)
    evaluate_started = time.monotonic()
    scorers = [NCFScorer.from_model(trained[k], metas[k]) for k in cfg.ncf.models]
    results = evaluate(ctx, inputs, scorers)
    _write(cfg, wh, run_date, results)
    summary = {model: {f"{protocol}:{m}@{k}": v for protocol, rows in by.items()
                       for m, k, seg, v in rows if seg == ALL_SEGMENTS}
               for model, by in results.items()}
    for model, values in summary.items():
        log.info("ncf evaluate %s: %s", model, values)
    log.info("ncf stage: examples %.0fs, training %.0fs, evaluation %.0fs",
             examples_seconds, evaluate_started - started - examples_seconds,
             time.monotonic() - evaluate_started)
    return {"examples_per_epoch": data.rows_per_epoch, "steps_per_epoch": data.steps_per_epoch,
            "processes": cfg.ncf.processes,
            "models": {model_name(k): {"model_version": metas[k]["model_version"],
                                       "best_epoch": metas[k]["training"]["best_epoch"],
                                       "train_seconds": metas[k]["training"]["seconds"]}
                       for k in cfg.ncf.models},
            "metrics": summary}
