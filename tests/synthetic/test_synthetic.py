"""The synthetic operator: contract schemas, determinism, plan histories, CDR, bad rows and a
hidden preference structure that is learnable from observable data."""
from __future__ import annotations

import dataclasses
import datetime as dt
import zlib

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertSchemaEqual

from telcorec.core import schemas
from telcorec.core.columns import Col, EventType
from telcorec.core.config import GeneratorConfig
from telcorec.core.exceptions import ConfigError
from telcorec.synthetic import generate, true_utility
from telcorec.synthetic import population as population_module
from telcorec.synthetic.catalogue import build_catalogue
from telcorec.synthetic.cdr import cdr_chunk
from telcorec.synthetic.population import GenCol, history, population
from telcorec.synthetic.rand import Salt

RUN_DATE = dt.date(2024, 6, 1)
SEED = 7
N, RATE = 200, 0.01
CDR_BAD_KINDS = ("negative_duration", "duration_over_day", "unknown_subscriber",
                 "null_subscriber", "unknown_event_type", "future_timestamp", "duplicate_event_id")


def _cfg(**overrides) -> GeneratorConfig:
    return GeneratorConfig(**{"subscribers": N, "bad_row_rate": RATE, **overrides})


def _cached(tables):
    return dataclasses.replace(tables, cdr=tables.cdr.cache())


@pytest.fixture(scope="module")
def tables(spark):
    generated = _cached(generate(spark, _cfg(), SEED, RUN_DATE))
    yield generated
    generated.cdr.unpersist()


@pytest.fixture(scope="module")
def clean_tables(spark):
    generated = _cached(generate(spark, _cfg(bad_row_rate=0.0), SEED, RUN_DATE))
    yield generated
    generated.cdr.unpersist()


TABLES = ("subscribers", "catalogue", "subscriptions", "cdr", "truth")


def _fingerprints(generated) -> dict[str, tuple]:
    """Per table an order-independent fingerprint of every row: count and sums of two hashes."""
    out = {}
    for name in TABLES:
        df = getattr(generated, name)
        cols = [F.coalesce(F.col(c).cast("string"), F.lit("<null>")) for c in df.columns]
        row = df.agg(F.count(F.lit(1)), F.sum(F.xxhash64(*cols).cast("decimal(38,0)")),
                     F.sum(F.hash(*cols).cast("decimal(38,0)"))).first()
        out[name] = tuple(row)
    return out


def test_every_table_has_its_contract_schema_exactly(tables):
    expected = {"subscribers": schemas.GENERATED["subscribers"], "catalogue": schemas.CATALOGUE,
                "subscriptions": schemas.SUBSCRIPTIONS, "cdr": schemas.CDR,
                "truth": schemas.SUBSCRIBER_TRUTH}
    for name, schema in expected.items():
        assertSchemaEqual(getattr(tables, name).schema, schema, ignoreNullable=False)


def test_same_seed_same_tables_whatever_the_partitioning(spark, tables):
    saved = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "5")
    try:
        again = generate(spark, _cfg(), SEED, RUN_DATE, partitions=3)
        assert _fingerprints(again) == _fingerprints(tables)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", saved)


def test_chunks_do_not_matter_to_the_pure_generators():
    offers = build_catalogue(60, SEED)
    whole = population(np.arange(90), SEED, 0.1)
    parts = pd.concat([population(np.arange(0, 31), SEED, 0.1),
                       population(np.arange(31, 90), SEED, 0.1)], ignore_index=True)
    pd.testing.assert_frame_equal(whole, parts)
    pd.testing.assert_frame_equal(
        history(whole, offers, SEED),
        pd.concat([history(parts.iloc[:31], offers, SEED),
                   history(parts.iloc[31:].reset_index(drop=True), offers, SEED)],
                  ignore_index=True))
    events = cdr_chunk(whole.iloc[:20], SEED, RUN_DATE, 90)
    tail = cdr_chunk(whole.iloc[7:20].reset_index(drop=True), SEED, RUN_DATE, 90)
    pd.testing.assert_frame_equal(events[events[GenCol.ID_NUMBER] > 7].reset_index(drop=True), tail)


def test_every_purpose_draws_from_its_own_stream():
    salts = [value for name, value in vars(Salt).items() if name.isupper()]
    assert len(salts) == len(set(salts)) > 20


