"""Python-only entry point (no Spark session, no JVM): list the attempts recorded in `runs`."""
import argparse
import datetime as dt
import sys

from telcorec.cli import DEFAULT_CONF, configure_logging
from telcorec.core import config as config_module
from telcorec.core.exceptions import TelcorecError
from telcorec.io import runs
from telcorec.io.warehouse import Warehouse

DESCRIPTION = (
    "List the attempts recorded in the warehouse's `runs` table, newest first: run date, run id, "
    "attempt id, job, status, start (UTC), duration and a summary of the counts. Statuses: "
    "running (its heartbeat is fresh), succeeded, failed, rejected (the quality gate refused to "
    "publish), abandoned (it recorded no end and its heartbeat stopped: older than "
    "runs.heartbeat_timeout_seconds, or its process is gone from this host; the next job that "
    "starts records it so in `runs`). Reads the Delta table with delta-rs: no Spark.")


def _count(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"--last needs a number >= 0, got {text!r}")
    return value


def main() -> None:
    p = argparse.ArgumentParser(prog="./spark-submit.sh runs", description=DESCRIPTION)
    p.add_argument("--conf", default=DEFAULT_CONF,
                   help=f"YAML config naming the warehouse (default {DEFAULT_CONF})")
    p.add_argument("--last", type=_count, default=20,
                   help="show the N newest attempts (default 20; 0: all of them)")
    args = p.parse_args()
    configure_logging()
    try:
        cfg = config_module.load(args.conf)
        wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    except TelcorecError as exc:
        p.exit(2, f"error: {exc}\n")
    now = dt.datetime.now(dt.timezone.utc)
    found = runs.current_attempts(wh.table("runs"), cfg.runs.heartbeat_timeout_seconds, now)
    if not found:
        print(f"no attempts recorded under {wh.root} yet (./spark-submit.sh pipeline runs one)",
              file=sys.stderr)
        return
    print(runs.listing(found[:args.last] if args.last else found, now))


if __name__ == "__main__":
    main()
