"""spark-submit entry point: subscriber usage/lifecycle features and offer features; the CDR
window moved by one day from the previous day's state, or recomputed (README "Daily runs")."""
import argparse
import json

from pyspark.sql import SparkSession

from telcorec.cli import main, recorded_stage, run_date_arg
from telcorec.core.config import Config
from telcorec.core.exceptions import ConfigError
from telcorec.stages import features

DESCRIPTION = ("Subscriber usage/lifecycle features and offer features; daily runs read only the "
               "new and late CDR days.")


def options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--full", action="store_true",
                   help="recompute the CDR window from the run date's whole CDR partition "
                        "(default: only when the previous day's window state is missing or "
                        "does not account for the CDR)")
    p.add_argument("--from", dest="first", type=run_date_arg, default=None,
                   help="backfill: run every date from this one to --to, in order "
                        "(replaces --run-date)")
    p.add_argument("--to", dest="last", type=run_date_arg, default=None,
                   help="the last date of a backfill (with --from)")


def body(spark: SparkSession, cfg: Config, args: argparse.Namespace) -> str:
    if (args.first is None) != (args.last is None):
        raise ConfigError("--from and --to go together (a backfill of that range): give both, "
                          "or neither and --run-date")
    if args.first is None:  # one attempt in `runs`; a backfill is one, under its first date
        result = recorded_stage(cfg, "features", args.run_date,
                                lambda: features.run(spark, cfg, args.run_date, full=args.full))
    else:
        result = recorded_stage(cfg, "features", args.first, lambda: features.run_range(
            spark, cfg, args.first, args.last, full=args.full))
    return json.dumps(result, indent=2, default=str)


if __name__ == "__main__":
    from telcorec.stages.pipeline import skip_reason  # imports every stage: only here

    main("features", DESCRIPTION, body, extra=options,
         refuse=lambda cfg: skip_reason(cfg, "features"))
