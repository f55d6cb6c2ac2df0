"""The score stage against a bare Delta write, Spark ALS recommend-all and LightFM.predict.

    .venv/bin/python benchmarks/bench_scoring.py --subscribers 1000000 --offers 200 --dim 64 --k 10

Setup (not timed): the real pipeline (generate .. evaluate, then score) runs once on a small
generated population (--base-subscribers) with generator.offers = M and LightFM no_components
= D, giving offer_features, the trained model, metrics and one run in `runs`. The run date's
`subscriber_features` partition is then replaced by N rows: the small population's feature
rows copied under new ids (<id>-<copy>, a cross join with spark.range), and the day before
gets one rank-1 `offers` row per subscriber, so contact fatigue has a real history to join.
The copies are unknown to subscriber_index (subscriber_idx -1): LightFM scores them from their
features, as it does every subscriber.

Measured, all in this one run on local[2]:
  score_seconds        `telcorec.stages.score.run` over the N subscribers: representations from
                       features, rules, re-ranking, top-K, reasons, gate checks, Delta write.
                       Run in a fresh driver process of its own (a subprocess), whose peak
                       memory is the driver's: driver_peak_rss_mb = peak RSS of the Python
                       driver + peak RSS (VmHWM) of its JVM (in local mode the JVM also runs
                       the tasks' JVM side; the Python workers are not counted). The same job at
                       N/4 in another fresh process gives driver_peak_rss_mb_quarter.
  floor_seconds        N x K rows of the `offers` schema made by spark.range with cheap
                       expressions, written through the same writer
                       (DeltaRsWriter.replace_partition)
                       into a table of their own; in the N process after the job, twice, the
                       faster counts (so the floor runs warm, the job cold: a conservative ratio)
  als_seconds          Spark MLlib ALS (implicit, rank D) on the same subscribers and offers
                       (each copy holds its original's plans), recommendForAllUsers(K) written
                       to Parquet; the fit is timed apart (als_fit_seconds)
  compute_seconds      top K for all N in this process: features -> representations
                       (lightfm_model.representations), x offers (scores), scoring.top_k, in
                       batches; LightFM.predict over every pair of a sample of subscribers plus
                       the same top_k, extrapolated to N (lightfm_predict_seconds); no writes
Prints the JSON and writes benchmarks/results/bench_scoring.json (earlier runs at other sizes
are kept under "runs").
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import lightfm
import numpy as np
import psutil
import pyspark
import yaml
from pyspark.ml.recommendation import ALS
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType

from telcorec.core import config, schemas
from telcorec.core.columns import Col
from telcorec.core.config import variant_model_name
from telcorec.io import artifacts
from telcorec.io.artifacts import MANIFEST
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter
from telcorec.models import scoring
from telcorec.models.lightfm.model import Representations, representations, scores
from telcorec.models.lightfm.scorer import LightFMScorer
from telcorec.stages import pipeline
from telcorec.stages import score as score_stage

RUN = dt.date(2026, 11, 23)
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "bench_scoring.json"
USER = "user"    # the contiguous integer id of a (copied) subscriber: copy x base size + base
FLOOR_TABLE = "bench_floor"
PREDICT_THREADS = 2  # LightFM.predict's OpenMP threads: the two cores numpy's BLAS also uses
# A bare broadcast matrix product + partial sort + Parquet write (no
# features, rules or reasons) measured at 1M subscribers
REFERENCE = {"subscribers": 1_000_000, "bare_broadcast_topk_parquet_seconds": 10.4,
             "write_floor_seconds": 6.9, "als_recommend_all_seconds": 74.6}
GOAL_SIZE = {"subscribers": 1_000_000, "offers": 200, "dim": 64, "k": 10}
GOALS = {"ratio_to_floor": ("<=", 1.3), "speedup_vs_als": (">=", 10.0),
         "speedup_vs_lightfm_predict": (">=", 8.0), "driver_peak_rss_ratio_to_quarter": ("<=", 1.1)}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1_000_000, help="N scored")
    parser.add_argument("--offers", type=int, default=200, help="M offers (>= 50)")
    parser.add_argument("--dim", type=int, default=64, help="D: LightFM components, ALS rank")
    parser.add_argument("--k", type=int, default=10, help="K offers kept per subscriber")
    parser.add_argument("--base-subscribers", type=int, default=4_000,
                        help="generated population the pipeline runs on (default 4,000)")
    parser.add_argument("--predict-sample", type=int, default=250_000,
                        help="subscribers LightFM.predict scores; its time is extrapolated to N")
    parser.add_argument("--batch", type=int, default=20_000,
                        help="subscribers per batch of the in-process comparison")
    parser.add_argument("--driver-memory", default="4g", help="as ./spark-submit.sh's default")
    parser.add_argument("--shuffle-partitions", type=int, default=4,
                        help="as ./spark-submit.sh in local mode")
    parser.add_argument("--workdir", default=str(ROOT / "work" / "bench_scoring"),
                        help="scratch directory, emptied at the start (default %(default)s)")
    parser.add_argument("--out", default=str(RESULTS), help="the JSON written")
    parser.add_argument("--keep-base", action="store_true",
                        help="reuse the base pipeline run already in --workdir (same "
                             "--base-subscribers, --offers, --dim, --k) instead of emptying it")
    # the child process that runs one scoring job (internal)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def session(memory: str, partitions: int) -> SparkSession:
    """A local[2] session with ./spark-submit.sh's local settings."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    spark = (SparkSession.builder.master("local[2]").appName("bench-scoring")
             .config("spark.driver.memory", memory)
             .config("spark.sql.shuffle.partitions", str(partitions))
             .config("spark.default.parallelism", str(partitions))
             .config("spark.sql.execution.arrow.pyspark.enabled", "true")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# ---- setup: the small pipeline run, then N subscribers -----------------------------------------

