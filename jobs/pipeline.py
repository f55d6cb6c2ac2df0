"""spark-submit entry point: every stage in order, then a summary of what happened."""
from telcorec.cli import emit, main
from telcorec.sources.pseudonymise import resolve_secret
from telcorec.stages import pipeline


def body(spark, cfg, args) -> str:
    """The summary; when the quality gate refused, it is printed and the refusal raised (exit 2)."""
    outcome = pipeline.attempt(spark, cfg, args.run_date, secret=resolve_secret(cfg))
    text = pipeline.summary(cfg, args.run_date, outcome.results, outcome.refusal)
    if outcome.refusal is None:
        return text
    emit(text)  # the summary is the result, refused or not: stdout, then exit 2
    raise outcome.refusal


if __name__ == "__main__":
    main("pipeline",
         "Run the whole pipeline for one run date: (generate) -> ingest -> features -> "
         "interactions -> train -> (ncf) -> evaluate -> score (quality gate, then offers), "
         "then print a summary (the gate's verdict first).",
         body)
