"""NCF feed and scoring throughput: Petastorm + TorchDistributor vs in-memory tensors.

Measures, on the same examples, model and batch size (examples per optimiser step):
  petastorm_samples_per_s  training with `--processes` TorchDistributor workers (DDP over gloo),
                           each reading its shard through Petastorm (the production path)
  inmemory_samples_per_s   training in this one process from in-memory tensors
  feed_ratio               their ratio (the issue's goal: >= 0.7)
  scoring_pairs_per_s      NCFScorer.score (feature encoding + every subscriber x every offer
                           through the network), the kernel each scoring task runs

The first epoch of each training path is a warm-up and is not counted. Prints the figures and
writes them as JSON. Run from the project root:

    .venv/bin/python benchmarks/bench_ncf.py --help
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from telcorec.core.columns import SUBSCRIBER_CATEGORICALS, Col
from telcorec.models.encoding import Vocabulary
from telcorec.models.ncf import examples, feed, trainer
from telcorec.models.ncf.model import NCFRecommender, model_name
from telcorec.models.ncf.scorer import NCFScorer

VALUES_PER_FEATURE = 5
ITEM_SLOTS = 6


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--examples", type=int, default=400_000,
                        help="training examples per epoch")
    parser.add_argument("--subscribers", type=int, default=8_000)
    parser.add_argument("--offers", type=int, default=60)
    parser.add_argument("--model", choices=("gmf", "mlp", "neumf"), default="neumf")
    parser.add_argument("--batch-size", type=int, default=1024,
                        help="examples per optimiser step (split across the processes)")
    parser.add_argument("--epochs", type=int, default=3, help="including one warm-up epoch")
    parser.add_argument("--processes", type=int, default=2, help="TorchDistributor workers")
    parser.add_argument("--score-subscribers", type=int, default=20_000)
    parser.add_argument("--workdir", default=None,
                        help="scratch directory (default: a temporary one, removed after)")
    parser.add_argument("--out", default="benchmarks/results/bench_ncf.json")
    return parser.parse_args(argv)


def synthetic_examples(spark: SparkSession, args, files: int):
    """Examples shaped like the stage's: indices, a 1/0 label (1 in 5) and feature codes."""
    slots = len(SUBSCRIBER_CATEGORICALS)
    rows = spark.range(args.examples)
    h = lambda salt: F.xxhash64(F.col("id"), F.lit(salt))  # noqa: E731
    codes = [(F.pmod(h(10 + j), F.lit(VALUES_PER_FEATURE)) + 1 + j * VALUES_PER_FEATURE)
             .cast("int").alias(f"u_{j}") for j in range(slots)]
    return (rows.select(F.pmod(h(1), F.lit(args.subscribers)).cast("int")
                        .alias(Col.SUBSCRIBER_IDX),
                        F.pmod(h(2), F.lit(args.offers)).cast("int").alias(Col.OFFER_IDX),
                        (F.pmod(h(3), F.lit(5)) == 0).cast("float").alias(examples.LABEL),
                        *codes)
            .repartition(files))


def model_params(args) -> dict:
    slots = len(SUBSCRIBER_CATEGORICALS)
    return NCFRecommender(kind=args.model, n_users=args.subscribers, n_items=args.offers,
                          n_user_tokens=slots * VALUES_PER_FEATURE, n_item_tokens=12,
                          subscriber_ids=False).get_params()


def item_codes(args) -> np.ndarray:
    return np.random.default_rng(0).integers(1, 13, size=(args.offers, ITEM_SLOTS))


