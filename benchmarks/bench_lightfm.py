"""LightFM trained through Spark shards against plain LightFM.fit on the same data.

    .venv/bin/python benchmarks/bench_lightfm.py --subscribers 2000 --shards 1,4   # from the
                                                                                  # project root

Generates the demo operator for N subscribers into a benchmark warehouse (once: a marker file
says the data is there) by running the pipeline's own stages up to `interactions`, then, on the
run date's training interactions and subscriber/offer features, with early stopping off so that
both paths fit exactly --epochs epochs of the WARP model:

  shard_seconds          `training.train_lightfm` over --timing-shards shards on local[2]: the
                         shuffle into shards, each task building its matrices and fitting one
                         model per shard, the artifacts written (the input rows are cached
                         beforehand: reading the tables is not counted on either side)
  raw_seconds            plain `LightFM.fit(epochs, num_threads=2)` in this process, one model
                         on the matrices the shards' tasks build (training.shard_matrices on
                         all rows at once: the same representation, train.representation's
                         history tokens included; matrix building excluded)
  ratio_raw_over_shard   raw_seconds / shard_seconds: 1.0 means the Spark path costs nothing
  speedup_2_vs_1_cores   the sharded path's shard_seconds on local[1] / on local[2] (same shards,
                         same data); the raw path's num_threads 1 vs 2 is recorded beside it

Each timing is the fastest of --repeats runs (the first pays for Python worker start-up).
--scale R times the data for the timings only: every subscriber is copied R times under new ids
(same features and plans), so the fit, not Spark's fixed costs, dominates without generating
and ingesting R times the CDR.

With --shards 1,4 it also trains the production WARP configuration (conf/local.yaml, early
stopping on, plus any --set overrides) with train.shards = 1 and then 4 on the same
(unscaled) data, runs the evaluate stage on each, and records precision@5 of each and its
difference relative to the first count listed (the issue's acceptance: within 10%).

Prints the figures and writes benchmarks/results/bench_lightfm.json (earlier runs with other
arguments are kept under "runs").
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import lightfm
import pandas as pd
import raw_lightfm
import scipy.sparse as sp
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from telcorec.core import config, schemas
from telcorec.core.columns import OFFER_CATEGORICALS, SUBSCRIBER_CATEGORICALS, Col
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter
from telcorec.models.encoding import Vocabulary, fit_vocabulary
from telcorec.models.lightfm import training
from telcorec.stages import evaluate as evaluate_stage
from telcorec.stages import pipeline
from telcorec.stages import train as train_stage

RUN = dt.date(2026, 11, 23)
MODEL = "lightfm_warp"
DATA_STAGES = ("generate", "ingest", "features", "interactions")
RESULTS = Path(__file__).resolve().parent / "results" / "bench_lightfm.json"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=2_000,
                        help="generated subscribers (default 2,000)")
    parser.add_argument("--epochs", type=int, default=30,
                        help="epochs of both timed fits (default 30)")
    parser.add_argument("--timing-shards", type=int, default=2,
                        help="shards of the timed Spark path (default 2: one per core)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed runs; the fastest counts (default 2)")
    parser.add_argument("--scale", type=int, default=1,
                        help="copies of every subscriber in the timed data (default 1)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for the --shards comparison, VALUE as JSON, "
                             "e.g. train.lightfm.epochs=120 (repeatable)")
    parser.add_argument("--shards", default="",
                        help="comma-separated shard counts to compare precision@5 of, e.g. 1,4 "
                             "(default: no comparison)")
    parser.add_argument("--warehouse", default=None,
                        help="benchmark warehouse (default: work/bench_lightfm/subscribers=N; "
                             "the generated data is kept there and reused)")
    parser.add_argument("--out", default=str(RESULTS),
                        help="the JSON written (default %(default)s)")
    return parser.parse_args(argv)


def session(cores: int) -> SparkSession:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master(f"local[{cores}]").appName("bench-lightfm")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", "4")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.driver.memory", "2g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def ensure_data(spark: SparkSession, cfg: config.Config, wh: Warehouse) -> None:
    """The pipeline's stages up to `interactions`, unless this warehouse already has them."""
    marker = wh.root / "bench_data.json"
    if marker.is_file():
        return
    counts = {name: pipeline.STAGES[name](spark, cfg, RUN) for name in DATA_STAGES}
    marker.write_text(json.dumps({"interactions": counts["interactions"]}, default=str))


@dataclass
class Inputs:
    rows: DataFrame            # cached training rows, as training.run builds them
    offers: pd.DataFrame
    user_vocab: Vocabulary
    item_vocab: Vocabulary
    count: int


