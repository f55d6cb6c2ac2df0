"""The score stage's one publishing pass: rows computed, counted and written by the same tasks.

The literal subscribers of tests/offers/test_selection.py, copied many times under new ids, go through
DeltaRsWriter.stage_partition with the stage's task function on executors; what the tasks count and
write must equal what the same function gives locally, batch by batch."""
import collections
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from helpers.selection_rows import COLUMNS, ROWS, make_selection
from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.core.exceptions import DataError
from telcorec.io import delta_rs, task_files
from telcorec.io.writer import DeltaRsWriter, SparkDeltaWriter
from telcorec.offers import campaign_cap, rules, selection
from telcorec.offers.counts import ScoreCounts
from telcorec.publish import passes
from telcorec.publish.contract import OffersContract

RUN = dt.date(2026, 11, 23)
COPIES = 40


def copied_rows():
    return [(f"{sid}{i:03d}", *rest) for i in range(COPIES) for sid, *rest in ROWS]


def produce_for(sel, k=2, caps=None):
    contract = OffersContract(tuple(sel.offers[Col.OFFER_ID]), k)
    return passes.publishing_task(sel, k, caps, contract, RUN, "run-1")


def local_expectation(sel, k=2):
    """The counts and rows of the task function run on one local batch of every subscriber."""
    names = [c.split()[0] for c in COLUMNS.split(", ")]
    batch = pd.DataFrame(copied_rows(), columns=names)
    for c in (Col.EXCLUDE_IDX, Col.FATIGUE_IDX):
        batch[c] = batch[c].map(lambda a: np.asarray(a, dtype=np.int64))
    rows, counts = selection.offer_rows(batch, sel, k)
    return rows.to_pandas(), counts


def test_staged_counts_and_rows_on_executors_equal_the_local_pass(spark, tmp_path):
    sel = make_selection()
    df = spark.createDataFrame(copied_rows(), COLUMNS).repartition(3)
    staged = DeltaRsWriter().stage_partition(df, tmp_path / "offers", schemas.OFFERS, RUN,
                                             produce_for(sel))
    local_rows, local_counts = local_expectation(sel)
    for name in (rules.CANDIDATE_PAIRS, rules.CONSENT, rules.CURRENT_PLAN, rules.FATIGUE,
                 rules.ELIGIBLE_PAIRS, rules.WITHOUT_OFFERS,
                 *(r.name for r in sel.eligibility)):
        assert staged.counts.rules.get(name, 0) == local_counts.rules[name], name
    assert staged.counts.rows == staged.rows == len(local_rows) == 5 * COPIES
    firsts = local_rows[local_rows[Col.RANK] == 1][Col.ARM].value_counts()
    assert staged.counts.first == dict(firsts)
    assert staged.counts.violations and not any(staged.counts.violations.values())
    assert not delta_rs.is_delta_table(tmp_path / "offers")  # written, not committed
    assert staged.commit() == len(local_rows)
    got = DeltaTable(str(tmp_path / "offers")).to_pandas()
    key = [Col.SUBSCRIBER_ID, Col.RANK]
    pd.testing.assert_frame_equal(
        got[local_rows.columns].sort_values(key, ignore_index=True),
        local_rows.sort_values(key, ignore_index=True), check_dtype=False)
    assert set(got[Col.RUN_ID]) == {"run-1"} and len(got) == staged.rows


def test_a_discarded_stage_leaves_no_file_and_no_version(spark, tmp_path):
    df = spark.createDataFrame(copied_rows(), COLUMNS).repartition(2)
    table = tmp_path / "offers"
    staged = DeltaRsWriter().stage_partition(df, table, schemas.OFFERS, RUN,
                                             produce_for(make_selection()))
    assert staged.files and all((table / f["path"]).is_file() for f in staged.files)
    staged.discard()
    assert not list(table.rglob("*.parquet")) and not delta_rs.is_delta_table(table)


def test_the_pass_counts_contract_violations_instead_of_writing_them_unseen(spark, tmp_path):
    """A model that ranks an offer outside the contract's catalogue (here: a contract of K=1
    against rows ranked to 2) is counted by the tasks, and the stage refuses before committing."""
    sel = make_selection()
    contract = OffersContract(tuple(sel.offers[Col.OFFER_ID]), 1)
    produce = passes.publishing_task(sel, 2, None, contract, RUN, "run-1")
    df = spark.createDataFrame(copied_rows(), COLUMNS).repartition(2)
    staged = DeltaRsWriter().stage_partition(df, tmp_path / "offers", schemas.OFFERS, RUN, produce)
    ranked_twice = 2 * COPIES  # B and C get two offers each, A one
    assert staged.counts.violations["rank_in_range"] == ranked_twice
    with pytest.raises(Exception, match="rank_in_range: 80 rows"):
        contract.refuse(staged.counts.violations)


