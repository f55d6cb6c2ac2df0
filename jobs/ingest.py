"""spark-submit entry point: Validate the four input tables: accepted rows to the validated tables, the rest to `rejects` with a reason."""
from telcorec.cli import stage_main
from telcorec.sources.pseudonymise import resolve_secret
from telcorec.stages import ingest

if __name__ == "__main__":
    stage_main("ingest", "Validate the four input tables: accepted rows to the validated tables, "
               "the rest to `rejects` with a reason.",
               # the pseudonymisation key is resolved here, at the job's edge, and never logged
               lambda spark, cfg, run_date: ingest.run(spark, cfg, run_date,
                                                       secret=resolve_secret(cfg)))
