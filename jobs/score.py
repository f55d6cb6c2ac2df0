"""spark-submit entry point: Score every subscriber against every offer, keep the top K, write the `offers` Delta table."""
import json

from telcorec import scoring
from telcorec.cli import main

if __name__ == "__main__":
    main("score", "Score every subscriber against every offer, keep the top K, write the `offers` Delta table.",
         lambda spark, cfg, args: json.dumps(scoring.run(spark, cfg, args.run_date), indent=2,
                                             default=str))
