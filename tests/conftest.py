"""One local[2] SparkSession for the whole test run (Delta's own test setup does the same)."""
from __future__ import annotations

import datetime as dt
import os
import sys

import pytest
from pyspark.sql import SparkSession

PIPELINE_RUN_DATE = dt.date(2026, 11, 23)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    # Python workers inherit this: test modules can define small scorers used inside tasks, and
    # importlib mode names a test module by its path from the repository (tests.models.test_x)
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (os.path.dirname(tests_dir), tests_dir, os.environ.get("PYTHONPATH", ""))
        if p)
    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = (SparkSession.builder.master("local[2]").appName("telcorec-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.default.parallelism", "2")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.warehouse.dir", str(warehouse))
               .config("spark.driver.memory", "2g")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def tiny_pipeline(spark, tmp_path_factory):
    """One whole pipeline run at 600 generated subscribers, built once for every test module
    that reads a complete warehouse: (config, warehouse, the stages' results)."""
    from telcorec.core import config
    from telcorec.io.warehouse import Warehouse
    from telcorec.stages import pipeline

    root = tmp_path_factory.mktemp("wh")
    cfg = config.load("conf/local.yaml").with_overrides(**{
        "warehouse": str(root), "generator.subscribers": 600})
    results = pipeline.run(spark, cfg, PIPELINE_RUN_DATE)
    return cfg, Warehouse.from_config(cfg.warehouse, cfg.inputs.path), results
