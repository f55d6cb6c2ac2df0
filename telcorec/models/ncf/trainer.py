"""The NCF epoch loop, run in every TorchDistributor worker process, and its driver side.

Each worker: picks the device once (CUDA with NCCL when asked for and present, else CPU with
gloo), sets its torch threads so that the workers share the cores instead of oversubscribing
them, wraps the network in DistributedDataParallel and, for every epoch, reads its own shard of
that epoch's examples through Petastorm for exactly `steps_per_epoch` batches (so ranks stay in
step). After each epoch the mean loss over all ranks is checked for NaN/inf. Rank 0 then
measures validation HR@10 (held-out item among sampled offers, as the paper's protocol), keeps
the best epoch's weights (`best.pt`) and writes `last.pt` (weights, optimizer, history); all
with `torch.save(state_dict)` and read back with `torch.load(weights_only=True)`. A run whose
checkpoint directory holds a `last.pt` of the same configuration resumes after that epoch.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import distributed as dist
from torch import nn

from telcorec.core.exceptions import ModelError
from telcorec.models import sampled_ranking
from telcorec.models.ncf import feed
from telcorec.models.ncf.model import (
    NCFRecommender,
    load_weights,
    pretrained_neumf,
    score_matrix,
    train_step,
    trainable,
)

log = logging.getLogger(__name__)
LAST, BEST, SUMMARY, INPUTS = "last.pt", "best.pt", "summary.json", "inputs.npz"


@dataclass(frozen=True)
class TrainSpec:
    """Everything a worker needs; small and picklable (arrays go through INPUTS on disk)."""
    model_params: dict
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    converters: tuple            # one Petastorm converter per epoch
    steps_per_epoch: int
    code_columns: tuple[str, ...]
    checkpoint_dir: str
    fingerprint: str
    pretrained_from: tuple[str, str] | None = None  # GMF, MLP checkpoint dirs (NeuMF)
    alpha: float = 0.5
    k: int = 10
    use_gpu: bool = False
    log_level: int = logging.INFO


INPUT_ARRAYS = ("seen_users", "val_users", "val_test", "val_negatives")  # + item/val codes


def save_inputs(directory: Path, arrays: dict[str, np.ndarray]) -> None:
    """Arrays the workers read (allow_pickle=False): which subscribers have training rows, the
    validation set with its sampled negatives and, with features, the offers' and validation
    subscribers' feature codes (`item_codes`, `val_codes`)."""
    missing = [name for name in INPUT_ARRAYS if name not in arrays]
    if missing:
        raise ValueError(f"trainer inputs lack {missing}")
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / INPUTS, **arrays)


def run_distributed(specs: list[TrainSpec], processes: int) -> list[dict]:
    """Train the models of `specs` in order, in one launch of `processes` TorchDistributor
    workers on this machine (torchrun starts once); rank 0's summary of each."""
    from pyspark.ml.torch.distributor import TorchDistributor

    for spec in specs:
        Path(spec.checkpoint_dir).mkdir(parents=True, exist_ok=True)
        (Path(spec.checkpoint_dir) / SUMMARY).unlink(missing_ok=True)
    TorchDistributor(num_processes=processes, local_mode=True, use_gpu=False).run(
        train_worker, tuple(specs))
    # every rank's return value lands in the same file, so results travel through SUMMARY
    return [json.loads((Path(s.checkpoint_dir) / SUMMARY).read_text()) for s in specs]