def write_config(args, workdir: Path) -> Path:
    """The benchmark's YAML: conf/local.yaml with M offers, D components and K, one shard, and
    the gate's thresholds opened (every check still runs and costs what it costs, but a model
    trained on a few thousand subscribers, or copies that all look alike, cannot refuse the
    publish that is being timed)."""
    data = {
        "extends": str(ROOT / "conf" / "local.yaml"),
        "warehouse": str(workdir / "warehouse"),
        "generator": {"subscribers": args.base_subscribers, "offers": args.offers},
        "train": {"shards": 1, "lightfm": {"no_components": args.dim}},
        "scoring": {"k": args.k},
        "gate": {"max_drop_vs_published": 0.99, "min_lift_over_popularity": -1.0,
                 "min_row_share": 0.0, "min_catalogue_coverage": 0.0},
    }
    path = workdir / "bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def numbered(small: DataFrame) -> DataFrame:
    """The small population with `base` = 0..n-1 in subscriber id order."""
    return small.withColumn("base", F.row_number().over(Window.orderBy(Col.SUBSCRIBER_ID)) - 1)


def copies(spark: SparkSession, base: DataFrame, n_small: int, n: int) -> DataFrame:
    """n rows: every base row copied ceil(n / n_small) times (cross join), the first n kept,
    with a new subscriber id <id>-<copy> and the integer USER = copy * n_small + base."""
    times = spark.range(math.ceil(n / n_small)).withColumnRenamed("id", "copy")
    return (base.crossJoin(times)
            .withColumn(USER, F.col("copy") * n_small + F.col("base"))
            .where(F.col(USER) < n)
            .withColumn(Col.SUBSCRIBER_ID, F.concat_ws("-", Col.SUBSCRIBER_ID,
                                                       F.col("copy").cast("string"))))


VARIED = (Col.RUN_DATE, Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.RANK)


