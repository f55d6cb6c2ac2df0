"""Subprocess target of tests/publish/test_publish_reliability.py: one publishing attempt to kill.

It does what the score job does at its end, on rows the test staged from a real scored run:
inside `runs.recorded` (a `running` row, then `succeeded` or `failed`, as jobs/score.py), it
publishes the run date's partition of `offers` through `DeltaRsWriter.replace_partition` (the output
contract, the distributed Parquet writes, the commit). Every row it publishes carries `--label` as its run_id, so the test can
tell this attempt's rows from every other one's.

It prints a marker line per phase (flushed) for the test to time its kill on:
  PHASE spark        the session is up
  PHASE publishing   replace_partition starts (contract check, then the task writes)
  PHASE commit       the driver starts the Delta commit (delta_rs.commit)
  PHASE committed    the commit returned
  PHASE done         `succeeded` is recorded
The commit markers come from a wrapper around delta_rs.commit that calls the real function.
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import sys

from deltalake import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from telcorec.core import config, schemas
from telcorec.core.columns import Col
from telcorec.io import delta_rs, runs
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter
from telcorec.publish.contract import OffersContract


def phase(name: str) -> None:
    print(f"PHASE {name}", flush=True)


def _marked(commit):
    @functools.wraps(commit)
    def wrapper(*args, **kwargs):
        phase("commit")
        out = commit(*args, **kwargs)
        phase("committed")
        return out
    return wrapper


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--conf", required=True)
    p.add_argument("--staged", required=True, help="Parquet file of offers rows to publish")
    p.add_argument("--catalogue-date", required=True, type=dt.date.fromisoformat)
    p.add_argument("--run-date", required=True, type=dt.date.fromisoformat)
    p.add_argument("--label", required=True)
    p.add_argument("--files", type=int, default=6, help="tasks, hence data files, to write")
    args = p.parse_args()

    cfg = config.load(args.conf)
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    spark = (SparkSession.builder.master("local[2]").appName("publish-kill-target")
             .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
             .config("spark.driver.memory", "1g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    phase("spark")
    catalogue = DeltaTable(str(wh.table("offer_features"))).to_pyarrow_table(
        partitions=[(Col.RUN_DATE, "=", args.catalogue_date.isoformat())],
        columns=[Col.OFFER_ID]).column(Col.OFFER_ID).to_pylist()
    rows = (spark.read.schema(schemas.OFFERS).parquet(args.staged)
            .withColumn(Col.RUN_DATE, F.lit(args.run_date))
            .withColumn(Col.RUN_ID, F.lit(args.label))
            .repartition(args.files))
    contract = OffersContract(tuple(catalogue), cfg.scoring.k)
    delta_rs.commit = _marked(delta_rs.commit)

    def publish(done: dict) -> None:
        phase("publishing")
        n = DeltaRsWriter().replace_partition(rows, wh.table("offers"), schemas.OFFERS,
                                              args.run_date, contract=contract)
        done["score"] = {"offers": n, "model_version": args.label}

    # the same attempt record as the score job: running, then succeeded or failed
    runs.recorded(wh.table("runs"), wh.table("metrics"), cfg, args.run_date, publish)
    phase("done")
    spark.stop()


if __name__ == "__main__":
    sys.exit(main())
