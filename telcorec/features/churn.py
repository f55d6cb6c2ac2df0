"""Churn risk: a Spark ML logistic regression when the data has a churn label, else a rule score.

With a label (`subscribers.churned`, e.g. IBM Telco's Churn column) `fit_churn_model` trains
pyspark.ml's LogisticRegression on numeric subscriber features, reports its AUC on a seeded
holdout, and keeps the fitted model as plain coefficients in `FeatureStats`; `churn_columns`
applies them as a Column expression, so the same numbers score every later run. Without a label
the score is a transparent rule: the sum of the points in RULE_POINTS that apply (0 .. 1). Either
way the probability is banded low / medium / high at `features.churn_bands`.
"""
from __future__ import annotations

import logging

from pyspark.ml.classification import LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from telcorec.core.columns import Col
from telcorec.core.config import FeaturesConfig
from telcorec.features.stats import UNKNOWN, ChurnModel

log = logging.getLogger(__name__)
MIN_LABELLED = 50  # below this many labelled subscribers (or one class only) the rule is used
CLASSIFIER, RULE = "classifier", "rule"

CHURN_INPUT_NAMES = (Col.TENURE_MONTHS, "contract_months_left", "autopay_flag", Col.MONTHLY_CHARGE,
                     Col.ACTIVE_OFFERS, Col.HOUSEHOLD_SIZE, Col.DATA_GB_MONTH,
                     Col.VOICE_MIN_MONTH, Col.SMS_MONTH)


def churn_inputs() -> dict[str, Column]:
    """Numeric inputs of the classifier; NULL counts as 0 (each is 0 when the data lacks it)."""
    return {
        Col.TENURE_MONTHS: F.col(Col.TENURE_MONTHS),
        "contract_months_left": F.greatest(F.col(Col.DAYS_TO_CONTRACT_END), F.lit(0)) / 30.0,
        "autopay_flag": (F.col(Col.AUTOPAY) == "yes").cast("double"),
        Col.MONTHLY_CHARGE: F.col(Col.MONTHLY_CHARGE),
        Col.ACTIVE_OFFERS: F.col(Col.ACTIVE_OFFERS),
        Col.HOUSEHOLD_SIZE: F.col(Col.HOUSEHOLD_SIZE),
        Col.DATA_GB_MONTH: F.col(Col.DATA_GB_MONTH),
        Col.VOICE_MIN_MONTH: F.col(Col.VOICE_MIN_MONTH),
        Col.SMS_MONTH: F.col(Col.SMS_MONTH),
    }


def rule_points() -> tuple[tuple[str, float, Column], ...]:
    """The rule score: points that add up to a risk in [0, 1]."""
    return (
        ("tenure of 12 months or less", 0.25, F.col(Col.TENURE_MONTHS) <= 12),
        ("in the renewal window", 0.25, F.col(Col.RENEWAL_WINDOW) == "yes"),
        ("data use declining", 0.20, F.col(Col.DATA_TREND) == "declining"),
        ("bronze value tier", 0.15, F.col(Col.VALUE_TIER) == "bronze"),
        ("over 20% of calls missed", 0.15, F.col(Col.MISSED_CALL_SHARE) > 0.2),
    )


def _inputs(df: DataFrame) -> DataFrame:
    return df.withColumns({f"_x_{name}": F.coalesce(expr.cast("double"), F.lit(0.0))
                           for name, expr in churn_inputs().items()})


def has_label(subscribers: DataFrame) -> bool:
    """True when enough subscribers carry a churn label of both classes (one tiny aggregation)."""
    row = subscribers.agg(F.count(Col.CHURNED).alias("n"),
                          F.sum(F.col(Col.CHURNED).cast("int")).alias("churned")).first()
    n, churned = row["n"], row["churned"] or 0
    return n >= MIN_LABELLED and 0 < churned < n


def fit_churn_model(base: DataFrame, cfg: FeaturesConfig, seed: int) -> ChurnModel:
    """Logistic regression on the labelled subscribers; AUC on a seeded hash holdout."""
    names = list(CHURN_INPUT_NAMES)
    labelled = (_inputs(base.filter(F.col(Col.CHURNED).isNotNull()))
                .withColumn("label", F.col(Col.CHURNED).cast("double"))
                .withColumn("_holdout", F.pmod(F.xxhash64(F.lit(seed), Col.SUBSCRIBER_ID),
                                               F.lit(10_000)) < int(cfg.churn_holdout * 10_000)))
    assembled = VectorAssembler(inputCols=[f"_x_{n}" for n in names],
                                outputCol="features").transform(labelled).cache()
    train = assembled.filter(~F.col("_holdout"))
    model = LogisticRegression(maxIter=100, regParam=0.01, elasticNetParam=0.0).fit(train)
    holdout = assembled.filter(F.col("_holdout"))
    auc = BinaryClassificationEvaluator(metricName="areaUnderROC").evaluate(
        model.transform(holdout)) if holdout.limit(1).count() else None
    rows = train.count()
    assembled.unpersist()
    log.info("churn classifier: %d training rows, holdout AUC %s", rows, auc)
    return ChurnModel(tuple(names), tuple(_settled(c) for c in model.coefficients),
                      _settled(model.intercept), rows, None if auc is None else _settled(auc))


def _settled(value: float) -> float:
    """The fitted number to 6 significant digits. Spark sums the gradients of its partitions in
    the order their tasks finish, so the last bits of a fit differ from run to run and with the
    partitioning; the solver's own tolerance is 1e-6, and the digits below it are noise that
    would change the feature stats' version (and the model version) on a rerun."""
    return float(f"{float(value):.6g}")


def churn_probability(model: ChurnModel | None) -> Column:
    """The classifier's probability when there is a model, else the rule score."""
    if model is None:
        return sum(F.when(condition, F.lit(points)).otherwise(F.lit(0.0))
                   for _, points, condition in rule_points())
    inputs = churn_inputs()
    margin = F.lit(model.intercept)
    for name, weight in zip(model.inputs, model.coefficients):
        margin = margin + F.lit(weight) * F.coalesce(inputs[name].cast("double"),
                                                     F.lit(0.0))
    return F.lit(1.0) / (F.lit(1.0) + F.exp(-margin))


def churn_band(probability: Column, bands: tuple[float, ...]) -> Column:
    low, high = bands
    return (F.when(probability.isNull(), F.lit(UNKNOWN)).when(probability < low, F.lit("low"))
            .when(probability < high, F.lit("medium")).otherwise(F.lit("high")))


def with_churn(base: DataFrame, model: ChurnModel | None, cfg: FeaturesConfig) -> DataFrame:
        probability = churn_probability(model)
        return base.withColumns({
        Col.CHURN_PROBABILITY: probability,
        Col.CHURN_BAND: churn_band(probability, cfg.churn_bands),
        Col.CHURN_SOURCE: F.lit(RULE if model is None else CLASSIFIER),
        })