def offer_rows(ids: DataFrame, k: int, run_date: dt.date, offer_ids: list[str],
               template: dict) -> DataFrame:
    """k rows of the `offers` schema per subscriber id from cheap expressions only: offer and
    rank vary, doubles are rank / k, every other column is `template`'s value (one real row of
    the job's output, so the rows are as wide as the job's: reasons, route, ...)."""
    pick = F.element_at(F.array(*[F.lit(o) for o in offer_ids]),
                        (F.pmod(F.xxhash64(Col.SUBSCRIBER_ID, "r"), F.lit(len(offer_ids))) + 1)
                        .cast("int"))
    varied = {Col.RUN_DATE: F.lit(run_date), Col.SUBSCRIBER_ID: F.col(Col.SUBSCRIBER_ID),
              Col.OFFER_ID: pick, Col.RANK: F.col("r").cast("int")}

    def column(field):
        if field.name in varied:
            return varied[field.name]
        if field.dataType == DoubleType():
            return F.col("r") / F.lit(float(k))
        value = template.get(field.name)
        if isinstance(value, list):
            return F.array(*[F.lit(v) for v in value]).cast(field.dataType)
        return F.lit(value).cast(field.dataType)

    rows = ids.select(Col.SUBSCRIBER_ID, F.explode(F.sequence(F.lit(1), F.lit(k))).alias("r"))
    return rows.select(*[column(f).alias(f.name) for f in schemas.OFFERS.fields])


def floor_rows(spark: SparkSession, n: int, k: int, offer_ids: list[str],
               template: dict) -> DataFrame:
    """N x K offers rows from spark.range: the write floor's input."""
    ids = spark.range(n).select(F.concat(F.lit("F"), F.col("id").cast("string"))
                                .alias(Col.SUBSCRIBER_ID))
    return offer_rows(ids, k, RUN, offer_ids, template)


class Setup:
    """The benchmark warehouse: the small pipeline run, and its population kept apart (the run
    date's subscriber_features partition is replaced by copies) under <workdir>/base."""

    def __init__(self, spark: SparkSession, cfg: config.Config, args, workdir: Path) -> None:
        self.spark, self.cfg, self.args = spark, cfg, args
        self.wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
        base, marker = workdir / "base", workdir / "base" / "base.json"
        params = {key: getattr(args, key) for key in ("base_subscribers", "offers", "dim", "k")}
        started = time.monotonic()
        if not args.keep_base:
            self.base_run(base, marker, params)
        elif not marker.is_file() or json.loads(marker.read_text())["params"] != params:
            raise SystemExit(f"--keep-base: no base run with {params} in {workdir}; "
                             "run once without --keep-base")
        self.pipeline_seconds = time.monotonic() - started
        saved = json.loads(marker.read_text())
        self.offer_ids, self.template = saved["offer_ids"], saved["template"]
        self.small = spark.read.schema(schemas.SUBSCRIBER_FEATURES).parquet(
            str(base / "subscriber_features")).cache()
        self.n_small = self.small.count()
        self.held = DeltaRsWriter().read(spark, self.wh.table("interactions"),
                                         schemas.INTERACTIONS, [RUN]).select(
            Col.SUBSCRIBER_ID, Col.OFFER_IDX, Col.WEIGHT)

    def base_run(self, base: Path, marker: Path, params: dict) -> None:
        """The pipeline on the generated population; its features, offer ids and one row of
        its offers (the template of the floor's and the history's rows) kept under `base`."""
        read = lambda name, schema: DeltaRsWriter().read(self.spark, self.wh.table(name), schema,
                                                         [RUN])
        pipeline.run(self.spark, self.cfg, RUN)
        read("subscriber_features", schemas.SUBSCRIBER_FEATURES).write.parquet(
            str(base / "subscriber_features"))
        offers = read("offer_features", schemas.OFFER_FEATURES).toPandas()
        sample = read("offers", schemas.OFFERS).where(F.col(Col.ARM) == "model").first()
        marker.write_text(json.dumps({
            "params": params,
            "offer_ids": offers.sort_values(Col.OFFER_IDX)[Col.OFFER_ID].tolist(),
            "template": {k: v for k, v in sample.asDict(recursive=True).items()
                         if k not in VARIED}}, default=str))

    def population(self, n: int) -> DataFrame:
        return copies(self.spark, numbered(self.small), self.n_small, n)

    def prepare(self, n: int) -> dict:
        """n subscribers in the run date's subscriber_features, and one rank-1 offer each the
        day before (the fatigue history a nightly run reads)."""
        started = time.monotonic()
        people = self.population(n).repartition(self.args.shuffle_partitions, Col.SUBSCRIBER_ID)
        rows = DeltaRsWriter().replace_partition(people, self.wh.table("subscriber_features"),
                                                 schemas.SUBSCRIBER_FEATURES, RUN)
        day_before = RUN - dt.timedelta(days=1)
        history = DeltaRsWriter().replace_partition(
            offer_rows(self.population(n).select(Col.SUBSCRIBER_ID), 1, day_before,
                       self.offer_ids, self.template),
            self.wh.table("offers"), schemas.OFFERS, day_before)
        return {"subscriber_features": rows, "history_rows": history,
                "seconds": round(time.monotonic() - started, 1)}

    def scored_subscribers(self) -> int:
        offers = DeltaRsWriter().read(self.spark, self.wh.table("offers"), schemas.OFFERS, [RUN])
        return offers.select(Col.SUBSCRIBER_ID).distinct().count()


