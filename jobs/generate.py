"""spark-submit entry point: Write the synthetic operator's input tables (subscribers, catalogue, subscriptions, CDR) under inputs.path."""
import json

from telcorec import generation
from telcorec.cli import main

if __name__ == "__main__":
    main("generate", "Write the synthetic operator's input tables (subscribers, catalogue, subscriptions, CDR) under inputs.path.",
         lambda spark, cfg, args: json.dumps(generation.run(spark, cfg, args.run_date), indent=2,
                                             default=str))
