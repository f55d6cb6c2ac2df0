"""The `responses` input: every reject reason on literal rows, and a response file with bad rows
(malformed lines included) fully accounted by the ingest stage without stopping it."""
import datetime as dt
from collections import Counter

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from helpers import fault_injection
from telcorec.core import config, schemas
from telcorec.core.columns import Col
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter
from telcorec.sources import validate
from telcorec.stages import ingest as ingest_stage

OFFERED_ON, RUN = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def offer_row(sid, oid, run_date=OFFERED_ON, rank=1, arm="model"):
    return fault_injection.offer_row(run_date, sid, oid, **{Col.RANK: rank, Col.ARM: arm})


def response(sid, oid, offered=OFFERED_ON, responded=OFFERED_ON, outcome="accepted"):
    return (sid, oid, offered, "sms", responded, outcome)


def test_every_response_reject_reason(spark):
    subscribers = spark.createDataFrame([("S1",), ("S2",)], [Col.SUBSCRIBER_ID])
    published = spark.createDataFrame(
        [offer_row("S1", "O1"), offer_row("S1", "O2"), offer_row("S2", "O1"),
         offer_row("S2", "O3")], schemas.OFFERS)
    recorded = spark.createDataFrame([("S2", "O3", OFFERED_ON)], list(validate.RESPONSE_KEY))
    d = dt.date
    rows = [
        response("S1", "O1"),                                           # accepted
        response("S1", "O1", responded=d(2026, 11, 2), outcome="declined"),  # second copy
        response("S1", "O2", outcome="maybe"),                          # unknown outcome
        response("S1", "O2", outcome=None),                             # unknown outcome
        response("S9", "O1"),                                           # unknown subscriber
        response("S2", "O2"),                                           # never offered to S2
        response("S2", "O1", offered=d(2026, 10, 31)),                  # not offered that day
        response("S2", "O1", responded=d(2026, 10, 31)),                # before the offer
        response("S2", "O1", responded=d(2026, 11, 3)),                 # after the run date
        response("S2", "O3"),                                           # recorded yesterday
        response(None, "O1"),
        response("S1", "O2", responded=None),
    ]
    tagged = validate.tag_responses(spark.createDataFrame(rows, schemas.RESPONSES),
                                    subscribers, published, recorded, RUN)
    got = sorted(((r[Col.SUBSCRIBER_ID] or "", r[Col.OFFER_ID], str(r[Col.OFFER_RUN_DATE]),
                   str(r[Col.RESPONDED_DATE]), str(r[Col.OUTCOME])), r[Col.REASON] or "")
                 for r in tagged.collect())
    assert got == [
        (("", "O1", "2026-11-01", "2026-11-01", "accepted"), "null_key"),
        (("S1", "O1", "2026-11-01", "2026-11-01", "accepted"), ""),
        (("S1", "O1", "2026-11-01", "2026-11-02", "declined"), "duplicate_response"),
        (("S1", "O2", "2026-11-01", "2026-11-01", "None"), "unknown_outcome"),
        (("S1", "O2", "2026-11-01", "2026-11-01", "maybe"), "unknown_outcome"),
        (("S1", "O2", "2026-11-01", "None", "accepted"), "null_key"),
        (("S2", "O1", "2026-10-31", "2026-11-01", "accepted"), "not_offered"),
        (("S2", "O1", "2026-11-01", "2026-10-31", "accepted"), "response_before_offer"),
        (("S2", "O1", "2026-11-01", "2026-11-03", "accepted"), "future_response"),
        (("S2", "O2", "2026-11-01", "2026-11-01", "accepted"), "not_offered"),
        (("S2", "O3", "2026-11-01", "2026-11-01", "accepted"), "duplicate_response"),
        (("S9", "O1", "2026-11-01", "2026-11-01", "accepted"), "unknown_subscriber"),
    ]


INPUTS = {
    "subscribers": ["msisdn,segment,region,signup_date,device_tier,payment_type,contract_end,"
                    "household_size", "S1,youth,North,2024-01-01,mid,postpaid,,1",
                    "S2,family,North,2024-01-01,mid,postpaid,,3"],
    "catalogue": ["offer_id,offer_name,price,data_gb,voice_min,sms,contract_months,plan_type,"
                  "payment_type,network,family",
                  "O1,A,10,5,100,50,0,residential,postpaid,4G,false",
                  "O2,B,20,50,500,50,0,residential,postpaid,5G,false"],
    "subscriptions": ["msisdn,offer_id,start_date,end_date", "S1,O1,2025-01-01,",
                      "S2,O1,2025-01-01,"],
    "cdr": ["event_id,msisdn,event_type,event_ts,duration_s,data_mb",
            "E1,S1,voice,2026-10-20 10:00:00,60,"],
}
RESPONSES_CSV = [
    "msisdn,offer,offered_on,via,answered_on,result",
    "S1,O2,2026-11-01,sms,2026-11-01,accepted",
    "S2,O2,2026-11-01,app,2026-11-01,declined",
    "S2,O2,2026-11-01,app,2026-11-01,declined",        # duplicate_response
    "S1,O2,2026-11-01,sms,2026-11-01,bought",          # unknown_outcome
    "S7,O2,2026-11-01,sms,2026-11-01,accepted",        # unknown_subscriber
    "S1,O1,2026-11-01,sms,2026-11-01,declined",        # not_offered
    "S1,O2,2026-11-01,sms,2026-10-30,declined",        # response_before_offer
    "S1,O2,2026-11-01,sms,yesterday,declined",         # unparsable_value
    "S1,O2,2026-11-01,sms,2026-11-01,declined,extra",  # malformed line: unparsable_value
]


