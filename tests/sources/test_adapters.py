"""The adapters, selected by config alone, through the stages the issue names; pseudonymisation."""
import datetime as dt
import hmac

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from telcorec.core import config, schemas
from telcorec.core.columns import Col
from telcorec.core.exceptions import ConfigError
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter
from telcorec.sources import pseudonymise as pseudo
from telcorec.stages import evaluate as evaluate_stage
from telcorec.stages import features as features_stage
from telcorec.stages import ingest as ingest_stage
from telcorec.stages import interactions as interactions_stage
from telcorec.stages import train as train_stage

RUN = dt.date(2026, 11, 23)
IBM = "../shared/data/ibm-telco-churn/Telco-Customer-Churn.csv"
CALLS, SMS = "../shared/data/copenhagen-calls/calls.csv", "../shared/data/copenhagen-calls/sms.csv"


def conf(path, tmp_path, **overrides):
    return config.load(path).with_overrides(warehouse=str(tmp_path / "wh"), **overrides)


def read(spark, cfg, name, schema):
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    return DeltaRsWriter().read(spark, wh.table(name), schema, [RUN])


def test_ibm_telco_runs_through_the_feature_stage_from_config_alone(spark, tmp_path):
    cfg = conf("conf/ibm_telco.yaml", tmp_path)
    counts = {c.table: c for c in ingest_stage.run(spark, cfg, RUN)}
    raw = pd.read_csv(IBM)
    assert (counts["subscribers"].read, counts["subscribers"].accepted) == (len(raw), len(raw))
    assert counts["catalogue"].accepted == 13 and counts["cdr"].read == 0
    result = features_stage.run(spark, cfg, RUN)
    assert result["subscriber_features"] == len(raw) and result["offer_features"] == 13
    assert result["churn_holdout_auc"] > 0.75  # a logistic regression on the Churn label
    assert list(result["seconds"]) == ["usage_daily", "window_state", "statistics", "churn",
                                       "subscriber_features", "offer_features"]
    assert min(result["seconds"].values()) >= 0
    feats = read(spark, cfg, "subscriber_features", schemas.SUBSCRIBER_FEATURES)
    first = feats.filter(F.col(Col.SUBSCRIBER_ID) == "7590-VHVEG").first().asDict()
    # tenure 1, month-to-month, electronic check, DSL + online backup
    assert (first[Col.TENURE_MONTHS], first[Col.TENURE_STAGE], first[Col.RENEWAL_WINDOW]) == (
        1, "new", "yes")
    assert (first[Col.AUTOPAY], first[Col.ACTIVE_OFFERS], first[Col.CHURN_SOURCE]) == (
        "no", 3, "classifier")
    by_label = (feats.join(read(spark, cfg, "subscribers", schemas.accepted("subscribers")),
                           on=Col.SUBSCRIBER_ID, how="inner")
                .groupBy(Col.CHURNED).agg(F.avg(Col.CHURN_PROBABILITY).alias("p")).collect())
    mean = {r[Col.CHURNED]: r["p"] for r in by_label}
    assert mean[True] > mean[False] + 0.2
    offers = {r[Col.OFFER_ID]: r for r in read(spark, cfg, "offer_features",
                                               schemas.OFFER_FEATURES).collect()}
    assert offers["internet_fiber"][Col.PRICE] > offers["internet_dsl"][Col.PRICE] > 0
    assert offers["contract_two_year"][Col.CONTRACT_LENGTH] == "up_to_24m"


def copenhagen_oracle() -> pd.DataFrame:
    """The usage features of every caller, computed the slow, obvious way in pandas."""
    calls = pd.read_csv(CALLS).drop_duplicates()
    calls["hour"] = (calls["timestamp"] % 86400) // 3600  # the study starts at midnight
    out = []
    for caller, rows in calls.groupby("from"):
        per_hour = np.bincount(rows["hour"], minlength=24)
        out.append({"id": str(caller), "calls": len(rows),
                    "missed": (rows["duration"] == -1).mean(),
                    "zero": (rows["duration"] == 0).mean(),
                    "peak": int(np.argmax(per_hour)),
                    "business": per_hour[9:17].sum() / len(rows),
                    "voice_min": rows["duration"].clip(lower=0).sum() / 60.0})
    return pd.DataFrame(out).set_index("id")


