"""Churn risk: the classifier path (fit with pyspark.ml, applied as a Column expression)."""
import math

import numpy as np
import pytest

from telcorec.core.columns import Col
from telcorec.core.config import FeaturesConfig
from telcorec.features import churn

CFG = FeaturesConfig()
COLUMNS = [Col.SUBSCRIBER_ID, Col.TENURE_MONTHS, Col.DAYS_TO_CONTRACT_END, Col.AUTOPAY,
           Col.MONTHLY_CHARGE, Col.ACTIVE_OFFERS, Col.HOUSEHOLD_SIZE, Col.DATA_GB_MONTH,
           Col.VOICE_MIN_MONTH, Col.SMS_MONTH, Col.CHURNED]


def labelled(spark, n=300):
    """Short tenure, month-to-month and high charges churn; the rest mostly stay."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(n):
        tenure = int(rng.integers(0, 72))
        charge = float(rng.uniform(20, 110))
        days = int(rng.choice([20, 300, 700]))
        risk = -2.0 - 0.08 * tenure + 0.03 * charge + (1.5 if days == 20 else 0.0)
        churned = bool(rng.random() < 1 / (1 + math.exp(-risk)))
        rows.append((f"S{i}", tenure, days, "yes" if i % 3 else "no", charge, int(i % 4),
                     None if i % 5 == 0 else 1 + i % 3, None, None, None, churned))
    return spark.createDataFrame(rows, "subscriber_id string, tenure_months int, "
                                 "days_to_contract_end int, autopay string, monthly_charge double, "
                                 "active_offers int, household_size int, data_gb_month double, "
                                 "voice_min_month double, sms_month double, churned boolean"), rows


def test_classifier_coefficients_applied_as_expression_match_numpy(spark):
    df, rows = labelled(spark)
    assert churn.has_label(df)
    model = churn.fit_churn_model(df, CFG, seed=42)
    assert model.inputs == churn.CHURN_INPUT_NAMES
    assert model.holdout_auc > 0.7
    assert model.coefficients[0] < 0  # longer tenure, lower risk
    got = {r[Col.SUBSCRIBER_ID]: (r[Col.CHURN_PROBABILITY], r[Col.CHURN_BAND], r[Col.CHURN_SOURCE])
           for r in churn.with_churn(df, model, CFG).collect()}
    for row in rows:  # the slow, obvious definition
        sid, tenure, days, autopay, charge, offers, household = row[:7]
        x = [tenure, max(days, 0) / 30.0, 1.0 if autopay == "yes" else 0.0, charge, offers,
             household or 0, 0.0, 0.0, 0.0]
        p = 1 / (1 + math.exp(-(model.intercept + np.dot(model.coefficients, x))))
        band = "low" if p < 0.3 else "medium" if p < 0.6 else "high"
        assert got[sid][0] == pytest.approx(p, rel=1e-9)
        assert got[sid][1:] == (band, "classifier")


def test_no_label_or_one_class_means_rule(spark):
    df, _ = labelled(spark, n=40)
    assert not churn.has_label(df)  # fewer than 50 labelled
    df, _ = labelled(spark)
    assert not churn.has_label(df.filter(~df[Col.CHURNED]))


@pytest.mark.parametrize("p, band", [(None, "unknown"), (0.0, "low"), (0.2999, "low"),
                                     (0.3, "medium"), (0.5999, "medium"), (0.6, "high"),
                                     (1.0, "high")])
def test_churn_band(spark, p, band):
    from pyspark.sql import functions as F
    df = spark.createDataFrame([(p,)], "p double")
    assert df.select(churn.churn_band(F.col("p"), (0.3, 0.6))).first()[0] == band