def replicate(df: DataFrame, scale: int) -> DataFrame:
    """Every subscriber's rows `scale` times, under the ids <id>#0 .. <id>#<scale-1>."""
    copy = F.explode(F.sequence(F.lit(0), F.lit(scale - 1))).alias("copy")
    return (df.select("*", copy)
            .withColumn(Col.SUBSCRIBER_ID, F.concat_ws("#", Col.SUBSCRIBER_ID, "copy"))
            .drop("copy"))


def load_inputs(spark: SparkSession, cfg: config.Config, wh: Warehouse, scale: int) -> Inputs:
    read = lambda name, schema: DeltaRsWriter().read(spark, wh.table(name), schema, [RUN])  # noqa: E731
    features = replicate(read("subscriber_features", schemas.SUBSCRIBER_FEATURES), scale)
    offer_df = read("offer_features", schemas.OFFER_FEATURES)
    interactions = replicate(read("interactions", schemas.INTERACTIONS), scale)
    rows = training.training_rows(interactions, features, cfg.train).cache()
    return Inputs(rows, offer_df.toPandas(), fit_vocabulary(features, SUBSCRIBER_CATEGORICALS),
                  fit_vocabulary(offer_df, OFFER_CATEGORICALS, identity=Col.OFFER_ID),
                  rows.count())


def shard_path(inputs: Inputs, cfg: config.Config, out_root: Path) -> tuple[float, list[dict]]:
    started = time.monotonic()
    results = training.train_lightfm(inputs.rows, inputs.offers, inputs.user_vocab,
                                     inputs.item_vocab, cfg.train, cfg.seed, out_root)
    return time.monotonic() - started, results


def raw_matrices(inputs: Inputs, cfg: config.Config) -> tuple[sp.coo_matrix, sp.csr_matrix,
                                                              sp.csr_matrix]:
    """All training rows as one model sees them: (interactions, user features, item features),
    built by the very function each shard's task runs (training.shard_matrices) on all rows as
    one shard, so both sides fit the same representation: for train.representation
    features+history the leave-one-out rows with their history tokens, else one row per
    subscriber with its feature tokens (rows collected: benchmark sizes)."""
    pdf = inputs.rows.toPandas().assign(**{Col.SHARD: 0})
    items = training.item_feature_matrix(inputs.offers, inputs.item_vocab)
    data = training.shard_matrices(pdf, inputs.user_vocab, items, cfg.train.early_stopping,
                                   cfg.seed, validate=False, history_weight=cfg.train.history)
    return data.full.interactions, data.full.user_features, items


def raw_fit_seconds(matrices: tuple, cfg: config.Config, threads: int) -> float:
    p = cfg.train.variant("warp")
    model = raw_lightfm.model(p, cfg.seed)
    interactions, users, items = matrices
    started = time.monotonic()
    model.fit(interactions, user_features=users, item_features=items, epochs=p.epochs,
              num_threads=threads)
    return time.monotonic() - started


def fastest(measure, repeats: int) -> tuple[float, list[float]]:
    runs = [measure() for _ in range(repeats)]
    return min(runs), [round(r, 3) for r in runs]


def time_shards(spark: SparkSession, cfg: config.Config, wh: Warehouse, args,
                scratch: Path) -> tuple[Inputs, float, dict]:
    inputs = load_inputs(spark, cfg, wh, args.scale)
    results: list[dict] = []

    def once() -> float:
        seconds, out = shard_path(inputs, cfg, scratch)
        results[:] = out
        return seconds

    best, runs = fastest(once, args.repeats)
    per_shard = [round(r["seconds"], 3) for r in results]
    return inputs, best, {"shards": cfg.train.shards, "runs_seconds": runs,
                          "per_shard_task_seconds": per_shard,
                          # ~shards when the shards' tasks ran side by side, ~1 when serially
                          "task_parallelism": round(sum(r["seconds"] for r in results) / best, 2)}