def test_copenhagen_runs_through_the_feature_stage_from_config_alone(spark, tmp_path):
    cfg = conf("conf/copenhagen.yaml", tmp_path)
    counts = {c.table: c for c in ingest_stage.run(spark, cfg, RUN)}
    calls, sms = pd.read_csv(CALLS), pd.read_csv(SMS)
    cdr = counts["cdr"]
    assert cdr.read == len(calls) + len(sms) == cdr.accepted + cdr.rejected
    assert cdr.rejected_by_reason == {"duplicate_event": int(sms.duplicated().sum())}
    assert cdr.flagged == {"missed_calls": 366, "zero_length_calls": 580}
    participants = set(calls["from"]) | set(calls["to"]) | set(sms["from"]) | set(sms["to"])
    assert counts["subscribers"].accepted == len(participants)
    features_stage.run(spark, cfg, RUN)
    got = read(spark, cfg, "subscriber_features", schemas.SUBSCRIBER_FEATURES).toPandas()
    got = got.set_index(Col.SUBSCRIBER_ID)
    oracle = copenhagen_oracle()
    mine = got.loc[oracle.index]
    assert (mine[Col.PEAK_CALL_HOUR].to_numpy() == oracle["peak"].to_numpy()).all()
    np.testing.assert_allclose(mine[Col.MISSED_CALL_SHARE], oracle["missed"])
    np.testing.assert_allclose(mine[Col.ZERO_LENGTH_SHARE], oracle["zero"])
    np.testing.assert_allclose(mine[Col.BUSINESS_HOURS_RATIO], oracle["business"])
    np.testing.assert_allclose(mine[Col.VOICE_MIN_MONTH], oracle["voice_min"])
    sms_per_sender = sms.drop_duplicates().groupby("from").size()
    senders = got.loc[sms_per_sender.index.astype(str)]
    np.testing.assert_allclose(senders[Col.SMS_MONTH], sms_per_sender.to_numpy())
    assert set(got[Col.SEGMENT]) == {"student"}


USERS = 200


def write_interactions(tmp_path) -> str:
    """200 users in two groups, each holding 4 of its group's 6 items (of 12): a learnable task."""
    src = tmp_path / "events"
    src.mkdir()
    rng = np.random.default_rng(7)
    events, users = [], []
    base = int(dt.datetime(2026, 6, 1).timestamp())
    for u in range(USERS):
        group = u % 2
        users.append((f"u{u}", "north" if group else "south"))
        for k, item in enumerate(rng.choice(6, 4, replace=False) + 6 * group):
            events.append((f"u{u}", f"i{item}", base + 86400 * (10 * k + u % 7), 1 + k))
    pd.DataFrame(events, columns=["uid", "iid", "ts", "plays"]).to_csv(src / "events.csv",
                                                                       index=False)
    pd.DataFrame(users, columns=["uid", "grp"]).to_csv(src / "users.csv", index=False)
    return str(src)


