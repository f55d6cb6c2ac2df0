"""telcorec's own pipeline path against raw LightFM WARP on any interactions file, same split.

    .venv/bin/python benchmarks/bench_vs_raw_lightfm.py --ratings ../shared/data/ml-100k/ratings.csv
    .venv/bin/python benchmarks/bench_vs_raw_lightfm.py --generate /tmp/ratings.csv  # a generated
                                                          # MovieLens-style file (synthetic/ratings.py)

The file is read through the config's interactions mapping (default conf/interactions_example.yaml:
userId,movieId,rating,timestamp); the items attribute table is left out unless --items names one.
Then (1) telcorec's stages ingest -> features -> interactions -> train -> evaluate, with
lightfm_warp's precision@k read from `metrics` (protocol full, all subscribers), and (2) plain
`lightfm.LightFM(loss="warp")` with the same train.lightfm hyperparameters, identity features only,
fitted on the same training pairs and weights for train.lightfm.epochs (and, when telcorec's early
stopping chose fewer, also for that many), ranked with each user's training items excluded, on
the same held-out pairs. The run date defaults to the day after the file's latest timestamp, so a temporal
split keeps its meaning.

Prints both figures and their ratio and writes benchmarks/results/<name>.json (--name, default the
file's stem; earlier runs under other labels kept).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import common  # benchmarks/common.py and raw_lightfm.py, beside this script
import numpy as np
import pandas as pd
import raw_lightfm as raw
import yaml

from telcorec.core import config
from telcorec.io import metrics_store
from telcorec.io.artifacts import MANIFEST
from telcorec.io.warehouse import Warehouse
from telcorec.stages import pipeline
from telcorec.synthetic.ratings import write_ratings

MODEL = "lightfm_warp"
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ratings", help="the interactions file (csv, the config's mapping)")
    source.add_argument("--generate", metavar="PATH",
                        help="write a generated MovieLens-style file there and use it")
    parser.add_argument("--users", type=int, default=943, help="with --generate (default 943)")
    parser.add_argument("--items", type=int, default=1682, help="with --generate (default 1682)")
    parser.add_argument("--item-attributes", default="",
                        help="the items attribute file (default none: interactions only)")
    parser.add_argument("--conf", default="conf/interactions_example.yaml")
    parser.add_argument("--k", type=int, default=10, help="precision@k (default 10)")
    parser.add_argument("--run-date", type=dt.date.fromisoformat,
                        help="default: the day after the file's latest timestamp")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override (YAML value), e.g. train.lightfm.epochs=30")
    parser.add_argument("--name", help="results file name (default the file's stem)")
    parser.add_argument("--out-dir", default=str(RESULTS))
    return parser.parse_args(argv)


def default_run_date(path: Path, cfg) -> dt.date:
    """The day after the latest event (the file's timestamp column, in the config's unit)."""
    src = cfg.inputs.interactions
    column = src.events.columns.get("timestamp")
    if not column or src.timestamp_unit == "format":
        return dt.date.today()
    stamps = pd.read_csv(path, usecols=[column])[column]
    seconds = stamps.max() / (1000 if src.timestamp_unit == "milliseconds" else 1)
    return dt.datetime.fromtimestamp(int(seconds), dt.timezone.utc).date() + dt.timedelta(days=1)


def telcorec_figure(wh: Warehouse, run_date: dt.date, k: int) -> dict[str, float]:
    rows = metrics_store.run_metrics(wh.table("metrics"), run_date)
    rows = rows[(rows["protocol"] == "full") & (rows["segment"] == metrics_store.ALL_SEGMENTS)]
    out = {}
    for r in rows.itertuples():
        if r.k == k and r.metric in ("precision", "hit_rate"):
            out.setdefault(r.model, {})[f"{r.metric}@{k}"] = round(float(r.value), 4)
    return out


def trained_epochs(wh: Warehouse, run_date: dt.date, fallback: int) -> int:
    """The epochs lightfm_warp's final fit ran (early stopping's choice, the mean over shards),
    from the model's manifest; `fallback` when early stopping is off."""
    manifest = json.loads((wh.models(run_date, MODEL) / MANIFEST).read_text())
    epochs = [r.get("best_epoch") for r in manifest["shard_results"] if r.get("best_epoch")]
    return int(round(np.mean(epochs))) if epochs else fallback