def test_another_seed_gives_other_tables(spark, tables):
    ours, theirs = _fingerprints(tables), _fingerprints(generate(spark, _cfg(), SEED + 1, RUN_DATE))
    assert all(ours[name][1:] != theirs[name][1:] for name in TABLES)


def test_subscribers_are_n_plus_the_injected_rows(tables):
    subs = tables.subscribers.toPandas()
    assert len(subs) == N + round(N * RATE)
    clean = subs[subs[Col.SEGMENT].notna()]
    assert clean[Col.SUBSCRIBER_ID].nunique() == N
    assert len(clean) - N == subs[Col.SUBSCRIBER_ID].duplicated().sum() > 0
    assert subs[Col.SEGMENT].isna().sum() > 0
    truth = tables.truth.toPandas()
    assert sorted(truth[Col.SUBSCRIBER_ID]) == sorted(clean[Col.SUBSCRIBER_ID].unique())
    assert ((subs[Col.PAYMENT_TYPE] == "prepaid") == subs[Col.CONTRACT_END].isna()).all()
    assert (subs[Col.CONTRACT_END].dropna() > RUN_DATE).all()
    assert (subs[Col.SIGNUP_DATE] <= RUN_DATE).all()
    assert subs[Col.SIGNUP_DATE].min() >= RUN_DATE - dt.timedelta(days=3650)


def test_histories_end_in_one_current_plan_and_new_subscribers_have_none(tables):
    subs = tables.subscribers.toPandas().drop_duplicates(Col.SUBSCRIBER_ID)
    plans = tables.subscriptions.toPandas().sort_values([Col.SUBSCRIBER_ID, Col.START_DATE])
    new = set(subs.loc[subs[Col.SIGNUP_DATE] > RUN_DATE - dt.timedelta(days=30), Col.SUBSCRIBER_ID])
    held = set(plans[Col.SUBSCRIBER_ID])
    assert held.isdisjoint(new) and len(new) > 0
    assert held | new == set(subs.loc[subs[Col.SEGMENT].notna(), Col.SUBSCRIBER_ID])
    per_sub = plans.groupby(Col.SUBSCRIBER_ID)
    assert set(per_sub.size().unique()) == set(range(1, len(population_module.HISTORY_PROBS) + 1))
    assert (per_sub[Col.OFFER_ID].nunique() == per_sub.size()).all()
    current = plans[plans[Col.END_DATE].isna()]
    assert current[Col.SUBSCRIBER_ID].is_unique and set(current[Col.SUBSCRIBER_ID]) == held
    assert (current.set_index(Col.SUBSCRIBER_ID)[Col.START_DATE]
            == per_sub[Col.START_DATE].max()).all()
    assert (current[Col.START_DATE] <= RUN_DATE - dt.timedelta(days=30)).all()
    next_start = per_sub[Col.START_DATE].shift(-1)
    earlier = plans[Col.END_DATE].notna()
    assert (plans.loc[earlier, Col.END_DATE] == next_start[earlier]).all()
    first = per_sub[Col.START_DATE].min()
    signup = subs.set_index(Col.SUBSCRIBER_ID)[Col.SIGNUP_DATE]
    assert (first == signup[first.index]).all()


def test_catalogue_spans_every_kind_of_offer(tables):
    cat = tables.catalogue.toPandas()
    clean = cat[cat[Col.OFFER_ID] != "OFR9999"]
    assert len(clean) == 60 and clean[Col.OFFER_ID].is_unique
    assert clean.notna().all().all() and (clean[Col.PRICE] > 0).all()
    assert ((clean[Col.PRICE] * 100).round() % 100 == 99).all()
    combos = clean.groupby([Col.PLAN_TYPE, Col.PAYMENT_TYPE]).size()
    assert combos.min() >= 2 and len(combos) == 6
    assert set(clean[Col.NETWORK]) == {"4G", "5G"} and set(clean[Col.FAMILY]) == {True, False}
    prepaid = clean[Col.PAYMENT_TYPE] == "prepaid"
    assert (clean.loc[prepaid, Col.CONTRACT_MONTHS] == 0).all()
    assert set(clean.loc[~prepaid, Col.CONTRACT_MONTHS]) == {12, 24}
    assert clean[[Col.PRICE, Col.DATA_GB]].corr(method="spearman").iloc[0, 1] > 0.6
    assert build_catalogue(50, SEED).groupby(Col.PLAN_TYPE).size().min() >= 5


