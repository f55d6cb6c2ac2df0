import datetime as dt

import pytest
from pyspark.sql import functions as F

from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.core.exceptions import SchemaError
from telcorec.sources import validate
from telcorec.stages import ingest as ingest_stage

RUN = dt.date(2026, 11, 1)
TS = dt.datetime(2026, 10, 20, 12, 0)


def reasons(tagged, key):
    return {r[key]: r[Col.REASON] for r in tagged.collect()}


def subscriber(sid, segment="youth", signup=dt.date(2024, 1, 1)):
    return (sid, segment, "north", signup, "mid", "postpaid", None, 1)


def test_subscriber_rules(spark):
    rows = [subscriber("S1"), subscriber("S2", segment=None), subscriber("S3"),
            subscriber("S3", signup=dt.date(2025, 1, 1)), subscriber(None)]
    tagged = validate.tag_subscribers(spark.createDataFrame(rows, schemas.SUBSCRIBERS))
    got = sorted((r[Col.SUBSCRIBER_ID] or "", str(r[Col.SIGNUP_DATE]), r[Col.REASON])
                 for r in tagged.collect())
    assert got == [("", "2024-01-01", "null_key"), ("S1", "2024-01-01", None),
                   ("S2", "2024-01-01", "missing_attribute"), ("S3", "2024-01-01", None),
                   ("S3", "2025-01-01", "duplicate_id")]