def petastorm_rate(spark, args, work: Path) -> tuple[float, dict]:
    feed.use_cache_under(spark, work)
    converter = feed.make_converter(synthetic_examples(
        spark, args, feed.file_count(args.examples, args.processes, args.examples // 4 + 1)))
    try:
        groups = feed.row_group_rows(converter.file_urls)
        per_rank = args.batch_size // args.processes
        steps = feed.steps_per_epoch(groups, args.processes, per_rank)
        ckpt = work / "checkpoints"
        trainer.save_inputs(ckpt, {"seen_users": np.ones(args.subscribers, bool),
                                   "item_codes": item_codes(args),
                                   "val_users": np.zeros(0, np.int64),
                                   "val_test": np.zeros(0, np.int64),
                                   "val_negatives": np.zeros((0, 99), np.int64)})
        spec = trainer.TrainSpec(
            model_params=model_params(args), epochs=args.epochs, batch_size=per_rank,
            learning_rate=0.001, seed=0, converters=(converter,) * args.epochs,
            steps_per_epoch=steps, code_columns=tuple(f"u_{j}" for j in
                                                      range(len(SUBSCRIBER_CATEGORICALS))),
            checkpoint_dir=str(ckpt), fingerprint="bench")
        started = time.monotonic()
        (summary,) = trainer.run_distributed([spec], args.processes)
        wall = time.monotonic() - started
        data = pq.read_table([u.replace("file://", "") for u in converter.file_urls]).to_pandas()
    finally:
        converter.delete()
    seconds = [h["seconds"] for h in summary["history"]][1:]
    samples = steps * per_rank * args.processes
    detail = {"steps_per_epoch": steps, "samples_per_epoch": samples,
              "epoch_seconds": [round(s, 3) for s in seconds],
              "row_groups": len(groups), "launch_and_teardown_seconds":
              round(wall - sum(h["seconds"] for h in summary["history"]), 1),
              "threads_per_worker": summary["threads"]}
    return samples * len(seconds) / sum(seconds), {**detail, "data": data}


def inmemory_rate(args, data: pd.DataFrame) -> tuple[float, dict]:
    torch.set_num_threads(os.cpu_count() or 1)
    model = NCFRecommender(**model_params(args))
    slots = len(SUBSCRIBER_CATEGORICALS)
    arrays = {Col.SUBSCRIBER_IDX: data[Col.SUBSCRIBER_IDX].to_numpy(np.int64),
              Col.OFFER_IDX: data[Col.OFFER_IDX].to_numpy(np.int64),
              examples.LABEL: data[examples.LABEL].to_numpy(np.float32),
              "user_codes": data[[f"u_{j}" for j in range(slots)]].to_numpy(np.int64)}
    model.fit(arrays, item_codes(args), epochs=1, batch_size=args.batch_size,
              learning_rate=0.001)  # warm-up
    started = time.monotonic()
    model.fit(arrays, item_codes(args), epochs=args.epochs - 1, batch_size=args.batch_size,
              learning_rate=0.001)
    seconds = time.monotonic() - started
    steps = len(data) // args.batch_size
    return steps * args.batch_size * (args.epochs - 1) / seconds, {
        "threads": torch.get_num_threads(), "seconds": round(seconds, 2)}


def scoring_rate(args) -> tuple[float, dict]:
    torch.set_num_threads(1)  # as one Spark task with spark.task.cpus = 1
    model = NCFRecommender(**model_params(args))
    columns = SUBSCRIBER_CATEGORICALS
    vocab = Vocabulary(columns, tuple(sorted(f"{c}=v{i}" for c in columns
                                             for i in range(VALUES_PER_FEATURE))))
    rng = np.random.default_rng(1)
    batch = pd.DataFrame({c: rng.choice([f"v{i}" for i in range(VALUES_PER_FEATURE)],
                                        args.score_subscribers) for c in columns})
    batch[Col.SUBSCRIBER_IDX] = rng.integers(0, args.subscribers, args.score_subscribers)
    meta = {"model": model_name(args.model), "model_version": "bench",
            "offer_ids": [f"O{i}" for i in range(args.offers)],
            "user_vocabulary": vocab.to_json(), "item_codes": item_codes(args).tolist()}
    scorer = NCFScorer.from_model(model, meta)
    scorer.score(batch.iloc[:1000])  # warm-up
    started = time.monotonic()
    scores = scorer.score(batch)
    seconds = time.monotonic() - started
    assert scores.shape == (args.score_subscribers, args.offers)
    return args.score_subscribers * args.offers / seconds, {"threads": 1,
                                                            "seconds": round(seconds, 3)}


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    load_before = os.getloadavg()
    spark = (SparkSession.builder.master("local[2]").appName("bench-ncf")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", "4").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-ncf-"))
    try:
        petastorm, petastorm_detail = petastorm_rate(spark, args, work)
        data = petastorm_detail.pop("data")
        inmemory, inmemory_detail = inmemory_rate(args, data)
        scoring, scoring_detail = scoring_rate(args)
    finally:
        spark.stop()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    result = {
        "petastorm_samples_per_s": round(petastorm, 1),
        "inmemory_samples_per_s": round(inmemory, 1),
        "feed_ratio": round(petastorm / inmemory, 3),
        "scoring_pairs_per_s": round(scoring, 1),
        "petastorm": petastorm_detail, "inmemory": inmemory_detail, "scoring": scoring_detail,
        "config": {k: v for k, v in vars(args).items() if k not in ("workdir", "out")},
        "machine": {"cores": os.cpu_count(), "load_average_before": [round(x, 2) for x in
                                                                     load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                    "python": platform.python_version(), "torch": torch.__version__},
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for key in ("petastorm_samples_per_s", "inmemory_samples_per_s", "feed_ratio",
                "scoring_pairs_per_s"):
        print(f"{key:<26} {result[key]:>14,}")
    print(f"written to {out}")
    return result


if __name__ == "__main__":
    main()