def test_clean_cdr_lies_in_the_window_after_signup(clean_tables, spark):
    cdr = clean_tables.cdr
    start = F.lit(RUN_DATE - dt.timedelta(days=90)).cast("timestamp")
    assert cdr.filter(~F.col(Col.EVENT_TS).between(start, F.lit(RUN_DATE).cast("timestamp"))
                      | (F.col(Col.EVENT_TS) >= F.lit(RUN_DATE).cast("timestamp"))).count() == 0
    signup = clean_tables.subscribers.select(Col.SUBSCRIBER_ID, Col.SIGNUP_DATE)
    early = cdr.join(signup, on=Col.SUBSCRIBER_ID, how="left").filter(
        F.to_date(Col.EVENT_TS) < F.col(Col.SIGNUP_DATE))
    assert early.count() == 0
    types = {r[0]: r[1:] for r in cdr.groupBy(Col.EVENT_TYPE).agg(
        F.count(F.col(Col.DURATION_S)), F.count(F.col(Col.DATA_MB)), F.count(F.lit(1))).collect()}
    assert types[EventType.VOICE][0] == types[EventType.VOICE][2] and types[EventType.VOICE][1] == 0
    assert types[EventType.DATA][1] == types[EventType.DATA][2] and types[EventType.DATA][0] == 0
    assert types[EventType.SMS][:2] == (0, 0)
    per_day = cdr.count() / (N * 90)
    assert 4 <= per_day <= 15, per_day


def test_usage_reveals_the_hidden_needs(clean_tables):
    cdr = clean_tables.cdr.groupBy(Col.SUBSCRIBER_ID).agg(
        F.sum(Col.DATA_MB).alias("mb"), F.sum(Col.DURATION_S).alias("s"),
        F.count(F.when(F.col(Col.EVENT_TYPE) == EventType.SMS, 1)).alias("sms"),
        F.countDistinct(F.to_date(Col.EVENT_TS)).alias("days")).toPandas()
    both = cdr.merge(clean_tables.truth.toPandas(), on=Col.SUBSCRIBER_ID, how="inner")
    both = both[both["days"] >= 60]
    for usage, need in (("mb", Col.DATA_NEED_GB), ("s", Col.VOICE_NEED_MIN), ("sms", Col.SMS_NEED)):
        assert both[usage].corr(both[need], method="spearman") > 0.8, usage


def _cdr_defects(tables) -> dict[str, int]:
    """How many CDR rows show each injected defect, and how many rows there are."""
    duration, sid = F.col(Col.DURATION_S), F.col(Col.SUBSCRIBER_ID)
    conditions = {
        "negative_duration": duration < 0,
        "duration_over_day": duration > 86400,
        "null_subscriber": sid.isNull(),
        "unknown_event_type": ~F.col(Col.EVENT_TYPE).isin(*EventType.ALL),
        "future_timestamp": F.col(Col.EVENT_TS) >= F.lit(RUN_DATE).cast("timestamp"),
    }
    found = tables.cdr.agg(*[F.count(F.when(c, 1)).alias(k) for k, c in conditions.items()],
                           F.count(F.lit(1)).alias("rows"),
                           F.countDistinct(Col.EVENT_ID).alias("ids")).first().asDict()
    found["duplicate_event_id"] = found["rows"] - found.pop("ids")
    known = tables.subscribers.select(Col.SUBSCRIBER_ID)
    found["unknown_subscriber"] = (tables.cdr.filter(sid.isNotNull())
                                   .join(known, on=Col.SUBSCRIBER_ID, how="left_anti").count())
    return found


def test_bad_rows_at_the_configured_rate(tables):
    defects = _cdr_defects(tables)
    clean = defects["rows"] - sum(defects[k] for k in CDR_BAD_KINDS)
    expected = RATE / len(CDR_BAD_KINDS) * clean
    for kind in CDR_BAD_KINDS:
        assert 0.7 * expected < defects[kind] < 1.3 * expected, (kind, defects[kind], expected)
    bad_offer = tables.catalogue.filter(F.col(Col.OFFER_ID) == "OFR9999").toPandas()
    assert len(bad_offer) == 1 and (bad_offer[Col.PRICE] < 0).all()


