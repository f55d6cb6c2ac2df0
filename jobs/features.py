"""spark-submit entry point: Subscriber usage/lifecycle features and offer features, from one pass over the CDR."""
import json

from telcorec import features
from telcorec.cli import main

if __name__ == "__main__":
    main("features", "Subscriber usage/lifecycle features and offer features, from one pass over the CDR.",
         lambda spark, cfg, args: json.dumps(features.run(spark, cfg, args.run_date), indent=2,
                                             default=str))
