"""Run writes or pipeline stages in a local[2,4] session (up to 4 attempts per task) with task
faults injected (tests/helpers/fault_injection.py) and print one line of figures as JSON. Started by
tests/stages/test_concurrency_and_faults.py in a process of its own, because the test session is
local[2] (1 attempt per task) and a process holds only one SparkContext.

    python tests/helpers/run_with_faults.py offers <work dir>
        replace_partition of 1,000 offers rows in 4 partitions into <work dir>/<mode>/offers,
        once per fault mode (one, all, exit)
    python tests/helpers/run_with_faults.py stages <work dir> <config.json> <stage>...
        the stages, every write's partition 0 failing in its first attempt
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import fault_injection
from pyspark.sql import SparkSession

from telcorec.core import config, schemas
from telcorec.io.writer import DeltaRsWriter
from telcorec.stages import pipeline

RUN = dt.date(2026, 11, 23)
ROWS, PARTS = 1000, 4


def session() -> SparkSession:
    spark = (SparkSession.builder.master("local[2,4]").appName("telcorec-faults")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.default.parallelism", "2")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.driver.memory", "1g")
             .getOrCreate())
    spark.sparkContext.setLogLevel("OFF")  # the injected faults would fill stderr
    return spark


def offers(spark: SparkSession, work: Path) -> dict:
    figures = {}
    for mode in fault_injection.MODES:
        with fault_injection.write_faults(mode, work / mode / "markers"):
            rows = fault_injection.offers_rows(spark, RUN, ROWS, PARTS)
            written = DeltaRsWriter().replace_partition(rows, work / mode / "offers",
                                                        schemas.OFFERS, RUN)
        figures[mode] = {"written": written,
                         "faults": fault_injection.injected_faults(work / mode / "markers")}
    return figures


def stages(spark: SparkSession, work: Path, cfg_json: str, names: list[str]) -> dict:
    cfg = config.from_dict(json.loads(Path(cfg_json).read_text()))
    with fault_injection.write_faults("one", work / "markers"):
        for name in names:
            pipeline.STAGES[name](spark, cfg, RUN)
    return {"stages": names, "faults": fault_injection.injected_faults(work / "markers")}


if __name__ == "__main__":
    scenario, work, *rest = sys.argv[1:]
    spark = session()
    if scenario == "offers":
        result = offers(spark, Path(work))
    else:
        result = stages(spark, Path(work), rest[0], rest[1:])
    print("FIGURES " + json.dumps(result), flush=True)
    os._exit(0)  # skip the JVM's slow shutdown: everything is committed by now