def main(argv=None, spark=None) -> dict:
    """`spark`: a session to use (and leave running); by default one of its own, stopped at
    the end."""
    args = parse_args(argv)
    path = Path(args.ratings or write_ratings(args.generate, users=args.users,
                                              items=args.items)).resolve()
    base = config.load(args.conf)
    run_date = args.run_date or default_run_date(path, base)
    name = args.name or path.stem
    with tempfile.TemporaryDirectory(prefix="bench_vs_raw_") as tmp:
        overrides = {"warehouse": str(Path(tmp) / "wh"),
                     "inputs.interactions.path": str(path.parent),
                     "inputs.interactions.events.path": path.name,
                     "inputs.interactions.items.path": args.item_attributes,
                     "evaluation.ks": [args.k], "gate.k": args.k,
                     "scoring.k": max(base.scoring.k, args.k)}
        overrides.update({k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)})
        cfg = base.with_overrides(**overrides)
        own = spark is None
        spark = common.session("bench_vs_raw_lightfm", "3g", 4) if own else spark
        wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
        started = time.monotonic()
        for stage in ("ingest", "features", "interactions", "train", "evaluate"):
            if pipeline.skip_reason(cfg, stage) is None:
                pipeline.STAGES[stage](spark, cfg, run_date)
        telcorec_seconds = time.monotonic() - started
        figures = telcorec_figure(wh, run_date, args.k)
        split = raw.run_split(spark, wh, run_date)
        params = cfg.train.lightfm
        epochs = trained_epochs(wh, run_date, params.epochs)
        started = time.monotonic()
        raw_figures = raw.fit_and_rank(split, params, params.epochs, cfg.seed, args.k)
        raw_seconds = time.monotonic() - started
        raw_same_epochs = (raw_figures if epochs == params.epochs else
                           raw.fit_and_rank(split, params, epochs, cfg.seed, args.k))
        if own:
            spark.stop()
    p = f"precision@{args.k}"
    mine, theirs = figures[MODEL][p], raw_figures[p]
    result = {"file": str(path), "config": args.conf, "overrides": args.set,
              "run_date": run_date.isoformat(), "representation": cfg.train.representation,
              "users": len(split.users), "items": int(split.fit_on.shape[1]),
              "train_pairs": int(split.fit_on.nnz), "test_pairs": int(split.test.nnz),
              "epochs": params.epochs, "telcorec_epochs": epochs, "telcorec": figures[MODEL],
              "raw_lightfm_identity": raw_figures,
              "raw_lightfm_identity_at_telcorec_epochs": raw_same_epochs,
              "popularity": figures.get("popularity"),
              "ratio_telcorec_over_raw": round(mine / theirs, 3) if theirs else None,
              "telcorec_seconds": round(telcorec_seconds, 1),
              "raw_seconds": round(raw_seconds, 1),
              "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    print(f"telcorec {MODEL} {p} {mine:.4f}  raw LightFM WARP (identity) {p} {theirs:.4f}  "
          f"ratio {result['ratio_telcorec_over_raw']}  popularity "
          f"{(figures.get('popularity') or {}).get(p, float('nan')):.4f}  ({result['users']} users,"
          f" {result['items']} items; raw {params.epochs} epochs, telcorec {epochs}: raw at "
          f"{epochs} epochs {raw_same_epochs[p]:.4f})")
    out = Path(args.out_dir) / f"{name}.json"
    previous = json.loads(out.read_text()) if out.is_file() else {}
    previous[",".join([args.conf, *args.set]) or "default"] = result
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(previous, indent=2, sort_keys=True))
    return result


if __name__ == "__main__":
    main()
