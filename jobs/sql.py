"""spark-submit entry point: run SQL over the warehouse's Delta tables (each one is a view)."""
from telcorec import sql
from telcorec.cli import main
from telcorec.io import storage
from telcorec.io.warehouse import Warehouse


def _body(spark, cfg, args):
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    result = sql.query(spark, wh, storage.choose_writer(spark, cfg.storage.writer), args.query)
    result.show(n=args.limit, truncate=False)


def _args(p):
    p.add_argument("query", help='SQL text, e.g. "SELECT run_date, count(*) FROM offers GROUP BY '
                                 'run_date"; views: offers, metrics, rejects, subscriber_features, ...')
    p.add_argument("--limit", type=int, default=50, help="rows to print (default 50)")


if __name__ == "__main__":
    main("sql", "Run a SQL query over the output tables and print the result.", _body, _args)
