"""spark-submit entry point: remove the Parquet files no Delta commit references (after a crash)."""
import argparse
import math

from telcorec.cli import main
from telcorec.io import maintenance
from telcorec.io.warehouse import Warehouse

DESCRIPTION = (
    "Remove orphan data files from every Delta table under the warehouse: Parquet files that no "
    "version of the table references, as a killed or failed run leaves them (the tables "
    "themselves stay at their last committed version; deltalake 0.18's vacuum() does not remove "
    "such files). Files of earlier versions are kept (time travel keeps working). Files younger "
    "than --min-age-minutes are kept too, since they may belong to a run still writing; after a "
    "crash, with no job running, pass --min-age-minutes 0. --run-date is ignored: every date is "
    "cleaned. Prints per table the files and bytes removed.")


def _body(spark, cfg, args):
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    min_age = args.min_age_minutes * 60
    results = maintenance.clean_warehouse(wh.root, min_age, args.dry_run)
    return maintenance.report(results, wh.root, args.dry_run, min_age)


def _minutes(text):
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"minutes must be a number >= 0, got {text!r}")
    return value


def _args(p):
    p.add_argument("--dry-run", action="store_true",
                   help="list the orphan files per table without deleting anything")
    p.add_argument("--min-age-minutes", type=_minutes, default=60.0,
                   help="keep unreferenced files younger than this (default 60): they may belong "
                        "to a run still writing; 0 removes them all (only when no job runs)")


if __name__ == "__main__":
    main("vacuum", DESCRIPTION, _body, _args)