def test_generic_interactions_run_through_train_and_evaluate(spark, tmp_path):
    src = write_interactions(tmp_path)
    cfg = conf("conf/local.yaml", tmp_path, **{
        "inputs.source": "interactions",
        "inputs.interactions": {"format": "csv", "path": src,
                                "events": {"path": "events.csv", "columns": {
                                    "user": "uid", "item": "iid", "timestamp": "ts",
                                    "weight": "plays"}},
                                "users": {"path": "users.csv", "columns": {
                                    "subscriber_id": "uid", "segment": "grp"}}},
        "train.lightfm.epochs": 60})
    counts = {c.table: c for c in ingest_stage.run(spark, cfg, RUN)}
    assert (counts["subscriptions"].accepted, counts["subscribers"].accepted,
            counts["catalogue"].accepted) == (4 * USERS, USERS, 12)
    features_stage.run(spark, cfg, RUN)
    assert interactions_stage.run(spark, cfg, RUN)["interactions"] == 4 * USERS
    pairs = read(spark, cfg, "interactions", schemas.INTERACTIONS)
    assert pairs.filter(F.col(Col.SPLIT) == "test").count() == USERS  # the latest per user
    # confidence: plays 1..4, normalised by their 99th percentile (4): 1 + 40 * plays / 4
    weights = {r[Col.WEIGHT] for r in pairs.collect()}
    assert weights == {11.0, 21.0, 31.0, 41.0}
    train_stage.run(spark, cfg, RUN)
    metrics = evaluate_stage.run(spark, cfg, RUN)
    model = next(v for k, v in metrics.items() if k.startswith("lightfm"))
    # every user's held-out item is among their group's 2 unseen items: the model finds it
    assert model["precision@5"] > metrics["popularity"]["precision@5"]
    assert model["recall@5"] >= 0.9


def test_resolve_secret_fails_closed(tmp_path):
    off = config.load("conf/local.yaml")
    assert pseudo.resolve_secret(off, environ={}) is None
    on = off.with_overrides(**{"pseudonymisation.enabled": True})
    with pytest.raises(ConfigError, match="TELCOREC_PSEUDO_KEY"):
        pseudo.resolve_secret(on, environ={})
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        pseudo.resolve_secret(on, environ={"TELCOREC_PSEUDO_KEY": "short"})
    assert pseudo.resolve_secret(on, environ={"TELCOREC_PSEUDO_KEY": "k" * 32}) == b"k" * 32
    key_file = tmp_path / "key"
    key_file.write_text("f" * 40 + "\n")
    from_file = on.with_overrides(**{"pseudonymisation.secret_file": str(key_file)})
    assert pseudo.resolve_secret(from_file, environ={}) == b"f" * 40
    missing = on.with_overrides(**{"pseudonymisation.secret_file": str(tmp_path / "none")})
    with pytest.raises(ConfigError, match="does not exist"):
        pseudo.resolve_secret(missing, environ={})


def test_pseudonyms_match_hmac_and_replace_ids_before_anything_is_written(spark, tmp_path):
    key = b"test-key-0123456789abcdef"
    ids = ["S000000001", "+4520123456", "ø-unicode", None]
    df = spark.createDataFrame([(i,) for i in ids], f"{Col.SUBSCRIBER_ID} string")
    got = [r[0] for r in df.select(pseudo.hasher(key)(F.col(Col.SUBSCRIBER_ID))).collect()]
    want = [None if i is None else hmac.new(key, i.encode(), "sha256").hexdigest()[:32]
            for i in ids]
    assert got == want == [None if i is None else pseudo.pseudonym(key, i) for i in ids]
    cfg = conf("conf/copenhagen.yaml", tmp_path, **{"pseudonymisation.enabled": True})
    with pytest.raises(ConfigError, match="no key"):
        ingest_stage.run(spark, cfg, RUN)
    ingest_stage.run(spark, cfg, RUN, secret=key)
    subs = {r[0] for r in read(spark, cfg, "subscribers", schemas.accepted("subscribers"))
            .select(Col.SUBSCRIBER_ID).collect()}
    raw = pd.read_csv(CALLS)
    assert pseudo.pseudonym(key, str(raw["from"].iloc[0])) in subs
    assert str(raw["from"].iloc[0]) not in subs
    cdr = read(spark, cfg, "cdr", schemas.accepted("cdr")).select(Col.SUBSCRIBER_ID,
                                                                   Col.EVENT_ID)
    assert cdr.filter(F.length(Col.EVENT_ID) != 32).count() == 0
    assert cdr.join(spark.createDataFrame([(s,) for s in subs], [Col.SUBSCRIBER_ID]),
                    on=Col.SUBSCRIBER_ID, how="left_anti").count() == 0
