"""spark-submit entry point: every stage in order, then a summary of what happened."""
from telcorec.cli import main
from telcorec.sources.pseudonymise import resolve_secret
from telcorec.stages import pipeline

if __name__ == "__main__":
    main("pipeline",
         "Run the whole pipeline for one run date: (generate) -> ingest -> features -> "
         "interactions -> train -> (ncf) -> evaluate -> score (quality gate, then offers), "
         "then print a summary.",
         lambda spark, cfg, args: pipeline.summary(
             cfg, args.run_date,
             pipeline.run(spark, cfg, args.run_date, secret=resolve_secret(cfg))))
