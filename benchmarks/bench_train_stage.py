"""The LightFM train stage's work on one shard against plain `LightFM.fit` on the same pairs.

    .venv/bin/python benchmarks/bench_train_stage.py                 # MovieLens-1M shaped
    .venv/bin/python benchmarks/bench_train_stage.py --pairs 200000  # a smaller try

On a MovieLens-1M-shaped interactions set (benchmarks/movielens_shaped.py: 6,040 users x 3,706
items, ~1M pairs) in one process and one thread on both sides:

  stage_seconds   the function a train-stage task runs on its shard's rows
                  (training.make_shard_trainer): building the matrices (leave-one-out rows
                  with history tokens for train.representation features+history), fitting the
                  warp variant with the configured early stopping (validation checks, then the
                  refit), writing the arrays
  raw_seconds     `LightFM.fit` on the same user x item matrix with LightFM's defaults
                  (identity features), the same components, loss, learning rate, epochs, seed
  ratio           stage_seconds / raw_seconds (the issue's bound: <= 2), both timed in this run

Also recorded: the stage's matrix building, each validation check (epoch, precision, elapsed)
and the refit's epochs. Prints the figures and writes benchmarks/results/bench_train_stage.json
(earlier runs with other arguments are kept under "runs").
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import movielens_shaped  # noqa: E402
import raw_lightfm  # noqa: E402

from telcorec.core import config  # noqa: E402
from telcorec.core.columns import SUBSCRIBER_CATEGORICALS, Col  # noqa: E402
from telcorec.io import artifacts  # noqa: E402
from telcorec.models.encoding import Vocabulary  # noqa: E402
from telcorec.models.lightfm import loo, training  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "bench_train_stage.json"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    movielens_shaped.add_arguments(parser)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--conf", default="conf/interactions_example.yaml",
                        help="config whose train section the stage uses (default %(default)s)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, VALUE as JSON (repeatable)")
    parser.add_argument("--history-budget", type=int, default=loo.HISTORY_TOKEN_BUDGET,
                        help="history tokens the leave-one-out rows may hold; rows are capped "
                             "to fit (default %(default)s)")
    parser.add_argument("--out", default=str(RESULTS))
    return parser.parse_args(argv)


def vocabularies(pdf: pd.DataFrame, items: int) -> tuple[Vocabulary, sp.csr_matrix]:
    tokens = sorted({f"{c}={v}" for c in SUBSCRIBER_CATEGORICALS for v in pdf[c].unique()})
    return Vocabulary(SUBSCRIBER_CATEGORICALS, tuple(tokens)), sp.identity(items, format="csr",
                                                                            dtype=np.float32)


def stage_seconds(pdf, user_vocab, item_features, cfg, out_root: Path) -> tuple[float, dict]:
    variants = {"lightfm_warp": training.variant_params(cfg.train, cfg.seed)["lightfm_warp"]}
    trainer = training.make_shard_trainer(variants, cfg.train.early_stopping, user_vocab,
                                          item_features, str(out_root), cfg.seed,
                                          cfg.train.history)
    started = time.monotonic()
    result = trainer(pdf)
    seconds = time.monotonic() - started
    meta = json.loads((Path(result["path"].iloc[0]) / artifacts.META).read_text())
    return seconds, {"best_epoch": int(result["best_epoch"].iloc[0]),
                     "validation_checks": meta.get("history"),
                     "validation_pairs": meta.get("validation_pairs"),
                     "epoch_seconds": meta.get("epoch_seconds")}


def raw_seconds(pdf: pd.DataFrame, items: int, cfg) -> float:
    p = cfg.train.variant("warp")
    codes, ids = pd.factorize(pdf[Col.SUBSCRIBER_ID], sort=True)
    matrix = sp.coo_matrix((pdf[Col.WEIGHT].to_numpy(np.float32),
                            (codes, pdf[Col.OFFER_IDX].to_numpy(np.int64))),
                           shape=(len(ids), items))
    model = raw_lightfm.model(p, cfg.seed)
    started = time.monotonic()
    model.fit(matrix, epochs=p.epochs, num_threads=1)
    return time.monotonic() - started


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    cfg = config.load(args.conf).with_overrides(**{"train.lightfm.epochs": args.epochs,
                                                   **overrides})
    loo.HISTORY_TOKEN_BUDGET = args.history_budget  # the module's budget, read by each fit
    pdf = movielens_shaped.interactions(args.users, args.items, args.pairs)
    cap = loo.history_cap(pd.factorize(pdf[Col.SUBSCRIBER_ID])[0])
    user_vocab, item_features = vocabularies(pdf, args.items)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-train-stage-") as scratch:
        stage, detail = stage_seconds(pdf, user_vocab, item_features, cfg, Path(scratch))
    raw = raw_seconds(pdf, args.items, cfg)
    result = {
        "users": args.users, "items": args.items, "pairs": len(pdf), "epochs": args.epochs,
        "representation": cfg.train.representation, "history_cap": cap,
        "history_token_budget": args.history_budget,
        "conf": args.conf, "overrides": overrides,
        "early_stopping": asdict(cfg.train.early_stopping),
        "params": asdict(cfg.train.variant("warp")), "threads": 1,
        "stage_seconds": round(stage, 2), "raw_seconds": round(raw, 2),
        "ratio_stage_over_raw": round(stage / raw, 3), "stage": detail,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    label = (f"pairs={args.pairs},representation={cfg.train.representation},"
             f"history_cap={cap}") + "".join(
        f",{item}" for item in args.set)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**result, "runs": {**previous.get("runs", {}), label: result}},
                              indent=2) + "\n")
    for key in ("pairs", "stage_seconds", "raw_seconds", "ratio_stage_over_raw"):
        print(f"{key:<22} {result[key]:>10}")
    print(f"written to {out}")
    return result


if __name__ == "__main__":
    main()