# ---- the scoring job in a fresh driver process --------------------------------------------------

def peak_rss_mb() -> dict[str, float | None]:
    """Peak RSS of this Python process and (VmHWM) of the driver JVM it started."""
    jvm = None
    for child in psutil.Process().children(recursive=True):
        if "java" in child.name():
            for line in Path(f"/proc/{child.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    jvm = round(int(line.split()[1]) / 1024, 1)
    python = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return {"python": python, "jvm": jvm,
            "total": round(python + jvm, 1) if jvm is not None else None}


def child(args) -> None:
    """Run by the subprocess: one scoring job first thing in a new driver (its peak memory read
    right after), then, when asked, the write floor in the same session."""
    spec = json.loads(Path(args.child).read_text())
    # the stage's phase lines (telcorec.score_stage) on stderr: where the job's time goes
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("telcorec").setLevel(logging.INFO)
    cfg = config.load(spec["config"])
    spark = session(args.driver_memory, args.shuffle_partitions)
    started = time.monotonic()
    result = score_stage.run(spark, cfg, RUN)
    out = {"score_seconds": time.monotonic() - started, "peak_rss_mb": peak_rss_mb(),
           "result": result}
    if spec.get("floor_rows"):
        table = Warehouse.from_config(cfg.warehouse, cfg.inputs.path).table(FLOOR_TABLE)
        runs = []
        for _ in range(2):
            rows = floor_rows(spark, spec["floor_rows"], spec["k"], spec["offer_ids"],
                              spec["template"])
            started = time.monotonic()
            written = DeltaRsWriter().replace_partition(rows, table, schemas.OFFERS, RUN)
            runs.append(time.monotonic() - started)
        out.update(floor_runs_seconds=runs, floor_rows_written=written)
    spark.stop()
    Path(spec["out"]).write_text(json.dumps(out, default=str))


def score_in_fresh_driver(args, cfg_path: Path, workdir: Path, label: str,
                          floor: dict | None = None) -> dict:
    spec = {"config": str(cfg_path), "out": str(workdir / f"child_{label}.json"), **(floor or {})}
    spec_path = workdir / f"child_{label}_spec.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(spec_path),
               "--driver-memory", args.driver_memory,
               "--shuffle-partitions", str(args.shuffle_partitions)]
    subprocess.run(command, check=True, env=env, cwd=ROOT)
    return json.loads(Path(spec["out"]).read_text())


# ---- ALS --------------------------------------------------------------------------------------

