"""spark-submit entry point: a simulated campaign over days on generated data, one line per day."""
import logging
import time

from telcorec.cli import main, run_date_arg
from telcorec.sources.pseudonymise import resolve_secret
from telcorec.stages import simulate


def options(p):
    p.add_argument("--days", type=int, default=7, help="days to simulate (default 7)")
    p.add_argument("--start", type=run_date_arg, default=None,
                   help="the first day, YYYY-MM-DD (default: --run-date)")


def campaign(spark, cfg, args):
    """Each day's line as it ends (stderr, with the logs: minutes apart), then all of them as
    the result (stdout)."""
    started, lines = time.monotonic(), []
    for day in simulate.run(spark, cfg, args.start or args.run_date, args.days,
                            secret=resolve_secret(cfg)):
        lines.append(simulate.day_line(day, cfg))
        logging.getLogger("simulate").info("%s", lines[-1])
    lines.append(f"simulated {args.days} days in {time.monotonic() - started:.0f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    main("simulate", "Simulate a campaign over --days days from --start on generated data: the "
         "inputs of each day, the answers to yesterday's offers, features, retraining every "
         "train.every_days, scoring, drift and experiment results; one line per day.",
         campaign, extra=options, default_conf="conf/simulate.yaml")
