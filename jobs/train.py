"""spark-submit entry point: Train one LightFM hybrid model per shard of subscribers, inside Spark tasks."""
import json

from telcorec import training
from telcorec.cli import main

if __name__ == "__main__":
    main("train", "Train one LightFM hybrid model per shard of subscribers, inside Spark tasks.",
         lambda spark, cfg, args: json.dumps(training.run(spark, cfg, args.run_date), indent=2,
                                             default=str))