def als(setup: Setup, args, workdir: Path) -> dict:
    """ALS (implicit, rank D) on every copy's held plans; recommendForAllUsers(K) to Parquet."""
    held = setup.held.join(numbered(setup.small).select(Col.SUBSCRIBER_ID, "base"),
                           on=Col.SUBSCRIBER_ID)
    ratings = (copies(setup.spark, held, setup.n_small, args.subscribers)
               .select(F.col(USER).cast("int").alias(USER),
                       F.col(Col.OFFER_IDX).alias("item"), Col.WEIGHT)
               .repartition(args.shuffle_partitions).cache())
    pairs = ratings.count()
    users = ratings.select(USER).distinct().count()
    model_spec = ALS(rank=args.dim, implicitPrefs=True, userCol=USER, itemCol="item",
                     ratingCol=Col.WEIGHT, seed=42)
    started = time.monotonic()
    model = model_spec.fit(ratings)
    fit = time.monotonic() - started
    started = time.monotonic()
    model.recommendForAllUsers(args.k).write.mode("overwrite").parquet(str(workdir / "als_recs"))
    recommend = time.monotonic() - started
    ratings.unpersist()
    return {"als_seconds": recommend, "als_fit_seconds": fit, "als_users": users,
            "als_interactions": pairs, "als_max_iter": model_spec.getMaxIter()}


# ---- in one process: our kernel against LightFM.predict ------------------------------------------

def predict_model(model_dir: Path) -> lightfm.LightFM:
    """A LightFM object holding the trained (single shard's) arrays, for its own predict."""
    manifest = json.loads((model_dir / MANIFEST).read_text())
    (shard_dir,) = manifest["shard_paths"].values()
    arrays, _ = artifacts.load(model_dir / shard_dir)
    users, dim = arrays["user_embeddings"].shape
    model = lightfm.LightFM(no_components=dim)
    model._initialize(dim, arrays["item_embeddings"].shape[0], users)  # allocates the state
    for name in ("user_embeddings", "user_biases", "item_embeddings", "item_biases"):
        setattr(model, name, np.ascontiguousarray(arrays[name], dtype=np.float32))
    return model


def ours_top_k(features, emb: np.ndarray, bias: np.ndarray, offer_side: Representations,
               k: int, batch: int) -> np.ndarray:
    """The score stage's kernel: representations, x offer representations, partial sort."""
    out = []
    for lo in range(0, features.shape[0], batch):
        reprs = representations(features[lo:lo + batch], emb, bias)
        out.append(scoring.top_k(scores(reprs, offer_side), None, k)[0])
    return np.concatenate(out)


def predict_top_k(features, model: lightfm.LightFM, item_features, k: int,
                  batch: int) -> np.ndarray:
    """LightFM.predict over every (subscriber, offer) pair, then the same partial sort."""
    m = item_features.shape[0]
    out = []
    for lo in range(0, features.shape[0], batch):
        rows = features[lo:lo + batch]
        b = rows.shape[0]
        pred = model.predict(np.repeat(np.arange(b, dtype=np.int32), m),
                             np.tile(np.arange(m, dtype=np.int32), b),
                             user_features=rows, item_features=item_features,
                             num_threads=PREDICT_THREADS).reshape(b, m)
        out.append(scoring.top_k(pred, None, k)[0])
    return np.concatenate(out)


def timed_twice(work):
    """(result, [seconds, seconds]): `work` run twice, as the floor is (the faster counts)."""
    runs = []
    for _ in range(2):
        started = time.monotonic()
        result = work()
        runs.append(round(time.monotonic() - started, 3))
    return result, runs


