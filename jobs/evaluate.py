"""spark-submit entry point: Precision/recall on held-out plans for the model, popularity and the oracle; write `metrics`."""
import json

from telcorec import evaluation
from telcorec.cli import main

if __name__ == "__main__":
    main("evaluate", "Precision/recall on held-out plans for the model, popularity and the oracle; write `metrics`.",
         lambda spark, cfg, args: json.dumps(evaluation.run(spark, cfg, args.run_date), indent=2,
                                             default=str))
