"""spark-submit entry point: score every subscriber against every offer, keep the top K and publish the `offers` Delta table (recorded in `runs` as its own attempt)."""
import json

from telcorec.cli import main
from telcorec.io import runs
from telcorec.io.warehouse import Warehouse
from telcorec.stages import score


def score_and_record(spark, cfg, args):
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    results = runs.recorded(
        wh.table("runs"), wh.table("metrics"), cfg, args.run_date,
        lambda done: done.__setitem__("score", score.run(spark, cfg, args.run_date)),
        job="score")
    return json.dumps(results["score"], indent=2, default=str)


if __name__ == "__main__":
    main("score", "Score every subscriber against every offer, apply the business rules, re-rank, "
         "keep the top K and publish the run date's partition of the `offers` Delta table. The "
         "attempt is recorded in `runs` (running, then succeeded / rejected by the quality gate / "
         "failed); a killed or failed attempt leaves `offers` at its previous version.", score_and_record)
