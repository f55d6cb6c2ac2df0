"""spark-submit entry point: Validate the four input tables: accepted rows to the validated tables, the rest to `rejects` with a reason."""
import json

from telcorec import ingest
from telcorec.adapters.pseudonymise import resolve_secret
from telcorec.cli import main

if __name__ == "__main__":
    main("ingest", "Validate the four input tables: accepted rows to the validated tables, the rest to `rejects` with a reason.",
         lambda spark, cfg, args: json.dumps(ingest.run(spark, cfg, args.run_date,
                                                        secret=resolve_secret(cfg)), indent=2,
                                             default=str))
