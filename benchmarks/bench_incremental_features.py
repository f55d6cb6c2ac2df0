"""Benchmark: the daily (incremental) feature stage against the full recompute it replaces.

    python benchmarks/bench_incremental_features.py [--subscribers 100000] [--usage-scale 1.0]

Generates the synthetic operator's tables for day D (written straight into the validated tables:
the benchmark times features, not ingest), then lets one more day of CDR arrive for D + 1 (the
CDR of D - 7 again, seven days later, with new event ids: a realistic day of the same weekday)
and in one Spark session measures
- full_seconds: the feature stage for D as a full recompute (what every run cost before),
- incremental_seconds: the feature stage for D + 1, continuing from D's window state,
then recomputes D + 1 in full and compares the two `subscriber_features` partitions in Spark
(integer and string columns equal, floating columns within 1e-9 relative): `identical`.
Prints and writes benchmarks/results/bench_incremental_features.json, or the file `--results`
names (earlier runs at other sizes and layouts kept under "runs").

--layout sets how the rows lie in the CDR partition's files: `time` (sorted by event time in each
file, as a day-by-day delivery or an ingest that sorts by time writes them: a day's read skips the
other days' row groups) or `ingest` (in event id order, as today's ingest writes them: a day's
read scans every row group and drops the other days' rows).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import time
from pathlib import Path

from common import generated_warehouse, jvm_peak_mb, machine, session
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core import config, schemas
from telcorec.core.columns import Col
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter
from telcorec.stages import features as features_stage
from telcorec.synthetic.generate import generate

D = dt.date(2026, 11, 23)
NEXT = D + dt.timedelta(days=1)
RESULTS = Path(__file__).resolve().parent / "results" / "bench_incremental_features.json"
LAYOUTS = {"time": Col.EVENT_TS, "ingest": Col.EVENT_ID}


def with_optional(df: DataFrame, name: str) -> DataFrame:
    for field in schemas.OPTIONAL[name].fields:
        df = df.withColumn(field.name, F.lit(None).cast(field.dataType))
    return df


def next_day(cdr: DataFrame) -> DataFrame:
    """The CDR that arrive for D + 1: day D - 7's rows seven days later, with new ids."""
    week_ago = cdr.filter(F.to_date(Col.EVENT_TS) == D - dt.timedelta(days=7))
    return (week_ago.withColumn(Col.EVENT_TS, F.col(Col.EVENT_TS) + F.expr("INTERVAL 7 DAYS"))
            .withColumn(Col.EVENT_ID, F.concat(Col.EVENT_ID, F.lit("+7d")))
            .withColumn(Col.RUN_DATE, F.lit(NEXT)))


def ensure_data(spark: SparkSession, cfg: config.Config, wh: Warehouse, layout: str) -> dict:
    """Write the validated tables of D and D + 1 unless this warehouse already has them."""
    marker = wh.root / "bench_data.json"
    if marker.is_file():
        return json.loads(marker.read_text())
    tables = generate(spark, cfg.generator, cfg.seed, D)
    rows = {}
    for name in schemas.INPUTS:
        df = with_optional(getattr(tables, name), name)
        if name == "cdr":
            df = df.sortWithinPartitions(LAYOUTS[layout])
        for day in (D,) if name == "cdr" else (D, NEXT):
            rows[f"{name}@{day}"] = DeltaRsWriter().replace_partition(
                df.withColumn(Col.RUN_DATE, F.lit(day)), wh.table(name), schemas.accepted(name),
                day)
    # D + 1's partition: D's rows in D's files' order, the new day in files of its own
    cdr = DeltaRsWriter().read(spark, wh.table("cdr"), schemas.accepted("cdr"), [D])
    new_day = next_day(cdr).sortWithinPartitions(LAYOUTS[layout])
    rows[f"cdr@{NEXT}"] = DeltaRsWriter().replace_partition(
        cdr.withColumn(Col.RUN_DATE, F.lit(NEXT)).unionByName(new_day), wh.table("cdr"),
        schemas.accepted("cdr"), NEXT)
    data = {"cdr_rows": rows[f"cdr@{NEXT}"], "new_day_rows": rows[f"cdr@{NEXT}"] - rows[f"cdr@{D}"],
            "rows": rows}
    marker.write_text(json.dumps(data))
    return data


