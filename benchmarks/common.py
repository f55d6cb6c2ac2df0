"""What the feature benchmarks share: the local[2] session, the driver JVM's peak memory and the
machine record written beside every figure."""
from __future__ import annotations

import logging
import os
import platform
import sys
from pathlib import Path

import psutil
from pyspark.sql import SparkSession

from telcorec.core import config
from telcorec.core.config import Config
from telcorec.io.warehouse import Warehouse


def session(app: str, memory: str, partitions: int) -> SparkSession:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # the JIT flag as conf/spark/common.properties gives every job (the reason is there)
    return (SparkSession.builder.master("local[2]").appName(app)
            .config("spark.driver.memory", memory).config("spark.ui.enabled", "false")
            .config("spark.driver.extraJavaOptions", "-XX:-DontCompileHugeMethods")
            .config("spark.sql.shuffle.partitions", str(partitions))
            .config("spark.sql.session.timeZone", "UTC").getOrCreate())


def jvm_peak_mb() -> float | None:
    """Peak RSS (VmHWM) of the driver JVM this Python process started."""
    for child in psutil.Process().children(recursive=True):
        if "java" in child.name():
            for line in Path(f"/proc/{child.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    return None


def machine(driver_memory: str, partitions: int, load_before: tuple[float, ...]) -> dict:
    """Where a figure was measured; the load averages say how busy the shared cores were."""
    return {"cores": os.cpu_count(), "master": "local[2]", "python": platform.python_version(),
            "driver_memory": driver_memory, "shuffle_partitions": partitions,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()]}


def generated_warehouse(root: Path, subscribers: int, usage_scale: float) -> tuple[Config, Warehouse]:
    """The demo config generating `subscribers` at `usage_scale` (no bad rows) into `root`, with
    telcorec's own log lines (phases, counts) on stderr: what the feature benchmarks share."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("telcorec").setLevel(logging.INFO)
    cfg = config.load("conf/local.yaml").with_overrides(**{
        "warehouse": str(root), "generator.subscribers": subscribers,
        "generator.bad_row_rate": 0.0, "generator.usage_scale": usage_scale})
    return cfg, Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
