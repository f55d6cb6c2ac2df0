"""Entry point of `./spark-submit.sh sql`: one read-only query over the warehouse's tables.

The default engine (DuckDB over delta-rs) runs as plain Python, without spark-submit or a JVM;
`--engine spark` is submitted with spark-submit like the other jobs (telcorec/launch/submit.py).
"""
import logging
import sys

from telcorec import sql

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "pyspark"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sys.exit(sql.main(sys.argv[1:]))
