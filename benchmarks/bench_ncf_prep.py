"""NCF example preparation against the training it feeds, on MovieLens-1M-shaped pairs.

    .venv/bin/python benchmarks/bench_ncf_prep.py                  # ~1M pairs
    .venv/bin/python benchmarks/bench_ncf_prep.py --pairs 200000   # a smaller try

On local[2], from the training pairs (benchmarks/movielens_shaped.py: 6,040 users x 3,706 items)
as the NCF stage prepares them (telcorec/models/ncf/prepare.py):

  setup_seconds        once per run: held offers per subscriber, the validation split (cached)
  epoch_prep_seconds   one epoch's examples: `--negatives` sampled negatives per positive,
                       shuffled into files, materialised by Petastorm's converter (what
                       `ncf.resample_negatives` repeats every epoch, and a fixed pool once)
  epoch_train_seconds  one epoch of ID-only NeuMF over those examples, in memory in this
                       process (torch on both cores, batch --batch-size): a lower bound of the
                       stage's Petastorm-fed training
  ratio                epoch_prep_seconds / epoch_train_seconds (the issue's bound: <= 1)

Prints the figures and writes benchmarks/results/bench_ncf_prep.json (earlier runs with other
arguments are kept under "runs").
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import movielens_shaped  # noqa: E402

from telcorec.core.columns import Col  # noqa: E402
from telcorec.models.ncf import examples, feed  # noqa: E402
from telcorec.models.ncf.model import NCFRecommender  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "bench_ncf_prep.json"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    movielens_shaped.add_arguments(parser)
    parser.add_argument("--negatives", type=int, default=4, help="per positive (ncf.negatives)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--out", default=str(RESULTS))
    return parser.parse_args(argv)


def session() -> SparkSession:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[2]").appName("bench-ncf-prep")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", "4").config("spark.driver.memory", "3g")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def main(argv=None) -> dict:
    args = parse_args(argv)
    spark = session()
    load_before = os.getloadavg()
    pdf = movielens_shaped.interactions(args.users, args.items, args.pairs)
    pdf[Col.SUBSCRIBER_IDX] = pdf[Col.SUBSCRIBER_ID].str[1:].astype(np.int64)
    pairs = (spark.createDataFrame(pdf[[Col.SUBSCRIBER_IDX, Col.OFFER_IDX]])
             .withColumn(Col.EVENT_DATE, F.lit(dt.date(2026, 1, 1))).repartition(4).cache())
    pairs.count()
    work = Path(tempfile.mkdtemp(prefix="bench-ncf-prep-"))
    feed.use_cache_under(spark, work)
    try:
        started = time.monotonic()
        held = examples.held_offers(pairs).persist()
        positives, _ = examples.validation_split(pairs, 1000, seed=1)
        positives = positives.persist()
        n_pos = positives.count()
        held.count()
        setup = time.monotonic() - started
        files = feed.file_count(n_pos * (1 + args.negatives), 2)
        started = time.monotonic()
        converter = feed.make_converter(examples.epoch_examples(
            positives, held, None, args.items, args.negatives, seed=1, epoch=0, files=files))
        prep = time.monotonic() - started
        data = pq.read_table([u.replace("file://", "") for u in converter.file_urls]).to_pandas()
        converter.delete()
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    torch.set_num_threads(os.cpu_count() or 1)
    model = NCFRecommender(kind="neumf", n_users=args.users, n_items=args.items,
                           subscriber_ids=True)
    arrays = {Col.SUBSCRIBER_IDX: data[Col.SUBSCRIBER_IDX].to_numpy(np.int64),
              Col.OFFER_IDX: data[Col.OFFER_IDX].to_numpy(np.int64),
              examples.LABEL: data[examples.LABEL].to_numpy(np.float32)}
    started = time.monotonic()
    model.fit(arrays, None, epochs=1, batch_size=args.batch_size, learning_rate=0.001)
    train = time.monotonic() - started
    result = {"users": args.users, "items": args.items, "pairs": len(pdf),
              "positives": n_pos, "negatives_per_positive": args.negatives,
              "examples_per_epoch": len(data), "files": files,
              "setup_seconds": round(setup, 2), "epoch_prep_seconds": round(prep, 2),
              "epoch_train_seconds": round(train, 2), "ratio_prep_over_train": round(prep / train, 3),
              "train": {"model": "neumf, subscriber ids, defaults", "threads": torch.get_num_threads(),
                        "batch_size": args.batch_size},
              "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in os.getloadavg()],
              "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    label = f"pairs={args.pairs},negatives={args.negatives}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**result, "runs": {**previous.get("runs", {}), label: result}},
                              indent=2) + "\n")
    for key in ("examples_per_epoch", "setup_seconds", "epoch_prep_seconds",
                "epoch_train_seconds", "ratio_prep_over_train"):
        print(f"{key:<22} {result[key]:>10}")
    print(f"written to {out}")
    return result


if __name__ == "__main__":
    main()