def in_process(setup: Setup, args) -> dict:
    """Top K for all N from the encoded features (encoding excluded from both sides), ours
    against LightFM.predict on the first --predict-sample subscribers, extrapolated to N; each
    side run twice, the faster counts (one run of a few seconds varied by 1.6x here)."""
    model_dir = setup.wh.models(RUN, variant_model_name("warp"))
    scorer = LightFMScorer.load(model_dir)
    if len(scorer.users) != 1:
        raise SystemExit(f"the benchmark trains one shard, found {len(scorer.users)}: "
                         "check train.shards in the workdir's bench.yaml")
    emb, bias = scorer.users[0]
    small = setup.small.orderBy(Col.SUBSCRIBER_ID).toPandas()  # row i: base i
    features = scorer.user_vocab.encode(small)[np.arange(args.subscribers) % len(small)]
    ours, compute_runs = timed_twice(
        lambda: ours_top_k(features, emb, bias, scorer.items[0], args.k, args.batch))
    sample = min(args.subscribers, args.predict_sample)
    model = predict_model(model_dir)
    theirs, predict_runs = timed_twice(
        lambda: predict_top_k(features[:sample], model, scorer.item_features, args.k,
                              args.batch))
    compute, predict = min(compute_runs), min(predict_runs)
    return {"compute_seconds": compute, "compute_runs_seconds": compute_runs,
            "lightfm_predict_seconds": predict * args.subscribers / sample,
            "lightfm_predict_measured_seconds": predict,
            "lightfm_predict_measured_runs_seconds": predict_runs,
            "lightfm_predict_extrapolated_from": sample,
            "lightfm_predict_threads": PREDICT_THREADS,
            # the same top K from both (ties aside): the two sides compute the same thing
            "topk_agreement_with_predict": round(float(np.mean(ours[:sample] == theirs)), 4),
            "user_feature_columns": int(features.shape[1])}


# ---- the run ------------------------------------------------------------------------------------

def goals(figures: dict, args) -> tuple[dict, dict]:
    spec = {name: f"{op} {value}" for name, (op, value) in GOALS.items()}
    met = {name: (figures[name] <= value if op == "<=" else figures[name] >= value)
           if figures.get(name) is not None else None for name, (op, value) in GOALS.items()}
    met["at_goal_size"] = all(getattr(args, key) == value for key, value in GOAL_SIZE.items())
    met["all"] = met["at_goal_size"] and all(met[name] for name in GOALS)
    return {**spec, "at": GOAL_SIZE}, met


def progress(message: str) -> None:
    """A timestamped line on stderr: the run takes minutes to an hour at N = 1M."""
    print(f"{dt.datetime.now():%H:%M:%S} bench_scoring: {message}", file=sys.stderr, flush=True)


