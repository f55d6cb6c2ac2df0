"""Command-line edge shared by every job in jobs/: arguments, config, logging, session."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Callable

from pyspark.sql import SparkSession

from telcorec.core import config as config_module
from telcorec.core import process
from telcorec.core.config import Config
from telcorec.core.exceptions import TelcorecError
from telcorec.io import runs
from telcorec.io.warehouse import Warehouse

DEFAULT_CONF = "conf/local.yaml"


def run_date_arg(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"run date must be YYYY-MM-DD, got {text!r}") from None


def parser(job: str, description: str,
           default_conf: str = DEFAULT_CONF) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"./spark-submit.sh {job}", description=description)
    p.add_argument("--conf", default=default_conf,
                   help=f"YAML config (default {default_conf}; see conf/base.yaml for every key)")
    p.add_argument("--run-date", type=run_date_arg, default=dt.date.today(),
                   help="the business date of the run, YYYY-MM-DD (default today); a rerun of "
                        "the same date replaces that date's rows")
    p.add_argument("--subscribers", type=int, default=None,
                   help="generated subscribers (overrides generator.subscribers)")
    p.add_argument("--shards", type=int, default=None,
                   help="LightFM shards (overrides train.shards)")
    return p


def load_config(args: argparse.Namespace) -> Config:
    cfg = config_module.load(args.conf)
    overrides = {}
    if args.subscribers is not None:
        overrides["generator.subscribers"] = args.subscribers
    if args.shards is not None:
        overrides["train.shards"] = args.shards
    return cfg.with_overrides(**overrides) if overrides else cfg


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "pyspark"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def emit(text: str) -> None:
    """Print the job's result: on stdout, or into the file the launcher names when it submits
    the job (spark-submit mixes the driver's log lines into its own stdout)."""
    path = os.environ.get("TELCOREC_RESULT_FILE")
    if not path:
        print(text)
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(text + "\n")


def die_with_the_jvm() -> None:
    """Under spark-submit this Python driver is a child of the JVM. Killed alone, the JVM would
    leave it running until its next Spark call fails and records the attempt `failed` with a
    connection error; instead (Linux) it dies with the JVM, its heartbeat stops and `runs` shows
    the attempt `abandoned`, as it was. Run directly (python jobs/X.py), nothing changes."""
    parent = os.getppid()
    try:
        if Path(f"/proc/{parent}/comm").read_text().strip() != "java":
            return
    except OSError:
        return
    if process.die_with_parent() and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)  # the JVM went before the call took effect


def main(job: str, description: str, body: Callable[[SparkSession, Config, argparse.Namespace],
                                                     str | None],
         extra: Callable[[argparse.ArgumentParser], None] | None = None,
         refuse: Callable[[Config], str | None] | None = None,
         default_conf: str = DEFAULT_CONF) -> None:
    """Parse, validate config, start Spark, run `body`, print what it returns; exit 2 on a
    user-actionable error with its message instead of a stack trace. `refuse(cfg)` returns why
    the job must not run with this config (checked before Spark starts), or None."""
    p = parser(job, description, default_conf)
    if extra is not None:
        extra(p)
    args = p.parse_args()
    configure_logging()
    die_with_the_jvm()
    try:
        cfg = load_config(args)
    except TelcorecError as exc:
        p.exit(2, f"error: {exc}\n")
    reason = refuse(cfg) if refuse is not None else None
    if reason:
        p.exit(2, f"error: {reason}\n")
    spark = SparkSession.builder.appName(f"telcorec-{job}").getOrCreate()
    try:
        out = body(spark, cfg, args)
        if out:
            emit(out)
    except TelcorecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        spark.stop()
        sys.exit(2)
    spark.stop()


def recorded_stage(cfg: Config, job: str, run_date: dt.date,
                   stage: Callable[[], object]) -> object:
    """Run `stage()` as an attempt of its own in `runs` (running, then succeeded, failed or
    rejected; abandoned if killed), so a stage run alone is recorded like the pipeline."""
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    results = runs.recorded(wh.table("runs"), wh.table("metrics"), cfg, run_date,
                            lambda done: done.__setitem__(job, stage()), job=job)
    return results[job]


def stage_main(job: str, description: str,
               stage: Callable[[SparkSession, Config, dt.date], object]) -> None:
    """`main` for a job that runs one pipeline stage, recorded as an attempt of its own, and
    prints its result as JSON. A stage the config leaves out of the pipeline is refused with the
    reason (exit 2, before Spark starts)."""
    from telcorec.stages.pipeline import skip_reason  # the pipeline imports every stage: only here

    def body(spark: SparkSession, cfg: Config, args: argparse.Namespace) -> str:
        result = recorded_stage(cfg, job, args.run_date,
                                lambda: stage(spark, cfg, args.run_date))
        return json.dumps(result, indent=2, default=str)

    main(job, description, body, refuse=lambda cfg: skip_reason(cfg, job))