def test_no_bad_rows_when_the_rate_is_zero(clean_tables):
    defects = _cdr_defects(clean_tables)
    assert {k: defects[k] for k in CDR_BAD_KINDS} == dict.fromkeys(CDR_BAD_KINDS, 0)
    subs = clean_tables.subscribers.toPandas()
    assert len(subs) == N and subs[Col.SUBSCRIBER_ID].is_unique
    assert subs[Col.SEGMENT].notna().all()
    assert clean_tables.catalogue.count() == 60


def _slow_utility(s: pd.Series, o: pd.Series) -> float:
    fit = lambda have, need: abs(np.log(1 + have) - np.log(1 + need))  # noqa: E731
    if s[Col.SEGMENT] == "business":
        plan = "business"
    elif s[Col.SEGMENT] == "professional" and s[Col.DEVICE_TIER] == "flagship":
        plan = "premium"
    else:
        plan = "residential"
    u = (-1.5 * fit(o[Col.DATA_GB], s[Col.DATA_NEED_GB])
         - 1.0 * fit(o[Col.VOICE_MIN], s[Col.VOICE_NEED_MIN])
         - 0.3 * fit(o[Col.SMS], s[Col.SMS_NEED]) - s[Col.PRICE_SENSITIVITY] * o[Col.PRICE] / 30
         + 1.0 * (o[Col.PLAN_TYPE] == plan) + 1.5 * (o[Col.PAYMENT_TYPE] == s[Col.PAYMENT_TYPE]))
    if o[Col.FAMILY]:
        u += 0.6 if s[Col.HOUSEHOLD_SIZE] >= 3 else -0.4
    if o[Col.NETWORK] == "5G":
        u += {"flagship": 0.5, "basic": -0.5}.get(s[Col.DEVICE_TIER], 0.0)
    if s[Col.PERSONA] == zlib.crc32(o[Col.OFFER_ID].encode()) % 6:  # the hidden taste family
        u += 4.5
    return u


def test_without_noise_the_history_climbs_to_the_best_offer(monkeypatch):
    monkeypatch.setattr(population_module, "CHOICE_TEMPERATURE", 0.0)
    subs = population(np.arange(200), SEED, 0.0)
    offers = build_catalogue(60, SEED)
    order = np.argsort(-true_utility(subs, offers), axis=1, kind="stable")
    plans = history(subs, offers, SEED)
    sizes = plans.groupby(GenCol.NUMBER).size().reindex(subs[GenCol.NUMBER]).to_numpy()
    expected = np.concatenate([order[i, :h][::-1] for i, h in enumerate(sizes)])
    np.testing.assert_array_equal(plans[GenCol.OFFER_POS].to_numpy(), expected)


def test_vectorised_utility_matches_the_obvious_one():
    subs = population(np.arange(40), SEED + 3, 0.0)
    offers = build_catalogue(55, SEED + 3)
    expected = [[_slow_utility(s, o) for _, o in offers.iterrows()] for _, s in subs.iterrows()]
    # atol: a utility near 0 gets a relative error from the order of the sums, not from the formula
    np.testing.assert_allclose(true_utility(subs, offers), np.array(expected), rtol=1e-12,
                               atol=1e-12)


def test_current_plan_is_learnable_from_the_truth_but_not_from_popularity(spark):
    t = generate(spark, _cfg(subscribers=3000), SEED, RUN_DATE)
    plans = t.subscriptions.toPandas()
    truth = t.truth.toPandas().set_index(Col.SUBSCRIBER_ID)
    offers = t.catalogue.filter(F.col(Col.PRICE) > 0).toPandas().sort_values(Col.OFFER_ID)
    pos = pd.Series(np.arange(len(offers)), index=offers[Col.OFFER_ID])
    plans["pos"] = pos[plans[Col.OFFER_ID]].to_numpy()
    earlier, current = plans[plans[Col.END_DATE].notna()], plans[plans[Col.END_DATE].isna()]
    users = earlier[Col.SUBSCRIBER_ID].unique()
    row = pd.Series(np.arange(len(users)), index=users)
    seen = np.zeros((len(users), len(offers)), dtype=bool)
    seen[row[earlier[Col.SUBSCRIBER_ID]].to_numpy(), earlier["pos"].to_numpy()] = True
    target = current.set_index(Col.SUBSCRIBER_ID)["pos"][users].to_numpy()
    popularity = np.bincount(earlier["pos"], minlength=len(offers)).astype(float)

    def hit_at_5(scores: np.ndarray) -> float:
        top = np.argsort(-np.where(seen, -np.inf, scores), axis=1, kind="stable")[:, :5]
        return float((top == target[:, None]).any(axis=1).mean())

    utility = true_utility(truth.loc[users].reset_index(), offers)
    oracle = hit_at_5(utility)
    popular = hit_at_5(np.broadcast_to(popularity, seen.shape))
    margin = np.mean(utility[np.arange(len(users)), target]
                     - np.where(seen, utility, 0).sum(axis=1) / seen.sum(axis=1))
    message = (f"oracle hit@5 {oracle:.3f} vs popularity hit@5 {popular:.3f} ({len(users)} "
               f"subscribers; current plan's utility above the earlier ones by {margin:.2f})")
    print(message)
    assert len(users) > 1500, message
    assert oracle >= 0.5 and popular <= oracle / 2 and margin > 0.1, message