def threads_per_worker(world_size: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // world_size)


def choose_device(use_gpu: bool, local_rank: int) -> torch.device:
    if use_gpu and torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _worker_logging(level: int, rank: int) -> None:
    # a worker is a fresh process started by torchrun: this is its entry point, so it sets up
    # its own handler (stdout is streamed to the driver by TorchDistributor)
    root = logging.getLogger("telcorec")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s %(levelname)s ncf-worker[rank {rank}] %(message)s"))
        root.addHandler(handler)
        root.setLevel(level)


def train_worker(specs: tuple[TrainSpec, ...]) -> None:
    """A worker's entry point: train each spec in turn (a NeuMF spec after its GMF and MLP)."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    _worker_logging(specs[0].log_level, rank)
    device = choose_device(specs[0].use_gpu, local_rank)
    torch.set_num_threads(threads_per_worker(world))
    torch.use_deterministic_algorithms(True, warn_only=True)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        for spec in specs:
            _train(spec, rank, world, device)
            dist.barrier()  # rank 0's checkpoints are written before anyone reads them
    finally:
        dist.destroy_process_group()


def _load_inputs(spec: TrainSpec) -> dict[str, np.ndarray]:
    with np.load(Path(spec.checkpoint_dir) / INPUTS, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def best_model(checkpoint_dir: str | Path, params: dict) -> NCFRecommender:
    """The best epoch's weights of a trained model."""
    model = NCFRecommender(**params)
    model.network.load_state_dict(load_weights(Path(checkpoint_dir) / BEST))
    return model


def _build(spec: TrainSpec, inputs: dict, device: torch.device) -> NCFRecommender:
    if spec.pretrained_from:  # the paper's NeuMF pretraining, from this run's GMF and MLP
        gmf_dir, mlp_dir = spec.pretrained_from
        parts = [best_model(d, {**spec.model_params, "kind": kind})
                 for d, kind in ((gmf_dir, "gmf"), (mlp_dir, "mlp"))]
        model = pretrained_neumf(*parts, alpha=spec.alpha, seed=spec.model_params["seed"])
    else:
        model = NCFRecommender(**spec.model_params)
    model.mark_seen(inputs["seen_users"])
    model.network.to(device)
    return model


def _resume(spec: TrainSpec, network: nn.Module, optimizer) -> dict[str, Any]:
    path = Path(spec.checkpoint_dir) / LAST
    fresh = {"epoch": -1, "best_epoch": -1, "best_hr": -1.0, "history": []}
    if not path.is_file():
        return fresh
    checkpoint = load_weights(path)
    if checkpoint.get("fingerprint") != spec.fingerprint:
        log.info("ignoring %s: it comes from another configuration or data", path)
        return fresh
    network.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    log.info("resuming from %s after epoch %d", path, checkpoint["epoch"] + 1)
    return {k: checkpoint[k] for k in fresh}


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _batch(raw: dict[str, torch.Tensor], code_columns: tuple[str, ...],
           device: torch.device) -> dict[str, torch.Tensor]:
    batch = {k: raw[k].to(device) for k in ("subscriber_idx", "offer_idx", "label")}
    if code_columns:
        batch["user_codes"] = torch.stack([raw[c] for c in code_columns], dim=1).to(device)
    return batch


def validate(network: nn.Module, inputs: dict, n_items: int, k: int) -> tuple[float, float]:
    """(HR@k, NDCG@k) of the validation items among their sampled offers; NaN when none."""
    users = inputs["val_users"]
    if len(users) == 0:
        return float("nan"), float("nan")
    scores = score_matrix(network, users, inputs.get("val_codes"), inputs.get("item_codes"),
                          n_items)
    rank = sampled_ranking.rank_of_test(scores.astype(np.float64), inputs["val_test"],
                                         inputs["val_negatives"])
    hit, ndcg = sampled_ranking.hit_and_ndcg(rank, k)
    return float(hit.mean()), float(ndcg.mean())


def _check_finite(loss: float, network: nn.Module, epoch: int, spec: TrainSpec) -> None:
    bad = [name for name, p in network.named_parameters() if not torch.isfinite(p).all()]
    if not np.isfinite(loss) or bad:
        raise ModelError(
            f"NCF {spec.model_params['kind']} diverged at epoch {epoch + 1} (loss {loss}, "
            f"non-finite parameters: {bad[:3]}). Decrease ncf.learning_rate (now "
            f"{spec.learning_rate}) or raise ncf.batch_size in the config.")


def _train(spec: TrainSpec, rank: int, world: int, device: torch.device) -> None:
    started = time.monotonic()
    inputs = _load_inputs(spec)
    model = _build(spec, inputs, device)
    network = model.network
    item_codes = (torch.as_tensor(inputs["item_codes"], dtype=torch.long, device=device)
                  if "item_codes" in inputs else None)
    optimizer = torch.optim.Adam(trainable(network), lr=spec.learning_rate)
    state = _resume(spec, network, optimizer)
    ddp = nn.parallel.DistributedDataParallel(network)
    ckpt = Path(spec.checkpoint_dir)
    for epoch in range(state["epoch"] + 1, spec.epochs):
        epoch_start = time.monotonic()
        network.train()
        total = torch.zeros(1, dtype=torch.float64)
        with feed.shard_batches(spec.converters[epoch], spec.batch_size, rank, world,
                                spec.seed + epoch) as batches:
            for _ in range(spec.steps_per_epoch):
                raw = next(batches, None)
                if raw is None:
                    raise ModelError(
                        f"rank {rank} ran out of examples before {spec.steps_per_epoch} steps "
                        f"in epoch {epoch + 1}; the shard sizes were misjudged (feed.py)")
                total += train_step(ddp, optimizer, _batch(raw, spec.code_columns, device),
                                    item_codes)
        dist.all_reduce(total)
        loss = float(total) / (spec.steps_per_epoch * world)
        _check_finite(loss, network, epoch, spec)
        if rank == 0:
            hr, ndcg = validate(network, inputs, model.n_items, spec.k)
            improved = not np.isfinite(hr) or hr > state["best_hr"]
            if improved:
                state["best_epoch"], state["best_hr"] = epoch, (hr if np.isfinite(hr) else -1.0)
                _atomic_save(network.state_dict(), ckpt / BEST)
            state["history"].append({"epoch": epoch + 1, "loss": loss, "val_hr": hr,
                                     "val_ndcg": ndcg,
                                     "seconds": time.monotonic() - epoch_start})
            state["epoch"] = epoch
            _atomic_save({"fingerprint": spec.fingerprint, "model": network.state_dict(),
                          "optimizer": optimizer.state_dict(), **state}, ckpt / LAST)
            log.info("%s epoch %d/%d: loss %.4f, validation HR@%d %.4f NDCG@%d %.4f (%.1fs)%s",
                     spec.model_params["kind"], epoch + 1, spec.epochs, loss, spec.k, hr,
                     spec.k, ndcg, time.monotonic() - epoch_start, " *best" if improved else "")
    if rank == 0:
        summary = {"best_epoch": state["best_epoch"] + 1, "best_val_hr": state["best_hr"],
                   "history": state["history"], "world_size": world,
                   "steps_per_epoch": spec.steps_per_epoch, "fingerprint": spec.fingerprint,
                   "seconds": time.monotonic() - started, "threads": torch.get_num_threads()}
        (ckpt / SUMMARY).write_text(json.dumps(summary, indent=2))

