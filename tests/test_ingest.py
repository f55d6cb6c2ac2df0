import datetime as dt

from pyspark.sql import functions as F

from telcorec import ingest, schemas
from telcorec.columns import Col

RUN = dt.date(2026, 11, 1)
TS = dt.datetime(2026, 10, 20, 12, 0)


def reasons(tagged, key):
    return {r[key]: r[Col.REASON] for r in tagged.collect()}


def subscriber(sid, segment="youth", signup=dt.date(2024, 1, 1)):
    return (sid, segment, "north", signup, "mid", "postpaid", None, 1)


def test_subscriber_rules(spark):
    rows = [subscriber("S1"), subscriber("S2", segment=None), subscriber("S3"),
            subscriber("S3", signup=dt.date(2025, 1, 1)), subscriber(None)]
    tagged = ingest.tag_subscribers(spark.createDataFrame(rows, schemas.SUBSCRIBERS))
    got = sorted((r[Col.SUBSCRIBER_ID] or "", str(r[Col.SIGNUP_DATE]), r[Col.REASON])
                 for r in tagged.collect())
    assert got == [("", "2024-01-01", "null_key"), ("S1", "2024-01-01", None),
                   ("S2", "2024-01-01", "missing_attribute"), ("S3", "2024-01-01", None),
                   ("S3", "2025-01-01", "duplicate_id")]


def test_catalogue_rules(spark):
    def offer(oid, price=10.0):
        return (oid, "n", price, 5.0, 100.0, 50, 0, "residential", "prepaid", "4G", False)
    rows = [offer("O1"), offer("O2", price=-1.0), offer("O3"), offer("O3", price=20.0)]
    tagged = ingest.tag_catalogue(spark.createDataFrame(rows, schemas.CATALOGUE))
    got = sorted((r[Col.OFFER_ID], r[Col.PRICE], r[Col.REASON]) for r in tagged.collect())
    assert got == [("O1", 10.0, None), ("O2", -1.0, "negative_price"), ("O3", 10.0, None),
                   ("O3", 20.0, "duplicate_id")]


def test_subscription_rules(spark):
    subs = spark.createDataFrame([("S1",)], [Col.SUBSCRIBER_ID])
    offers = spark.createDataFrame([("O1",)], [Col.OFFER_ID])
    d = dt.date
    rows = [("S1", "O1", d(2025, 1, 1), None), ("S9", "O1", d(2025, 1, 1), None),
            ("S1", "O9", d(2025, 1, 1), None), ("S1", "O1", d(2025, 5, 1), d(2025, 4, 1)),
            ("S1", "O1", d(2027, 1, 1), None), (None, "O1", d(2025, 1, 1), None)]
    tagged = ingest.tag_subscriptions(spark.createDataFrame(rows, schemas.SUBSCRIPTIONS),
                                      subs, offers, RUN)
    got = sorted(((r[Col.SUBSCRIBER_ID] or "", r[Col.OFFER_ID], str(r[Col.START_DATE])),
                  r[Col.REASON]) for r in tagged.collect())
    assert [reason for _, reason in got] == [
        "null_key", None, "invalid_dates", "invalid_dates", "unknown_offer", "unknown_subscriber"]


def test_cdr_rules_each_reason_and_first_copy_kept(spark):
    subs = spark.createDataFrame([("S1",)], [Col.SUBSCRIBER_ID])
    rows = [
        ("E1", "S1", "voice", TS, 60.0, None),                          # ok
        ("E2", "S1", "voice", TS, -5.0, None),                          # negative_duration
        ("E3", "S1", "voice", TS, 90000.0, None),                       # absurd_duration
        ("E4", "S1", "fax", TS, None, None),                            # unknown_event_type
        ("E5", "S1", "sms", dt.datetime(2026, 11, 2), None, None),      # future_timestamp
        ("E6", "S1", "sms", dt.datetime(2026, 1, 1), None, None),       # outside_window
        ("E7", "S9", "sms", TS, None, None),                            # unknown_subscriber
        ("E8", "S1", "data", TS, None, 12.5),                           # ok
        ("E8", "S1", "data", TS + dt.timedelta(seconds=1), None, 12.5),  # duplicate_event
        (None, "S1", "sms", TS, None, None),                            # null_key
        ("E9", "S1", "data", TS, None, -3.0),                           # negative_volume
    ]
    tagged = ingest.tag_cdr(spark.createDataFrame(rows, schemas.CDR), subs, RUN, 120)
    got = sorted(((r[Col.EVENT_ID] or "", str(r[Col.EVENT_TS])), r[Col.REASON])
                 for r in tagged.collect())
    assert [reason for _, reason in got] == [
        "null_key", None, "negative_duration", "absurd_duration", "unknown_event_type",
        "future_timestamp", "outside_window", "unknown_subscriber", None, "duplicate_event",
        "negative_volume"]


def test_counts_add_up_and_rejects_carry_the_record(spark):
    subs = spark.createDataFrame([("S1",)], [Col.SUBSCRIBER_ID])
    rows = [("E1", "S1", "voice", TS, 60.0, None), ("E2", "S1", "voice", TS, -1.0, None),
            ("E3", "S2", "sms", TS, None, None)]
    tagged = ingest.tag_cdr(spark.createDataFrame(rows, schemas.CDR), subs, RUN, 120)
    counts = ingest.count_tagged(tagged, "cdr")
    assert (counts.read, counts.accepted, counts.rejected_by_reason) == (
        3, 1, {"negative_duration": 1, "unknown_subscriber": 1})
    accepted = ingest.accepted_rows(tagged, schemas.CDR, RUN)
    assert accepted.columns == schemas.validated(schemas.CDR).fieldNames()
    rejected = ingest.rejected_rows(tagged, "cdr", schemas.CDR, RUN)
    assert rejected.columns == schemas.REJECTS.fieldNames()
    record = rejected.filter(F.col(Col.REASON) == "negative_duration").first()[Col.RECORD]
    assert '"event_id":"E2"' in record and '"duration_s":-1.0' in record