def test_usage_scale_thins_every_event_type_in_proportion():
    pop = population(np.arange(200), SEED, 0.0)
    full = cdr_chunk(pop, SEED, RUN_DATE, 90)
    tenth = cdr_chunk(pop, SEED, RUN_DATE, 90, usage_scale=0.1)
    by_type = full[GenCol.EVENT_CODE].value_counts()
    ratios = tenth[GenCol.EVENT_CODE].value_counts() / by_type
    assert by_type.min() > 5_000  # enough events that the ratio is tight
    assert ((ratios > 0.08) & (ratios < 0.12)).all(), ratios.to_dict()
    pd.testing.assert_frame_equal(cdr_chunk(pop, SEED, RUN_DATE, 90, usage_scale=1.0), full)


def test_a_snapshot_date_gives_later_run_dates_the_same_operator_and_past_days():
    """generator.snapshot_date: the run a week later sees the same subscribers, plans and CDR of
    every day it shares with the first run, plus the week's new days; without it each run date
    gets an operator dated back from itself (the signups move with the run date)."""
    pop = population(np.arange(300), SEED, 0.1)
    later = RUN_DATE + dt.timedelta(days=7)
    first = cdr_chunk(pop, SEED, RUN_DATE, 90, snapshot=RUN_DATE)
    again = cdr_chunk(pop, SEED, later, 90, snapshot=RUN_DATE)
    pd.testing.assert_frame_equal(first, cdr_chunk(pop, SEED, RUN_DATE, 90))  # default intact
    cut = np.datetime64(RUN_DATE, "s").astype(np.int64)  # the first run's date, as EPOCH_S
    shared = again[again[GenCol.EPOCH_S] < cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(shared, first)
    new = again[again[GenCol.EPOCH_S] >= cut]
    assert len(new) > 7 * len(first) / 90 * 0.8  # the week's days, at the usual daily volume
    sliding = cdr_chunk(pop, SEED, later, 90)  # no snapshot: the tenures count from `later`
    assert not sliding[sliding[GenCol.EPOCH_S] < cut].reset_index(drop=True).equals(first)


def test_a_snapshot_date_dates_signups_and_plans_from_it(spark):
    later = RUN_DATE + dt.timedelta(days=30)
    dated = [generate(spark, _cfg(snapshot_date=RUN_DATE.isoformat()), SEED, day)
             for day in (RUN_DATE, later)]
    for name, key in (("subscribers", Col.SIGNUP_DATE), ("subscriptions", Col.START_DATE)):
        a, b = (sorted(getattr(t, name).select(Col.SUBSCRIBER_ID, key).collect()) for t in dated)
        assert a == b, name
    with pytest.raises(ConfigError, match="snapshot_date"):
        generate(spark, _cfg(snapshot_date=later.isoformat()), SEED, RUN_DATE)


def test_a_snapshot_date_delivers_no_day_older_than_the_source_keeps():
    pop = population(np.arange(50), SEED, 0.0)
    later = RUN_DATE + dt.timedelta(days=400)
    rows = cdr_chunk(pop, SEED, later, 90, snapshot=RUN_DATE, kept_days=180)
    days = (rows[GenCol.EPOCH_S] // 86_400).unique()
    first = np.datetime64(later - dt.timedelta(days=180), "D").astype(np.int64)
    assert days.min() == first and days.max() == first + 179