def test_catalogue_rules(spark):
    def offer(oid, price=10.0):
        return (oid, "n", price, 5.0, 100.0, 50, 0, "residential", "prepaid", "4G", False)
    rows = [offer("O1"), offer("O2", price=-1.0), offer("O3"), offer("O3", price=20.0)]
    tagged = validate.tag_catalogue(spark.createDataFrame(rows, schemas.CATALOGUE))
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
    tagged = validate.tag_subscriptions(spark.createDataFrame(rows, schemas.SUBSCRIPTIONS),
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
    tagged = validate.tag_cdr(spark.createDataFrame(rows, schemas.CDR), subs, RUN, 120)
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
    tagged = validate.tag_cdr(spark.createDataFrame(rows, schemas.CDR), subs, RUN, 120)
    counts = validate.count_tagged(tagged, "cdr")
    assert (counts.read, counts.accepted, counts.rejected_by_reason) == (
        3, 1, {"negative_duration": 1, "unknown_subscriber": 1})
    accepted = validate.accepted_rows(tagged, schemas.CDR, RUN)
    assert accepted.columns == schemas.validated(schemas.CDR).fieldNames()
    rejected = validate.rejected_rows(tagged, "cdr", schemas.CDR, RUN)
    assert rejected.columns == schemas.REJECTS.fieldNames()
    record = rejected.filter(F.col(Col.REASON) == "negative_duration").first()[Col.RECORD]
    assert '"event_id":"E2"' in record and '"duration_s":-1.0' in record


# ---- the bad-row corpus: every reject reason, through the operator CSV adapter ---------------
from collections import Counter  # noqa: E402

from telcorec.core import config
from telcorec.io.warehouse import Warehouse  # noqa: E402
from telcorec.io.writer import DeltaRsWriter  # noqa: E402

CORPUS_RUN = dt.date(2026, 11, 1)
# Each table: header, then rows whose last field is the expected reason ("" = accepted).
CORPUS = {
    "subscribers": [
        "msisdn,seg,reg,since,device,pay,contract_end,hh,expect",
        "S1,youth,north,2024-01-01,mid,postpaid,2027-01-01,1,",
        "S2,family,south,2023-05-01,basic,prepaid,,4,",
        "S3,senior,,2020-02-29,,postpaid,,,",                  # optional attributes empty: ok
        ",youth,north,2024-01-01,mid,postpaid,,1,null_key",
        "S4,,north,2024-01-01,mid,postpaid,,1,missing_attribute",
        "S2,family,south,2025-05-01,basic,prepaid,,4,duplicate_id",   # later copy of S2
        "S5,youth,north,31/02/2024,mid,postpaid,,1,unparsable_value",
        "S6,youth,north,2024-01-01,mid,postpaid,,two,unparsable_value",
    ],
    "catalogue": [
        "offer,name,price,gb,mins,sms,months,type,pay,net,family,expect",
        "O1,Basic,10.0,5,100,50,0,residential,prepaid,4G,no,",
        "O2,Max,0,500,3000,5000,24,premium,postpaid,5G,yes,",   # a free offer is valid
        "O3,Bad,-5.0,5,100,50,0,residential,prepaid,4G,no,negative_price",
        "O1,Basic again,20.0,5,100,50,0,residential,prepaid,4G,no,duplicate_id",
        "O4,Text price,abc,5,100,50,0,residential,prepaid,4G,no,unparsable_value",
        ",No id,10.0,5,100,50,0,residential,prepaid,4G,no,null_key",
        "O5,No type,10.0,5,100,50,0,,prepaid,4G,no,missing_attribute",
        "O6,Odd flag,10.0,5,100,50,0,residential,prepaid,4G,maybe,unparsable_value",
    ],
    "subscriptions": [
        "msisdn,offer,start,end,expect",
        "S1,O1,2025-01-01,2025-06-01,",
        "S1,O2,2025-06-01,,",
        "S9,O1,2025-01-01,,unknown_subscriber",
        "S1,O9,2025-01-01,,unknown_offer",
        "S2,O1,2027-01-01,,invalid_dates",
        ",O1,2025-01-01,,null_key",
        "S3,O1,2025-13-45,,unparsable_value",
    ],
    "cdr": [
        "id,msisdn,kind,ts,dur,mb,expect",
        "E1,S1,MOC,2026-10-20 10:00:00,60,,",
        "E2,S1,GPRS,2026-10-20 11:00:00,,12.5,",
        "E3,S2,SMS-MO,2026-10-21 09:00:00,,,",
        "E14,S2,MOC,2026-10-21 09:05:00,0,,",                  # zero-length call: valid
        "E15,S2,MOC,2026-10-22 00:00:00,86400,,",              # exactly 24 h: valid
        "E16,S3,SMS-MO,2026-05-05 00:00:00,,,",                # first second of the window
        "E4,S1,MOC,2026-10-20 10:00:00,-5,,negative_duration",
        "E5,S1,MOC,2026-10-20 10:00:00,90000,,absurd_duration",
        "E6,S1,SMS-MO,2026-11-02 08:00:00,,,future_timestamp",
        "E7,S1,SMS-MO,2025-01-01 08:00:00,,,outside_window",
        "E8,S9,SMS-MO,2026-10-20 08:00:00,,,unknown_subscriber",
        "E2,S1,GPRS,2026-10-20 11:00:01,,12.5,duplicate_event",
        "E9,S1,FAX,2026-10-20 08:00:00,,,unknown_event_type",
        ",S1,SMS-MO,2026-10-20 08:00:00,,,null_key",
        "E10,S1,MOC,2026-10-20 08:00:00,12s,,unparsable_value",
        "E11,S1,MOC,yesterday,60,,unparsable_value",
        "E12,S1,GPRS,2026-10-20 08:00:00,,-3,negative_volume",
        "E13,S1,MOC,2026-10-20 10:00:00,60,,,surplus field,unparsable_value",  # malformed
    ],
}
MAPPING = {
    "subscribers": {"subscriber_id": "msisdn", "segment": "seg", "region": "reg",
                    "signup_date": "since", "device_tier": "device", "payment_type": "pay",
                    "contract_end": "contract_end", "household_size": "hh"},
    "catalogue": {"offer_id": "offer", "offer_name": "name", "price": "price", "data_gb": "gb",
                  "voice_min": "mins", "sms": "sms", "contract_months": "months",
                  "plan_type": "type", "payment_type": "pay", "network": "net",
                  "family": "family"},
    "subscriptions": {"subscriber_id": "msisdn", "offer_id": "offer", "start_date": "start",
                      "end_date": "end"},
    "cdr": {"event_id": "id", "subscriber_id": "msisdn", "event_type": "kind",
            "event_ts": "ts", "duration_s": "dur", "data_mb": "mb"},
}
KEYS = {"subscribers": Col.SUBSCRIBER_ID, "catalogue": Col.OFFER_ID,
        "subscriptions": Col.SUBSCRIBER_ID, "cdr": Col.EVENT_ID}


def corpus_config(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    tables = {}
    for name, lines in CORPUS.items():
        (src / f"{name}.csv").write_text("\n".join(lines) + "\n")
        tables[name] = {"path": f"{name}.csv", "columns": MAPPING[name]}
    tables["cdr"]["values"] = {"event_type": {"MOC": "voice", "SMS-MO": "sms", "GPRS": "data"}}
    data = config.load("conf/local.yaml").to_dict()
    data["warehouse"] = str(tmp_path / "wh")
    data["inputs"] = {**data["inputs"], "source": "operator",
                      "operator": {**data["inputs"]["operator"], "format": "csv",
                                   "path": str(src), **tables}}
    # the corpus files carry an `expect` column the mapping leaves unused
    data["ingest"] = {"cdr_window_days": 180, "max_reject_share": 1.0, "extra_columns": "ignore"}
    return config.from_dict(data)


def expected(name):
    rows = [line.rsplit(",", 1) for line in CORPUS[name][1:]]
    return [(row.split(",")[0], reason) for row, reason in rows]


def test_bad_row_corpus_every_reason_nothing_lost(spark, tmp_path):
    cfg = corpus_config(tmp_path)
    counts = {c.table: c for c in ingest_stage.run(spark, cfg, CORPUS_RUN)}
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    rejects = DeltaRsWriter().read(spark, wh.table("rejects"), schemas.REJECTS, [CORPUS_RUN])
    by_table = {}
    for row in rejects.collect():
        by_table.setdefault(row[Col.SOURCE_TABLE], []).append(row)
    for name in CORPUS:
        want = expected(name)
        c = counts[name]
        assert c.read == len(want) == c.accepted + c.rejected, name
        assert c.rejected_by_reason == dict(Counter(r for _, r in want if r)), name
        assert Counter(r[Col.REASON] for r in by_table.get(name, [])) == Counter(
            r for _, r in want if r), name
        accepted = DeltaRsWriter().read(spark, wh.table(name), schemas.accepted(name),
                                        [CORPUS_RUN])
        got_ids = Counter(r[KEYS[name]] for r in accepted.collect())
        assert got_ids == Counter(i for i, r in want if not r), name  # no valid row rejected
    assert counts["cdr"].flagged == {"missed_calls": 0, "zero_length_calls": 1}
    unparsable = [r[Col.RECORD] for r in by_table["cdr"] if r[Col.REASON] == "unparsable_value"]
    assert any('"dur":"12s"' in rec and '"_unparsable":"duration_s"' in rec for rec in unparsable)
    assert any('"_unparsable":"malformed_row"' in rec for rec in unparsable)


def test_unmapped_required_column_fails_before_anything_is_written(spark, tmp_path):
    cfg = corpus_config(tmp_path)
    mapping = {k: v for k, v in MAPPING["cdr"].items() if k != "event_ts"}
    bad = cfg.with_overrides(**{"inputs.operator.cdr": {"path": "cdr.csv", "columns": mapping}})
    with pytest.raises(SchemaError, match="'event_ts' \\(expected timestamp\\)"):
        ingest_stage.run(spark, bad, CORPUS_RUN)
    renamed = {**MAPPING["cdr"], "event_ts": "when"}
    bad = cfg.with_overrides(**{"inputs.operator.cdr": {"path": "cdr.csv", "columns": renamed}})
    with pytest.raises(SchemaError, match="column 'when' \\(contract 'event_ts', expected "
                                          "timestamp\\) is missing"):
        ingest_stage.run(spark, bad, CORPUS_RUN)
    assert not (tmp_path / "wh").exists()


@pytest.mark.parametrize("encoding, accent, undecodable", [
    ("utf-8", "é".encode("utf-8"), b"\xff"),
    # the Python-codec path; tests/sources/test_bad_inputs.py checks its decoding on literal lines fast
    pytest.param("cp1252", "é".encode("cp1252"), b"\x81", marks=pytest.mark.slow)])
def test_undecodable_bytes_make_their_row_an_invalid_encoding_reject(spark, tmp_path, encoding,
                                                                     accent, undecodable):
    cfg = corpus_config(tmp_path)
    cfg = cfg.with_overrides(**{"inputs.operator.csv": {**config.CsvConfig().__dict__,
                                                       "encoding": encoding}})
    src = tmp_path / "src"
    extra = {"subscribers": [b"S7,youth" + accent + b",north,2024-01-01,mid,postpaid,,1,",
                             b"S8" + undecodable + b",youth,north,2024-01-01,mid,postpaid,,1,"],
             "cdr": [b"E20,S1" + undecodable + b",MOC,2026-10-20 10:00:00,60,,"]}
    for name, lines in extra.items():
        with (src / f"{name}.csv").open("ab") as handle:
            handle.write(b"\n".join(lines) + b"\n")
    counts = {c.table: c for c in ingest_stage.run(spark, cfg, CORPUS_RUN)}
    for name in CORPUS:
        want = Counter(r for _, r in expected(name) if r)
        if name in extra:
            want["invalid_encoding"] += 1
        c = counts[name]
        assert c.read == len(CORPUS[name]) - 1 + len(extra.get(name, [])), name
        assert c.read == c.accepted + c.rejected and c.rejected_by_reason == dict(want), name
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    subs = DeltaRsWriter().read(spark, wh.table("subscribers"), schemas.accepted("subscribers"),
                                [CORPUS_RUN]).collect()
    assert {r[Col.SUBSCRIBER_ID]: r[Col.SEGMENT] for r in subs}["S7"] == "youthé"
    for name in CORPUS:
        rows = DeltaRsWriter().read(spark, wh.table(name), schemas.accepted(name), [CORPUS_RUN])
        assert not any("\ufffd" in str(v) for r in rows.collect() for v in r), name
    rejects = DeltaRsWriter().read(spark, wh.table("rejects"), schemas.REJECTS, [CORPUS_RUN])
    bad = rejects.filter(F.col(Col.REASON) == "invalid_encoding").collect()
    assert sorted(r[Col.SOURCE_TABLE] for r in bad) == ["cdr", "subscribers"]
    assert all('"_unparsable":"invalid_encoding"' in r[Col.RECORD] for r in bad)
