"""IBM Telco Customer Churn (one CSV row per customer) as the four input contract tables.

- subscribers: customerID; segment senior / adult (SeniorCitizen); household 1 + partner +
  dependents; signup = snapshot date minus `tenure` months; contract end = the next renewal of
  the Contract term (month-to-month renews monthly); autopay from PaymentMethod "(automatic)";
  monthly_charge; churned = Churn (the label the churn classifier learns). Every customer is
  postpaid (billed monthly); region and device tier are not in the data (NULL).
- catalogue: the services a customer can hold (phone, multiple lines, DSL, fiber, security,
  backup, device protection, tech support, streaming TV, streaming movies) and the three
  contract terms. Prices are not in the data: each service's monthly price is estimated by a
  least-squares fit (pyspark.ml LinearRegression, no intercept) of MonthlyCharges on the
  services held, clamped at 0.
- subscriptions: one row per service or contract a customer holds, starting at signup.
- cdr: none (the data has no usage records).
"""
from __future__ import annotations

import datetime as dt

from pyspark.ml.feature import VectorAssembler
from pyspark.ml.regression import LinearRegression
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.core.config import CsvConfig, IbmTelcoConfig
from telcorec.core.exceptions import DataError, SchemaError
from telcorec.sources.files import read_csv, require_path, resolve
from telcorec.sources.parse import parse_text, text, with_parse_columns
from telcorec.sources.preflight import CsvSource

# offer_id: (source column, value meaning "held", plan_type, network, contract months)
SERVICES = {
    "phone": ("PhoneService", "Yes", "phone", None, 0),
    "multiple_lines": ("MultipleLines", "Yes", "phone", None, 0),
    "internet_dsl": ("InternetService", "DSL", "internet", "DSL", 0),
    "internet_fiber": ("InternetService", "Fiber optic", "internet", "fiber", 0),
    "online_security": ("OnlineSecurity", "Yes", "addon", None, 0),
    "online_backup": ("OnlineBackup", "Yes", "addon", None, 0),
    "device_protection": ("DeviceProtection", "Yes", "addon", None, 0),
    "tech_support": ("TechSupport", "Yes", "addon", None, 0),
    "streaming_tv": ("StreamingTV", "Yes", "streaming", None, 0),
    "streaming_movies": ("StreamingMovies", "Yes", "streaming", None, 0),
    "contract_month_to_month": ("Contract", "Month-to-month", "contract", None, 1),
    "contract_one_year": ("Contract", "One year", "contract", None, 12),
    "contract_two_year": ("Contract", "Two year", "contract", None, 24),
}
PARSED = {"SeniorCitizen": T.IntegerType(), "Partner": T.BooleanType(),
          "Dependents": T.BooleanType(), "tenure": T.IntegerType(),
          "MonthlyCharges": T.DoubleType(), "Churn": T.BooleanType()}
NEEDED = ("customerID", "PaymentMethod", *PARSED, *{s[0] for s in SERVICES.values()})


def parse(raw: DataFrame) -> DataFrame:
    """Typed customer rows; unparsable values flagged (TotalCharges is not used)."""
    missing = [c for c in NEEDED if c not in raw.columns]
    if missing:
        raise SchemaError(f"the IBM Telco file lacks columns {missing}; is inputs.ibm_telco.path "
                          "the Telco-Customer-Churn.csv file?")
    values = [text(F.col("customerID")).alias("customerID"), F.col("PaymentMethod")]
    values += [text(F.col(c)).alias(c) for c in {s[0] for s in SERVICES.values()}]
    failures = []
    for column, dtype in PARSED.items():
        s = text(F.col(column))
        value = parse_text(s, dtype, CsvConfig())
        values.append(value.alias(column))
        failures.append(F.when(s.isNotNull() & value.isNull(), F.lit(column)))
    return with_parse_columns(raw, values, failures, list(NEEDED))


def _contract_end(signup: Column, tenure: Column) -> Column:
    term = (F.when(F.col("Contract") == "One year", 12).when(F.col("Contract") == "Two year", 24)
            .otherwise(1))
    return F.add_months(signup, ((F.floor(tenure / term) + 1) * term).cast("int"))