def mismatches(got: DataFrame, want: DataFrame) -> int:
    """Rows of `want` without an equal row in `got` (floats within 1e-9 relative), plus rows
    of `got` without one in `want`: one aggregate, nothing per subscriber on the driver."""
    same = []
    for field in schemas.SUBSCRIBER_FEATURES.fields:
        a, b = F.col(f"g.{field.name}"), F.col(f"w.{field.name}")
        if isinstance(field.dataType, T.DoubleType):
            close = F.abs(a - b) <= F.lit(1e-9) * F.greatest(F.abs(a), F.abs(b))
            same.append((a.isNull() & b.isNull()) | F.coalesce(close, F.lit(False)))
        else:
            same.append(a.eqNullSafe(b))
    joined = got.alias("g").join(want.alias("w"), on=Col.SUBSCRIBER_ID, how="full_outer")
    equal = F.col(f"g.{Col.RUN_DATE}").isNotNull() & F.col(f"w.{Col.RUN_DATE}").isNotNull()
    for condition in same[2:]:  # run_date and subscriber_id: the join
        equal = equal & condition
    return joined.filter(~equal).count()


def timed(spark, cfg, day, full):
    started = time.monotonic()
    result = features_stage.run(spark, cfg, day, full=full)
    return time.monotonic() - started, result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--subscribers", type=int, default=100_000)
    p.add_argument("--usage-scale", type=float, default=1.0,
                   help="generator.usage_scale: x the CDR rows per subscriber (default 1.0)")
    p.add_argument("--layout", choices=sorted(LAYOUTS), default="time")
    p.add_argument("--warehouse", default="/tmp/telcorec-bench-incremental")
    p.add_argument("--driver-memory", default="6g")
    p.add_argument("--shuffle-partitions", type=int, default=8)
    p.add_argument("--results", type=Path, default=RESULTS,
                   help="the JSON to write (default: the committed results file; give a /tmp "
                        "path for trial runs at other sizes)")
    p.add_argument("--generate-only", action="store_true",
                   help="write the data and stop (time later, on a quiet machine)")
    args = p.parse_args()
    key = f"subscribers={args.subscribers},usage={args.usage_scale},layout={args.layout}"
    root = Path(args.warehouse) / key
    cfg, wh = generated_warehouse(root, args.subscribers, args.usage_scale)
    spark = session("bench-incremental-features", args.driver_memory, args.shuffle_partitions)
    spark.sparkContext.setLogLevel("ERROR")
    started = time.monotonic()
    data = ensure_data(spark, cfg, wh, args.layout)
    if args.generate_only:
        print(json.dumps({**data, "generate_seconds": round(time.monotonic() - started, 1)}))
        spark.stop()
        return
    load_before = os.getloadavg()
    full_seconds, full_result = timed(spark, cfg, D, full=True)
    incremental_seconds, result = timed(spark, cfg, NEXT, full=False)
    if result["usage_window"] != "incremental":
        raise SystemExit(f"the run of {NEXT} was not incremental: {result['usage_window']}")
    features = wh.table("subscriber_features")
    incremental = DeltaRsWriter().read(spark, features, schemas.SUBSCRIBER_FEATURES, [NEXT])
    kept = wh.table("bench_incremental_rows")  # the rows to check, before D + 1 is recomputed
    DeltaRsWriter().replace_partition(incremental, kept, schemas.SUBSCRIBER_FEATURES, NEXT)
    recompute_seconds, _ = timed(spark, cfg, NEXT, full=True)
    different = mismatches(
        DeltaRsWriter().read(spark, kept, schemas.SUBSCRIBER_FEATURES, [NEXT]),
        DeltaRsWriter().read(spark, features, schemas.SUBSCRIBER_FEATURES, [NEXT]))
    python_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    run = {
        "window_days": cfg.ingest.cdr_window_days, "late_days": cfg.features.late_days,
        "subscribers": args.subscribers, "usage_scale": args.usage_scale,
        "layout": args.layout, "cdr_rows": data["cdr_rows"], "new_day_rows": data["new_day_rows"],
        "full_seconds": round(full_seconds, 2), "incremental_seconds": round(incremental_seconds, 2),
        "ratio_full_over_incremental": round(full_seconds / incremental_seconds, 2),
        # where each run's time went (the stage's own phases: usage_daily is the CDR days'
        # aggregation, window_state the rest of the window; the others are per subscriber)
        "full_phases": full_result["seconds"], "incremental_phases": result["seconds"],
        "full_recompute_of_next_day_seconds": round(recompute_seconds, 2),
        "identical": different == 0, "mismatching_rows": different,
        "subscriber_features": result["subscriber_features"],
        "driver_peak_rss_mb": round(python_peak + (jvm_peak_mb() or 0.0), 1),
        "driver_python_peak_rss_mb": round(python_peak, 1), "driver_jvm_peak_rss_mb": jvm_peak_mb(),
        "machine": machine(args.driver_memory, args.shuffle_partitions, load_before),
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    spark.stop()
    results = args.results
    previous = json.loads(results.read_text()) if results.is_file() else {}
    runs = {**previous.get("runs", {}), key: run}
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps({**run, "runs": runs}, indent=2) + "\n")
    print(json.dumps(run, indent=2))


if __name__ == "__main__":
    main()