def test_the_cap_in_the_pass_admits_exactly_what_its_thresholds_allow(spark, tmp_path):
    sel = make_selection(depth=3)
    df = spark.createDataFrame(copied_rows(), COLUMNS).repartition(3)
    plan = selection.plans(df, sel).cache()
    limit = 25
    caps = campaign_cap.thresholds(plan, limit, len(sel.offers))
    staged = DeltaRsWriter().stage_partition(df, tmp_path / "offers", schemas.OFFERS, RUN,
                                             produce_for(sel, caps=caps))
    admitted = staged.counts.admitted
    caps.check(admitted)
    assert max(admitted.values()) == limit and caps.capped_rows > 0
    staged.commit()
    got = DeltaTable(str(tmp_path / "offers")).to_pandas()
    assert got.groupby(Col.OFFER_ID).size().max() <= limit
    ranks = got.sort_values(Col.RANK).groupby(Col.SUBSCRIBER_ID)[Col.RANK].apply(list)
    assert all(r == list(range(1, len(r) + 1)) for r in ranks)  # renumbered after the cap


def test_population_counts_plans_and_refuses_a_subscriber_twice(spark):
    df = spark.createDataFrame(copied_rows(), COLUMNS)
    people = passes.population(df)
    held = collections.Counter(r[4] for r in copied_rows() if r[4] is not None)
    assert people.subscribers == 3 * COPIES and people.held == dict(held)
    with pytest.raises(DataError, match="1 rows beyond one per subscriber"):
        passes.population(df.union(df.limit(1)))


def test_a_cap_that_binds_nowhere_needs_no_thresholds_and_changes_nothing(spark, tmp_path):
    """The stage writes once without thresholds and keeps those files when no offer is wanted
    by more candidate rows than the cap allows: they are what the thresholds would give."""
    sel = make_selection(depth=3)
    df = spark.createDataFrame(copied_rows(), COLUMNS).repartition(3)
    once = DeltaRsWriter().stage_partition(df, tmp_path / "a", schemas.OFFERS, RUN,
                                           produce_for(sel))
    wanted = max(once.counts.admitted.values())
    assert passes._over_cap(once.counts, wanted) == 0
    assert passes._over_cap(once.counts, wanted - 1) >= 1
    assert passes._over_cap(once.counts, None) == 0
    caps = campaign_cap.thresholds(selection.plans(df, sel).cache(), wanted, len(sel.offers))
    assert caps.capped_rows == 0
    twice = DeltaRsWriter().stage_partition(df, tmp_path / "b", schemas.OFFERS, RUN,
                                            produce_for(sel, caps=caps))
    once.commit(), twice.commit()
    key = [Col.SUBSCRIBER_ID, Col.RANK]
    a, b = (DeltaTable(str(tmp_path / t)).to_pandas().sort_values(key, ignore_index=True)
            for t in ("a", "b"))
    pd.testing.assert_frame_equal(a, b)


def test_score_counts_merge_key_by_key_and_come_back_from_json():
    a = ScoreCounts(rules={rules.CANDIDATE_PAIRS: 10, rules.CONSENT: 2}, fillable=3,
                    eligible={0: 1, 4: 2}, admitted={4: 2}, rows=3, first={"model": 1},
                    offered={"O1": 2, "O2": 1}, violations={"rank_in_range": 0})
    b = ScoreCounts(rules={rules.CONSENT: 1, rules.FATIGUE: 4}, eligible={4: 5}, rows=1,
                    first={"control": 1}, offered={"O2": 1}, violations={"rank_in_range": 2})
    both = a.merge(b)
    assert both == ScoreCounts(
        rules={rules.CANDIDATE_PAIRS: 10, rules.CONSENT: 3, rules.FATIGUE: 4}, fillable=3,
        eligible={0: 1, 4: 7}, admitted={4: 2}, rows=4, first={"model": 1, "control": 1},
        offered={"O1": 2, "O2": 2}, violations={"rank_in_range": 2})
    assert ScoreCounts.from_json(both.to_json()) == both  # offer indices come back as ints
    assert ScoreCounts().merge(a) == a == a.merge(ScoreCounts())
    assert ScoreCounts().fillable is None  # nothing counted: the gate bounds rows by K instead


def test_the_spark_writers_passes_count_and_compute_what_the_delta_rs_tasks_write(spark,
                                                                                tmp_path):
    """Spark's Delta writer cannot commit files written elsewhere: staging counts in one pass
    and the commit computes the rows again. Both passes (run here without Delta's jars, up to
    the write itself) give what the delta-rs tasks count and write."""
    sel = make_selection()
    df = spark.createDataFrame(copied_rows(), COLUMNS).repartition(3)
    produce = produce_for(sel)
    staged = DeltaRsWriter().stage_partition(df, tmp_path / "offers", schemas.OFFERS, RUN,
                                             produce)
    counted = SparkDeltaWriter().stage_partition(df, tmp_path / "other", schemas.OFFERS, RUN,
                                                 produce)
    assert counted.counts == staged.counts and counted.rows == staged.rows == 5 * COPIES
    assert not (tmp_path / "other").exists()  # counted, nothing written
    again = task_files.produced(df, produce, schemas.OFFERS).toPandas()  # 200 test rows
    staged.commit()
    got = DeltaTable(str(tmp_path / "offers")).to_pandas()
    key = [Col.SUBSCRIBER_ID, Col.RANK]
    pd.testing.assert_frame_equal(again[got.columns].sort_values(key, ignore_index=True),
                                  got.sort_values(key, ignore_index=True), check_dtype=False)