def operator_config(tmp_path, with_responses=True):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    tables = {}
    for name, lines in INPUTS.items():
        (src / f"{name}.csv").write_text("\n".join(lines) + "\n")
        header = lines[0].split(",")
        tables[name] = {"path": f"{name}.csv", "columns": {
            c: ("msisdn" if c == Col.SUBSCRIBER_ID else c)
            for c in schemas.INPUTS[name].fieldNames() if c in header or c == Col.SUBSCRIBER_ID}}
    if with_responses:
        (src / "responses.csv").write_text("\n".join(RESPONSES_CSV) + "\n")
    tables["responses"] = {"path": "responses.csv", "columns": {
        Col.SUBSCRIBER_ID: "msisdn", Col.OFFER_ID: "offer", Col.OFFER_RUN_DATE: "offered_on",
        Col.CHANNEL: "via", Col.RESPONDED_DATE: "answered_on", Col.OUTCOME: "result"}}
    data = config.load("conf/base.yaml").to_dict()
    data["warehouse"] = str(tmp_path / "wh")
    data["inputs"]["source"] = "operator"
    data["inputs"]["operator"] = {**data["inputs"]["operator"], "path": str(src), **tables}
    return config.from_dict(data)


def publish_offers(spark, wh):
    rows = [offer_row("S1", "O2"), offer_row("S2", "O2")]
    DeltaRsWriter().replace_partition(spark.createDataFrame(rows, schemas.OFFERS),
                                      wh.table("offers"), schemas.OFFERS, OFFERED_ON)


@pytest.mark.slow  # three ingest runs: ~45 s on 2 cores
def test_a_bad_response_file_is_fully_accounted_and_a_rerun_changes_nothing(spark, tmp_path):
    cfg = operator_config(tmp_path)
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    publish_offers(spark, wh)
    counts = {c.table: c for c in ingest_stage.run(spark, cfg, RUN)}
    c = counts["responses"]
    assert (c.read, c.accepted, c.rejected) == (9, 2, 7)  # 66% rejected: the run went on
    want_reasons = {"duplicate_response": 1, "unknown_outcome": 1, "unknown_subscriber": 1,
                    "not_offered": 1, "response_before_offer": 1, "unparsable_value": 2}
    assert c.rejected_by_reason == want_reasons
    accepted = spark.createDataFrame(
        [(RUN, "S1", "O2", OFFERED_ON, "sms", OFFERED_ON, "accepted"),
         (RUN, "S2", "O2", OFFERED_ON, "app", OFFERED_ON, "declined")],
        schemas.accepted("responses"))

    def written():
        rejects = DeltaRsWriter().read(spark, wh.table("rejects"), schemas.REJECTS, [RUN])
        return (DeltaRsWriter().read(spark, wh.table("responses"), schemas.accepted("responses")),
                Counter(r[Col.REASON] for r in rejects.where(
                    F.col(Col.SOURCE_TABLE) == "responses").collect()))

    table, rejected = written()
    assertDataFrameEqual(table, accepted)
    assert rejected == Counter(want_reasons)
    ingest_stage.run(spark, cfg, RUN)  # a rerun of the date replaces, never adds
    table, rejected = written()
    assertDataFrameEqual(table, accepted)
    assert rejected == Counter(want_reasons)
    # the next day the same file again: everything already recorded is a duplicate
    later = {c.table: c for c in ingest_stage.run(spark, cfg, RUN + dt.timedelta(days=1))}
    assert later["responses"].rejected_by_reason["duplicate_response"] == 3


def test_no_response_file_means_no_responses(spark, tmp_path):
    cfg = operator_config(tmp_path, with_responses=False)
    counts = {c.table: c for c in ingest_stage.run(spark, cfg, RUN)}
    assert (counts["responses"].read, counts["responses"].rejected) == (0, 0)
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    assert DeltaRsWriter().read(spark, wh.table("responses"),
                                schemas.accepted("responses")).count() == 0
