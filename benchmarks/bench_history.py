"""The subscriber's history in the LightFM representation: features-only against history-aware.

    .venv/bin/python benchmarks/bench_history.py                       # default generated data
    .venv/bin/python benchmarks/bench_history.py --conf conf/ibm_telco.yaml --ks 3,5

Runs the project's own stages for one run date (generate when the config's input source is
`generated`, ingest, features, interactions), then for each representation in --representations
the train and evaluate stages with `train.representation` set to it, and reads `metrics` (the
full protocol, segment `all`, warm and cold subscribers as served). On generated data the oracle
ranks by the generator's true utilities, hidden tastes included; popularity is the floor.

With --raw it also fits plain LightFM (the same train.lightfm hyperparameters and epochs, no
early stopping) on the same training pairs, once with identity features only (one embedding per
subscriber, LightFM's default) and once with the subscribers' feature tokens only, and measures
hit_rate@k and precision@k on the same held-out pairs with the training offers excluded, as the
evaluate stage does (this part reads the interactions to the driver: a benchmark on small data).

Prints one line per model and writes benchmarks/results/bench_history.json (keyed by config and
subscribers; earlier runs kept): per representation, lightfm_warp's metrics, and the ratios to
the oracle and to the features-only model.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import tempfile
import time
from pathlib import Path

import common  # benchmarks/common.py and raw_lightfm.py, beside this script
import raw_lightfm as raw
import yaml
from pyspark.sql import SparkSession

from telcorec.core import config, schemas
from telcorec.core.columns import SUBSCRIBER_CATEGORICALS, Col
from telcorec.io import metrics_store
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter
from telcorec.models.encoding import fit_vocabulary
from telcorec.stages import pipeline

RUN = dt.date(2026, 11, 23)
MODEL = "lightfm_warp"
RESULTS = Path(__file__).resolve().parent / "results" / "bench_history.json"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conf", default="conf/local.yaml", help="config (default the demo's)")
    parser.add_argument("--subscribers", type=int, default=8000,
                        help="generated subscribers (default 8,000, the demo's)")
    parser.add_argument("--representations", default="features,features+history")
    parser.add_argument("--ks", default="5,10", help="evaluation.ks (default 5,10)")
    parser.add_argument("--raw", action="store_true",
                        help="also fit plain LightFM, identity-only and features-only")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override (YAML value), e.g. train.lightfm.no_components=64")
    parser.add_argument("--out", default=str(RESULTS))
    return parser.parse_args(argv)


def headline(wh: Warehouse, k: int) -> dict[str, dict[str, float]]:
    rows = metrics_store.run_metrics(wh.table("metrics"), RUN)
    rows = rows[rows["protocol"] == "full"]
    out: dict[str, dict[str, float]] = {}
    for r in rows[rows["segment"] == "all"].itertuples():
        if r.k in (k, 0) or r.metric == "hit_rate":
            out.setdefault(r.model, {})[f"{r.metric}@{r.k}" if r.k else r.metric] = round(
                float(r.value), 4)
    # by history length (history_0, history_1-2, history_3+): where history helps
    by_history = rows[rows["segment"].str.startswith("history_") & (rows["metric"] == "precision")
                      & (rows["k"] == k)]
    for r in by_history.itertuples():
        out.setdefault(r.model, {})[f"precision@{k}[{r.segment}]"] = round(float(r.value), 4)
    return out


def raw_lightfm(spark: SparkSession, wh: Warehouse, cfg, k: int) -> dict[str, dict[str, float]]:
    """Plain LightFM, identity-only and features-only, on the run's train/test split."""
    split = raw.run_split(spark, wh, RUN)
    features = DeltaRsWriter().read(spark, wh.table("subscriber_features"),
                                    schemas.SUBSCRIBER_FEATURES, [RUN]).toPandas()
    feats = features.set_index(Col.SUBSCRIBER_ID).loc[split.users].reset_index()
    feats = feats.astype({c: str for c in SUBSCRIBER_CATEGORICALS})
    vocab = fit_vocabulary(spark.createDataFrame(feats[list(SUBSCRIBER_CATEGORICALS)]),
                           SUBSCRIBER_CATEGORICALS)
    p = cfg.train.lightfm
    return {name: raw.fit_and_rank(split, p, p.epochs, cfg.seed, k, user_features)
            for name, user_features in (("raw_lightfm_identity", None),
                                        ("raw_lightfm_features", vocab.encode(feats)))}


