"""spark-submit entry point: Subscriber x offer interactions with contiguous indices and a train/test split."""
import json

from telcorec import interactions
from telcorec.cli import main

if __name__ == "__main__":
    main("interactions", "Subscriber x offer interactions with contiguous indices and a train/test split.",
         lambda spark, cfg, args: json.dumps(interactions.run(spark, cfg, args.run_date), indent=2,
                                             default=str))