def subscribers(customers: DataFrame, snapshot: dt.date) -> DataFrame:
    signup = F.add_months(F.lit(snapshot), -F.col("tenure"))
    flag = lambda c: F.coalesce(F.col(c).cast("int"), F.lit(0))
    out = customers.select(
        F.col("customerID").alias(Col.SUBSCRIBER_ID),
        F.when(F.col("SeniorCitizen") == 1, "senior").when(F.col("SeniorCitizen") == 0, "adult")
        .alias(Col.SEGMENT),
        F.lit(None).cast("string").alias(Col.REGION), signup.alias(Col.SIGNUP_DATE),
        F.lit(None).cast("string").alias(Col.DEVICE_TIER), F.lit("postpaid").alias(Col.PAYMENT_TYPE),
        _contract_end(signup, F.col("tenure")).alias(Col.CONTRACT_END),
        (1 + flag("Partner") + flag("Dependents")).alias(Col.HOUSEHOLD_SIZE),
        F.col("PaymentMethod").contains("(automatic)").alias(Col.AUTOPAY),
        F.lit(None).cast("double").alias(Col.ON_TIME_PAYMENT_SHARE),
        F.col("MonthlyCharges").alias(Col.MONTHLY_CHARGE), F.col("Churn").alias(Col.CHURNED),
        F.lit(None).cast("boolean").alias(Col.MARKETING_OPT_OUT),  # the dataset has no consent
        Col.PARSE_ERROR, Col.RAW_RECORD)
    return schemas.conform(out, _with_parse(schemas.full("subscribers")))


def _held(offer_id: str) -> Column:
    column, value, *_ = SERVICES[offer_id]
    return F.col(column) == value


def subscriptions(customers: DataFrame, snapshot: dt.date) -> DataFrame:
    held = F.array(*[F.when(_held(o), F.lit(o)) for o in SERVICES])
    out = (customers.withColumn(Col.OFFER_ID, F.explode(F.array_compact(held)))
           .select(F.col("customerID").alias(Col.SUBSCRIBER_ID), Col.OFFER_ID,
                   F.add_months(F.lit(snapshot), -F.col("tenure")).alias(Col.START_DATE),
                   F.lit(None).cast("date").alias(Col.END_DATE),
                   F.lit(None).cast("double").alias(Col.USAGE),
                   F.lit(None).cast("timestamp").alias(Col.START_TS), Col.PARSE_ERROR,
                   Col.RAW_RECORD))
    return schemas.conform(out, _with_parse(schemas.full("subscriptions")))


def service_prices(customers: DataFrame, path: str) -> dict[str, float]:
    """Monthly price per offer: least squares of MonthlyCharges on the offers held."""
    rows = customers.filter(F.col(Col.PARSE_ERROR).isNull() & F.col("MonthlyCharges").isNotNull())
    if rows.limit(1).count() == 0:  # the fit would fail with "Training dataset is empty"
        raise DataError(f"inputs.ibm_telco.path: no row of {path} has a readable "
                        "MonthlyCharges, so no offer price can be estimated. Is it the "
                        "Telco-Customer-Churn.csv file, in inputs.ibm_telco.encoding?")
    rows = rows.select(F.col("MonthlyCharges").alias("label"),
                       *[_held(o).cast("double").alias(o) for o in SERVICES])
    features = VectorAssembler(inputCols=list(SERVICES), outputCol="features").transform(rows)
    model = LinearRegression(fitIntercept=False, regParam=0.0, solver="normal").fit(features)
    return {o: round(max(float(c), 0.0), 2) for o, c in zip(SERVICES, model.coefficients)}


def catalogue(spark: SparkSession, prices: dict[str, float]) -> DataFrame:
    rows = [(o, o.replace("_", " "), prices[o], 0.0, 0.0, 0, months, plan_type, "postpaid",
             network, False, None, None)
            for o, (_, _, plan_type, network, months) in SERVICES.items()]
    return spark.createDataFrame(rows, _with_parse(schemas.full("catalogue")))


def _with_parse(schema: T.StructType) -> T.StructType:
    return T.StructType([*schema.fields, T.StructField(Col.PARSE_ERROR, T.StringType()),
                         T.StructField(Col.RAW_RECORD, T.StringType())])


def tables(spark: SparkSession, cfg: IbmTelcoConfig, run_date: dt.date) -> dict[str, DataFrame]:
    path = require_path(resolve("", cfg.path), "inputs.ibm_telco.path")
    snapshot = dt.date.fromisoformat(cfg.snapshot_date) if cfg.snapshot_date else run_date
    src = CsvSource(path, "inputs.ibm_telco", CsvConfig(encoding=cfg.encoding),
                    "inputs.ibm_telco", tuple(NEEDED), fixed_delimiter=True)
    customers = parse(read_csv(spark, src)).cache()
    cdr = spark.createDataFrame([], _with_parse(schemas.full("cdr")))
    return {"subscribers": subscribers(customers, snapshot),
            "catalogue": catalogue(spark, service_prices(customers, path)),
            "subscriptions": subscriptions(customers, snapshot), "cdr": cdr}