def compare_shards(spark: SparkSession, cfg: config.Config, counts: list[int]) -> dict:
    """The production WARP model trained with each shard count and evaluated like the evaluate
    stage: precision@5 (all subscribers, full ranking) and the relative difference."""
    out: dict = {"model": MODEL, "by_shards": {}}
    for shards in counts:
        sharded = cfg.with_overrides(**{"train.shards": shards})
        started = time.monotonic()
        train_stage.run(spark, sharded, RUN)
        figures = evaluate_stage.run(spark, sharded, RUN)
        out["by_shards"][str(shards)] = {
            **{k: round(v, 4) for k, v in figures[MODEL].items()},
            "popularity precision@5": round(figures["popularity"]["precision@5"], 4),
            "train_and_evaluate_seconds": round(time.monotonic() - started, 1)}
    p5 = {str(s): out["by_shards"][str(s)]["precision@5"] for s in counts}
    reference = p5[str(counts[0])]
    out["precision@5"] = p5
    # relative to the first count listed (1 shard: one model over every subscriber)
    out["relative_difference"] = {s: round((v - reference) / reference, 4)
                                  for s, v in p5.items() if s != str(counts[0])}
    out["within_10_percent"] = all(abs(d) <= 0.10 for d in out["relative_difference"].values())
    return out


def measure(args, cfg: config.Config, timed: config.Config, wh: Warehouse,
            scratch: Path) -> dict:
    spark = session(2)
    ensure_data(spark, cfg, wh)
    inputs, shard_seconds, shard_detail = time_shards(spark, timed, wh, args, scratch)
    matrices = raw_matrices(inputs, timed)
    raw_seconds, raw_runs = fastest(lambda: raw_fit_seconds(matrices, timed, 2), args.repeats)
    raw_1, _ = fastest(lambda: raw_fit_seconds(matrices, timed, 1), args.repeats)
    counts = [int(s) for s in args.shards.split(",") if s]
    overrides = dict(item.split("=", 1) for item in args.set)
    compared = cfg.with_overrides(**{k: json.loads(v) for k, v in overrides.items()})
    shards = ({**compare_shards(spark, compared, counts), "overrides": overrides}
              if counts else None)
    spark.stop()
    spark = session(1)
    _, one_core, one_core_detail = time_shards(spark, timed, wh, args, scratch)
    spark.stop()
    result = {
        "subscribers": args.subscribers, "scale": args.scale, "interactions": inputs.count,
        "epochs": args.epochs,
        "shard_seconds": round(shard_seconds, 3), "raw_seconds": round(raw_seconds, 3),
        "ratio_raw_over_shard": round(raw_seconds / shard_seconds, 3),
        "speedup_2_vs_1_cores": round(one_core / shard_seconds, 3),
        "speedup_method": f"sharded path, {args.timing_shards} shards: seconds on local[1] / "
                          "on local[2]",
        "raw_speedup_2_vs_1_threads": round(raw_1 / raw_seconds, 3),
        "shard_path": {"local[2]": shard_detail, "local[1]": one_core_detail},
        "raw_path": {"runs_seconds": raw_runs, "one_thread_seconds": round(raw_1, 3),
                     "rows": matrices[0].shape[0], "offers": matrices[0].shape[1]},
        "model": MODEL, "params": dataclasses.asdict(timed.train.variant("warp")),
        "representation": timed.train.representation,
        "raw_rows": matrices[0].shape[0], "raw_user_tokens": int(matrices[1].nnz),
    }
    if shards is not None:
        result["shards_quality"] = shards
    return result


def main(argv=None) -> dict:
    args = parse_args(argv)
    root = Path(args.warehouse or f"work/bench_lightfm/subscribers={args.subscribers}")
    cfg = config.load("conf/local.yaml").with_overrides(**{
        "warehouse": str(root.resolve()), "generator.subscribers": args.subscribers})
    timed = cfg.with_overrides(**{"train.shards": args.timing_shards,
                                  "train.lightfm.epochs": args.epochs,
                                  "train.early_stopping.every": 0})
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    load_before = os.getloadavg()
    scratch = Path(tempfile.mkdtemp(prefix="bench-lightfm-"))  # the timed runs' artifacts
    try:
        result = measure(args, cfg, timed, wh, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result["machine"] = {
        "cores": os.cpu_count(), "python": platform.python_version(),
        "lightfm": lightfm.__version__,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    result["measured_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    label = (f"subscribers={args.subscribers},scale={args.scale},"
             f"representation={timed.train.representation}") + "".join(
        f",{item}" for item in args.set)
    runs = {**previous.get("runs", {}), label: result}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**result, "runs": runs}, indent=2) + "\n")
    for key in ("interactions", "epochs", "shard_seconds", "raw_seconds",
                "ratio_raw_over_shard", "speedup_2_vs_1_cores"):
        print(f"{key:<22} {result[key]:>12}")
    if "shards_quality" in result:
        quality = result["shards_quality"]
        print(f"{'precision@5 by shards':<22} {quality['precision@5']}  relative difference "
              f"{quality['relative_difference']}  within 10%: {quality['within_10_percent']}")
    print(f"written to {out}")
    return result


if __name__ == "__main__":
    main()
