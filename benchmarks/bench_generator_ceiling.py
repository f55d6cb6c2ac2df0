"""What the generated data lets any model reach, before training one: rankings by the generator's
own utilities on the evaluate stage's protocol (latest plan held out, the others excluded).

    .venv/bin/python benchmarks/bench_generator_ceiling.py [--subscribers 8000]

For every subscriber with a plan history, precision@k of ranking the offers they do not hold by
  oracle        the true utility (what the evaluate stage's oracle ranks by)
  needs_only    the true utility without the hidden taste: a model that knows every need exactly
                but not the taste (the ceiling of a features-only model)
  needs+history needs_only plus the taste read from the held plans: W_TASTE times the share of
                them in each hidden family (the ceiling of a features+history model, roughly)
and each one's ratio to the oracle. Pure numpy on the driver: no Spark, no model, seconds.
Prints and writes benchmarks/results/bench_generator_ceiling.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import numpy as np

from telcorec.core.columns import Col
from telcorec.synthetic import utility
from telcorec.synthetic.catalogue import build_catalogue
from telcorec.synthetic.population import GenCol, history, population

RESULTS = Path(__file__).resolve().parent / "results" / "bench_generator_ceiling.json"


def ceilings(subscribers: int, offers: int, seed: int, k: int) -> dict[str, float]:
    catalogue = build_catalogue(offers, seed)
    pop = population(np.arange(subscribers), seed, 0.0)
    plans = history(pop, catalogue, seed).sort_values([GenCol.NUMBER, GenCol.START_OFFSET])
    u = utility.true_utility(pop, catalogue)
    axes = utility.taste_axes(catalogue)  # families x offers
    persona = pop[Col.PERSONA].to_numpy()
    taste = utility.W_TASTE * np.where(persona[:, None] >= 0, axes[np.maximum(persona, 0)], 0.0)
    hits = {"oracle": [], "needs_only": [], "needs+history": []}
    for number, rows in plans.groupby(GenCol.NUMBER, sort=True):
        held = rows[GenCol.OFFER_POS].to_numpy()
        test, train = held[-1], held[:-1]
        read = (utility.W_TASTE * (axes[:, train].sum(axis=1) / len(train)) @ axes
                if len(train) else 0.0)
        needs = u[number] - taste[number]
        for name, score in (("oracle", u[number]), ("needs_only", needs),
                            ("needs+history", needs + read)):
            ranked = np.where(np.isin(np.arange(len(score)), train), -np.inf, score)
            hits[name].append(test in np.argsort(-ranked, kind="stable")[:k])
    out = {name: round(float(np.mean(h)) / k, 4) for name, h in hits.items()}
    out.update({f"{name}_x_oracle": round(out[name] / out["oracle"], 3)
                for name in ("needs_only", "needs+history")})
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=8000)
    parser.add_argument("--offers", type=int, default=60)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args(argv)
    result = ceilings(args.subscribers, args.offers, args.seed, args.k)
    result["measured_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    for key, value in result.items():
        print(f"{key:<24} {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    previous[f"subscribers={args.subscribers},offers={args.offers},k={args.k}"] = result
    RESULTS.write_text(json.dumps(previous, indent=2, sort_keys=True))
    return result


if __name__ == "__main__":
    main()
