"""The long-form `metrics` table: one row per (run, model, protocol, metric, k, segment).

Every evaluation (LightFM, NCF, baselines; full ranking or sampled protocols) writes here, and
the quality gate reads this run's figures back from it.
"""
from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pyarrow as pa
from pyspark.sql.pandas.types import to_arrow_schema

from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.core.exceptions import DataError
from telcorec.io import delta_rs

ALL_SEGMENTS = "all"
_SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def metrics_table(rows: list[tuple], model: str, run_id: str, run_date: dt.date,
                  protocol: str) -> pa.Table:
    records = [{Col.RUN_DATE: run_date, Col.RUN_ID: run_id, Col.MODEL: model,
                Col.PROTOCOL: protocol, Col.METRIC: m, Col.K: k, Col.SEGMENT: seg, Col.VALUE: v}
               for m, k, seg, v in rows]
    return pa.Table.from_pylist(records, schema=to_arrow_schema(schemas.METRICS))


def write_metrics(path, tables: list[pa.Table], run_date: dt.date, protocol: str) -> None:
    """Replace this run date's rows of these models and protocol (a rerun does not duplicate)."""
    table = pa.concat_tables(tables)
    models = sorted(set(table.column(Col.MODEL).to_pylist()))
    if not all(_SAFE_NAME.match(m) for m in models + [protocol]):
        raise DataError(f"refusing unsafe model or protocol names in a predicate: {models}")
    names = ", ".join(f"'{m}'" for m in models)
    predicate = (f"{Col.RUN_DATE} = '{run_date.isoformat()}' AND {Col.PROTOCOL} = '{protocol}' "
                 f"AND {Col.MODEL} IN ({names})")
    delta_rs.write_small(table, path, predicate)


def run_metrics(path, run_date: dt.date) -> pd.DataFrame:
    """Every row of one run date (models x protocols x metrics x k x segments: a small read);
    an empty frame with the table's columns when nothing was written yet."""
    if not delta_rs.is_delta_table(path):
        return pd.DataFrame(columns=schemas.METRICS.fieldNames())
    return delta_rs.read_small(
        path, partitions=[(Col.RUN_DATE, "=", run_date.isoformat())]).to_pandas()


def overall_metrics(path, run_date: dt.date, protocol: str = "full") -> dict[str, float]:
    """{"model:metric@k": value} of one run date, all segments together (a small read)."""
    rows = run_metrics(path, run_date).to_dict("records")
    return {f"{r[Col.MODEL]}:{r[Col.METRIC]}@{r[Col.K]}": r[Col.VALUE] for r in rows
            if r[Col.SEGMENT] == ALL_SEGMENTS and r[Col.PROTOCOL] == protocol}
