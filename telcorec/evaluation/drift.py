"""Drift between a run and a reference run: population stability index (PSI) of features and
scores, the offer mix, and input volumes.

PSI = sum over bins of (a - e) * ln(a / e), with e and a the reference's and the current run's
shares of rows in the bin, each floored at 1e-4 so that an empty bin counts as rare, not as
infinitely surprising. Binning: a numeric column uses the reference's deciles (`drift.bins`
quantile edges, approximate to 0.1%, repeated edges merged) with open outer bins, plus one bin
for NULL; a categorical column one bin per value (NULL its own). The usual reading: < 0.1
stable, 0.1-0.2 moderate, > 0.2 a significant shift. Only bin counts reach the driver.
"""
from __future__ import annotations

import math

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core import schemas
from telcorec.core.columns import SUBSCRIBER_CATEGORICALS
from telcorec.features.stats import quantiles

SHARE_FLOOR = 1e-4
NULL_BIN = "null"
# every numeric subscriber feature beside the categoricals the model reads: they feed the rules,
# re-ranking and cold start, and any of them moving means the population moved
NUMERIC_FEATURES = [f.name for f in schemas.SUBSCRIBER_FEATURES.fields
                    if isinstance(f.dataType, (T.DoubleType, T.IntegerType))]


def psi(expected: dict[str, int], actual: dict[str, int]) -> float:
    """PSI of two histograms over the same bins (a bin missing from one side counts 0)."""
    e_total, a_total = sum(expected.values()), sum(actual.values())
    if not e_total or not a_total:
        return float("nan")
    total = 0.0
    for b in set(expected) | set(actual):
        e = max(expected.get(b, 0) / e_total, SHARE_FLOOR)
        a = max(actual.get(b, 0) / a_total, SHARE_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def relative_change(rows: int, reference_rows: int) -> float:
    """rows / reference_rows - 1 (NaN without reference rows)."""
    return rows / reference_rows - 1 if reference_rows else float("nan")


def quantile_edges(reference: DataFrame, numeric: list[str], bins: int) -> dict[str, list[float]]:
    """Each numeric column's inner bin edges: the reference's 1/bins .. (bins-1)/bins quantiles."""
    if not numeric:
        return {}
    probs = [i / bins for i in range(1, bins)]
    found = quantiles(reference, numeric, probs)
    return {c: sorted(set(edges.values())) for c, edges in found.items()}


def _bin(column: str, edges: list[float] | None) -> Column:
    value = F.col(column)
    if edges is None:  # categorical
        label = value.cast("string")
    else:
        index = sum((F.when(value > F.lit(e), 1).otherwise(0) for e in edges), F.lit(0))
        label = index.cast("string")
    return F.coalesce(label, F.lit(NULL_BIN))


def bin_counts(df: DataFrame, edges: dict[str, list[float]],
               categoricals: list[str]) -> dict[str, dict[str, int]]:
    """{column: {bin: rows}} for every numeric (by `edges`) and categorical column, in one
    aggregation (columns x bins rows come back)."""
    columns = {**edges, **{c: None for c in categoricals}}
    if not columns:
        return {}
    pairs = F.explode(F.array(*[F.struct(F.lit(c).alias("feature"), _bin(c, e).alias("bin"))
                                for c, e in columns.items()]))
    rows = df.select(pairs.alias("p")).groupBy("p.feature", "p.bin").count().collect()
    out: dict[str, dict[str, int]] = {c: {} for c in columns}
    for r in rows:
        out[r["feature"]][r["bin"]] = r["count"]
    return out


def column_psi(current: DataFrame, reference: DataFrame, numeric: list[str],
               categoricals: list[str], bins: int) -> dict[str, float]:
    """PSI of each column of `current` against `reference`, binned as the module says."""
    edges = quantile_edges(reference, numeric, bins)
    expected = bin_counts(reference, edges, categoricals)
    actual = bin_counts(current, edges, categoricals)
    return {c: psi(expected[c], actual[c]) for c in expected}


def feature_psi(current: DataFrame, reference: DataFrame, bins: int) -> dict[str, float]:
    """PSI of every subscriber feature (numeric and the model's categoricals)."""
    return column_psi(current, reference, NUMERIC_FEATURES, list(SUBSCRIBER_CATEGORICALS), bins)


def alerts(values: dict[str, float], threshold: float) -> list[str]:
    """The names whose value is above the threshold in size (a volume may fall), by name."""
    return sorted(n for n, v in values.items() if not math.isnan(v) and abs(v) > threshold)