def measure(args, workdir: Path, cfg_path: Path) -> dict:
    cfg = config.load(cfg_path)
    spark = session(args.driver_memory, args.shuffle_partitions)
    setup = Setup(spark, cfg, args, workdir)
    quarter_n = max(1, args.subscribers // 4)
    progress(f"score job at N/4 = {quarter_n:,} (fresh driver)")
    prepared = {"quarter": setup.prepare(quarter_n)}
    quarter = score_in_fresh_driver(args, cfg_path, workdir, "quarter")
    quarter["scored_subscribers"] = setup.scored_subscribers()
    progress(f"score job at N = {args.subscribers:,}, then the write floor (fresh driver)")
    prepared["full"] = setup.prepare(args.subscribers)
    full = score_in_fresh_driver(args, cfg_path, workdir, "full", {
        "floor_rows": args.subscribers, "k": args.k, "offer_ids": setup.offer_ids,
        "template": setup.template})
    full["scored_subscribers"] = setup.scored_subscribers()
    progress(f"score {full['score_seconds']:.1f} s; ALS fit, then recommendForAllUsers")
    als_figures = als(setup, args, workdir)
    progress(f"ALS recommend {als_figures['als_seconds']:.1f} s; in-process kernels")
    kernel = in_process(setup, args)
    spark.stop()
    score, floor = full["score_seconds"], min(full["floor_runs_seconds"])
    rss, rss_quarter = full["peak_rss_mb"], quarter["peak_rss_mb"]
    figures = {
        "score_seconds": score, "floor_seconds": floor,
        "als_seconds": als_figures["als_seconds"],
        "als_fit_seconds": als_figures["als_fit_seconds"],
        "compute_seconds": kernel["compute_seconds"],
        "lightfm_predict_seconds": kernel["lightfm_predict_seconds"],
        "lightfm_predict_extrapolated_from": kernel["lightfm_predict_extrapolated_from"],
        "ratio_to_floor": score / floor,
        "speedup_vs_als": als_figures["als_seconds"] / score,
        "speedup_vs_lightfm_predict": kernel["lightfm_predict_seconds"]
                                      / kernel["compute_seconds"],
        "driver_peak_rss_mb": rss["total"], "driver_peak_rss_mb_quarter": rss_quarter["total"],
        "driver_peak_rss_ratio_to_quarter": (rss["total"] / rss_quarter["total"]
                                             if rss["total"] and rss_quarter["total"] else None),
    }
    figures = {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}
    return {
        "subscribers": args.subscribers, "offers": args.offers, "dim": args.dim, "k": args.k,
        **figures,
        "driver_peak_rss_definition": "peak RSS of the Python driver (ru_maxrss) + peak RSS "
            "(VmHWM) of its JVM, in a fresh driver process that runs only the scoring job "
            "(local mode: the JVM also runs the tasks' JVM side; Python workers not counted)",
        "driver_peak_rss_parts_mb": {"full": rss, "quarter": rss_quarter},
        "quarter": {"subscribers": quarter_n, "score_seconds": round(quarter["score_seconds"], 3),
                    "scored_subscribers": quarter["scored_subscribers"]},
        "scored_subscribers": full["scored_subscribers"],
        # the rest got no row because the rules left them no offer (consent opt-out, ...)
        "all_subscribers_scored": full["scored_subscribers"] + full["result"].get(
            "rules", {}).get("subscribers_without_offers", 0) == args.subscribers,
        "score_result": full["result"],
        "floor": {"runs_seconds": [round(s, 3) for s in full["floor_runs_seconds"]],
                  "rows": full["floor_rows_written"],
                  "how": "spark.range(N) x K rows of schemas.OFFERS from cheap expressions "
                         "(the other columns: one real row's values, as literals) through "
                         "DeltaRsWriter.replace_partition into its own table, in the N driver after "
                         "the job; the faster of two runs"},
        "als": {k: round(v, 3) if isinstance(v, float) else v for k, v in als_figures.items()},
        "in_process": {k: round(v, 3) if isinstance(v, float) else v for k, v in kernel.items()},
        "setup": {"base_subscribers": setup.n_small, "pipeline_seconds": round(setup.pipeline_seconds, 1),
                  "base_reused": args.keep_base,
                  "prepared": prepared,
                  "how": "the pipeline on the generated base population, then its feature rows "
                         "copied to N subscribers (new ids, subscriber_idx -1) and one rank-1 "
                         "offer each on the day before (fatigue history)",
                  "gate": "thresholds opened (max_drop_vs_published 0.99, "
                          "min_lift_over_popularity -1, min_row_share 0, min_catalogue_coverage "
                          "0): every check runs, none can refuse the timed publish"},
        "reference_issue_6": REFERENCE,
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.child:
        child(args)
        return {}
    workdir = Path(args.workdir).resolve()
    for stale in ([workdir] if not args.keep_base else
                  [*workdir.glob("child_*.json"), workdir / "als_recs"]):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    workdir.mkdir(parents=True, exist_ok=True)
    cfg_path = write_config(args, workdir)
    load_before = os.getloadavg()
    result = measure(args, workdir, cfg_path)
    result["goals"], result["met"] = goals(result, args)
    result["machine"] = {
        "cores": os.cpu_count(), "master": "local[2]", "driver_memory": args.driver_memory,
        "shuffle_partitions": args.shuffle_partitions, "python": platform.python_version(),
        "pyspark": pyspark.__version__, "lightfm": lightfm.__version__,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    result["measured_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    label = f"subscribers={args.subscribers},offers={args.offers},dim={args.dim},k={args.k}"
    runs = {**previous.get("runs", {}), label: result}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**result, "runs": runs}, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out}")
    return result


if __name__ == "__main__":
    main()