def main(argv=None) -> dict:
    args = parse_args(argv)
    ks = [int(k) for k in args.ks.split(",")]
    base = config.load(args.conf)
    with tempfile.TemporaryDirectory(prefix="bench_history_") as tmp:
        overrides = {"warehouse": str(Path(tmp) / "wh"), "evaluation.ks": ks, "gate.k": ks[0],
                     "scoring.k": max(base.scoring.k, max(ks))}
        if base.inputs.source == "generated":
            overrides["generator.subscribers"] = args.subscribers
        overrides.update({k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)})
        cfg = base.with_overrides(**overrides)
        spark = common.session("bench_history", "3g", 4)
        wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
        started = time.monotonic()
        for name in ("generate", "ingest", "features", "interactions"):
            if pipeline.skip_reason(cfg, name) is None:
                pipeline.STAGES[name](spark, cfg, RUN)
        data_seconds = time.monotonic() - started
        result = {"config": args.conf, "overrides": args.set, "subscribers": args.subscribers if
                  base.inputs.source == "generated" else None, "k": ks[0],
                  "data_seconds": round(data_seconds, 1), "by_representation": {}}
        for representation in args.representations.split(","):
            run_cfg = cfg.with_overrides(**{"train.representation": representation})
            started = time.monotonic()
            pipeline.STAGES["train"](spark, run_cfg, RUN)
            train_seconds = time.monotonic() - started
            pipeline.STAGES["evaluate"](spark, run_cfg, RUN)
            metrics = headline(wh, ks[0])
            result["by_representation"][representation] = {
                "train_seconds": round(train_seconds, 1), "metrics": metrics}
        if args.raw:
            result["raw"] = raw_lightfm(spark, wh, cfg, ks[0])
        spark.stop()
    p = f"precision@{ks[0]}"
    reps = result["by_representation"]
    features = reps.get("features", {}).get("metrics", {}).get(MODEL, {}).get(p)
    for representation, got in reps.items():
        mine = got["metrics"][MODEL][p]
        oracle = got["metrics"].get("oracle", {}).get(p)
        got["ratio_to_oracle"] = round(mine / oracle, 3) if oracle else None
        got["ratio_to_features_only"] = round(mine / features, 3) if features else None
        print(f"{representation:<18} {MODEL} {p} {mine:.4f}  hit_rate@{ks[0]} "
              f"{got['metrics'][MODEL].get(f'hit_rate@{ks[0]}', float('nan')):.4f}  "
              f"x oracle {got['ratio_to_oracle']}  x features-only "
              f"{got['ratio_to_features_only']}  (train {got['train_seconds']} s)")
    baselines = next(iter(reps.values()))["metrics"]
    for name in ("popularity", "oracle", "random", "content"):
        if name in baselines:
            print(f"{name:<18} {p} {baselines[name][p]:.4f}  hit_rate@{ks[0]} "
                  f"{baselines[name].get(f'hit_rate@{ks[0]}', float('nan')):.4f}")
    for name, got in result.get("raw", {}).items():
        print(f"{name:<18} {p} {got[p]:.4f}  hit_rate@{ks[0]} {got[f'hit_rate@{ks[0]}']:.4f}")
    result.update({"measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                   "python": platform.python_version()})
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    label = (f"{args.conf},subscribers={result['subscribers']},ks={args.ks}"
             + "".join(f",{s}" for s in args.set))
    previous[label] = result
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(previous, indent=2, sort_keys=True))
    return result


if __name__ == "__main__":
    main()
