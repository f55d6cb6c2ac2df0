"""Fitted statistics of a feature set: computed once per run, saved as JSON, reused unchanged.

Quantile edges (intensity bins, value tiers, price tiers, offer value categories), the scales
that normalise usage, the offer medians that define bundle richness and the churn classifier's
coefficients all live in one `FeatureStats`. Whatever computes a feature again (scoring, a later
run with `features.fit_stats: false`, a cold-start subscriber) applies these numbers instead of
refitting, so a bin edge never differs between training and serving.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from telcorec.core.columns import Col
from telcorec.core.exceptions import DataError

UNKNOWN = "unknown"
INTENSITY_LABELS = ("very_low", "low", "medium", "high", "very_high")
VALUE_TIERS = ("bronze", "silver", "gold", "platinum")
PRICE_TIERS = ("budget", "standard", "premium", "luxury")
VALUE_CATEGORIES = ("low", "medium", "high")
USAGE_SCALE_QUANTILE = 0.95  # usage is normalised by its 95th percentile (capped at 1)
QUANTILE_ERROR = 0.001
_ACCURACY = round(1 / QUANTILE_ERROR)  # approxQuantile's relative error as the sketch's accuracy


@dataclass(frozen=True)
class ChurnModel:
    """A logistic regression fitted with pyspark.ml, kept as plain numbers and applied as a
    Column expression: p = 1 / (1 + exp(-(intercept + sum(coefficient_i * input_i))))."""
    inputs: tuple[str, ...]
    coefficients: tuple[float, ...]
    intercept: float
    rows: int
    holdout_auc: float | None


@dataclass(frozen=True)
class FeatureStats:
    """Fitted statistics of one feature set; `version` names them in model metadata."""
    data_edges: tuple[float, ...]
    voice_edges: tuple[float, ...]
    sms_edges: tuple[float, ...]
    price_edges: tuple[float, ...]
    usage_scales: tuple[float, ...] = ()      # data GB, voice min, SMS per month at the p95
    value_edges: tuple[float, ...] = ()       # quartiles of the value score
    offer_value_edges: tuple[float, ...] = ()  # tertiles of data_gb / (price + 1)
    offer_medians: tuple[float, ...] = ()     # median data_gb, voice_min, sms of the catalogue
    churn: ChurnModel | None = field(default=None)

    @property
    def version(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**asdict(self), "version": self.version}, indent=2))

    @classmethod
    def load(cls, path: Path) -> FeatureStats:
        data = json.loads(path.read_text())
        data.pop("version", None)
        churn = data.pop("churn", None)
        known = {f.name for f in fields(cls)}
        values = {k: tuple(v) for k, v in data.items() if k in known}
        if churn is not None:
            churn = ChurnModel(tuple(churn["inputs"]), tuple(churn["coefficients"]),
                               churn["intercept"], churn["rows"], churn["holdout_auc"])
        return cls(**values, churn=churn)


def newest_saved(stats_dir: Path, run_date_iso: str) -> Path:
    """The newest saved stats at or before a run date (for `features.fit_stats: false`)."""
    candidates = sorted(p for p in stats_dir.glob("run_date=*.json")
                        if p.stem.split("=", 1)[1] <= run_date_iso)
    if not candidates:
        raise DataError(f"features.fit_stats is false but no saved feature stats at or before "
                        f"{run_date_iso} exist under {stats_dir}; run once with fit_stats: true")
    return candidates[-1]


def bin_label(value: Column, edges: tuple[float, ...], labels: tuple[str, ...]) -> Column:
    """Label of the bin holding `value`: bin i holds edges[i-1] < value <= edges[i]."""
    index = sum((value > F.lit(edge)).cast("int") for edge in edges)
    label = F.element_at(F.array(*[F.lit(x) for x in labels]), index + 1)
    return F.when(value.isNull(), F.lit(UNKNOWN)).otherwise(label)


def normalised(value: Column, scale: float) -> Column:
    """value / scale capped at 1 (NULL stays NULL; a zero scale maps everything to 0)."""
    if scale <= 0:
        return F.when(value.isNotNull(), F.lit(0.0))
    return F.least(value / F.lit(scale), F.lit(1.0))


def _probabilities(bins: int) -> list[float]:
    return [i / bins for i in range(1, bins)]


def quantiles(df: DataFrame, columns: list[str],
              probabilities: list[float]) -> dict[str, dict[float, float]]:
    """approxQuantile of each column, a function of the values alone: {column: {p: value}}."""
    return fitted_quantiles([(df, columns, probabilities)])[0]


def fitted_quantiles(requests: list[tuple[DataFrame, list[str], list[float]]]
                     ) -> list[dict[str, dict[float, float]]]:
    """approxQuantile of the columns of each (DataFrame, columns, probabilities) request, a
    function of the values alone, all in one Spark job: per request {column: {p: value}}.

    approxQuantile's sketch answers differently for the same values seen in another order or
    split into other partitions, so a rerun with other shuffle partitions or cores would move a
    bin edge (and with it features, stats version and model version). Every column's non-NULL
    values are tagged with the column's position and shuffled into one partition, sorted there
    by (position, value), and each column's sketch (the aggregate approxQuantile runs, at its
    accuracy) reads only its own rows: it sees its values in ascending order as if sorted
    alone, so the same values give the same edges wherever they ran, and memory stays bounded
    (no collect; the task's sort spills to disk like any Spark sort). One job for every column
    instead of one each; each column holds one value per subscriber at most. NULLs and NaNs are
    left out, as approxQuantile does.
    """
    tagged, sketches, names = [], [], []
    for df, columns, probabilities in requests:
        pairs = []
        for column in columns:
            position = len(names)
            value = F.nanvl(F.col(column).cast("double"), F.lit(None).cast("double"))
            pairs.append(F.struct(F.lit(position).alias("_column"), value.alias("_value")))
            mine = F.when(F.col("_column") == position, F.col("_value"))
            sketch = F.percentile_approx(mine, probabilities, _ACCURACY)
            none = F.array().cast("array<double>")  # a column without values: no quantiles
            sketches.append(F.coalesce(sketch, none).alias(f"q{position}"))
            names.append((column, probabilities))
        # one pass over `df` for all its columns (a select per column would compute it again
        # for each, cached or not, when they run in one job)
        tagged.append(df.select(F.inline(F.array(*pairs))).where(F.col("_value").isNotNull()))
    ordered = (functools.reduce(DataFrame.unionByName, tagged)
               .repartition(1).sortWithinPartitions("_column", "_value"))
    row = ordered.agg(*sketches).first()
    found: list[dict[str, dict[float, float]]] = []
    position = 0
    for _, columns, _ in requests:
        found.append({})
        for column in columns:
            probabilities = names[position][1]
            found[-1][column] = dict(zip(probabilities, row[f"q{position}"]))
            position += 1
    return found


def pick(q: dict[float, float], probabilities: list[float]) -> tuple[float, ...]:
    return tuple(float(q[p]) for p in probabilities if p in q)


USAGE_COLUMNS = (Col.DATA_GB_MONTH, Col.VOICE_MIN_MONTH, Col.SMS_MONTH)
OFFER_COLUMNS = (Col.PRICE, Col.OFFER_VALUE, Col.DATA_GB, Col.VOICE_MIN, Col.SMS)
PRICE_P, OFFER_VALUE_P, MEDIAN_P = _probabilities(4), _probabilities(3), [0.5]


def fit_usage_and_offer_stats(profile: DataFrame, catalogue: DataFrame,
                              bins: int) -> dict[str, tuple[float, ...]]:
    """One job: intensity edges (quintiles) and p95 scales of monthly data, voice and SMS; price
    quartiles, offer-value tertiles and allowance medians of the catalogue."""
    usage_p = sorted(set(_probabilities(bins)) | {USAGE_SCALE_QUANTILE})
    offers = catalogue.withColumn(Col.OFFER_VALUE, offer_value(F.col(Col.DATA_GB),
                                                                F.col(Col.PRICE)))
    offer_p = sorted(set(PRICE_P) | set(OFFER_VALUE_P) | set(MEDIAN_P))
    q, o = fitted_quantiles([(profile, list(USAGE_COLUMNS), usage_p),
                             (offers, list(OFFER_COLUMNS), offer_p)])
    cols = USAGE_COLUMNS
    edges = {c: pick(q[c], _probabilities(bins)) for c in cols}
    scales = tuple(q[c].get(USAGE_SCALE_QUANTILE, 0.0) for c in cols) if q[cols[0]] else ()
    allowances = (Col.DATA_GB, Col.VOICE_MIN, Col.SMS)
    medians = tuple(o[c][0.5] for c in allowances) if o[Col.PRICE] else ()
    return {"data_edges": edges[cols[0]], "voice_edges": edges[cols[1]],
            "sms_edges": edges[cols[2]], "usage_scales": scales,
            "price_edges": pick(o[Col.PRICE], PRICE_P),
            "offer_value_edges": pick(o[Col.OFFER_VALUE], OFFER_VALUE_P),
            "offer_medians": medians}


def fit_value_edges(scored: DataFrame) -> tuple[float, ...]:
    """Quartile edges of the value score (bronze .. platinum)."""
    probs = _probabilities(len(VALUE_TIERS))
    return pick(quantiles(scored, [Col.VALUE_SCORE], probs)[Col.VALUE_SCORE], probs)


def offer_value(data_gb: Column, price: Column) -> Column:
    """Data per unit of money: data_gb / (price + 1)."""
    return data_gb / (price + F.lit(1.0))
