"""One batch of subscribers through rules, re-ranking, reasons and arms, worked out by hand;
the same rows on executors; a subscriber the rules leave fewer than K offers keeps fewer rows."""
import numpy as np
import pandas as pd
import pytest

from helpers.selection_rows import COLUMNS, MODEL, ROWS, literal_batch, make_selection
from telcorec.core.columns import Col
from telcorec.models.scoring import PopularityScorer
from telcorec.offers import selection

PREPAID = "rule prepaid_offers_for_prepaid: prepaid subscribers get prepaid plans only"
BUSINESS = "rule business_plans_for_business: business plans go to business customers"
WARM = "warm_start: 8-30 days with us; 70% content rules, 30% model"
COLD = "cold_start: no plan history yet; ranked from attributes and usage"
CONTROL = "control: the baseline's offer (most-held plans), experiment control arm"


def test_rules_rerank_arms_and_markers_on_literal_rows():
    got = selection.candidate_rows(literal_batch(), make_selection()).to_pandas()
    expected = pd.DataFrame([
        # A: relevance 1 (its only offer), revenue (40 - 10) / 30, retention .5 x (1 + 1) / 2
        ("A", "O3", 1, 0.4 + 0.3 + 0.1 + 0.1, "stub-1", "model", "established", 1.0, 1.0, 0.5, 1.0,
         [PREPAID]),
        # B: O2 .4 + .3 x (30 - 25) / 30 + .1; then O0 -.15 + .1 x (1 - 1/6)
        ("B", "O2", 1, 0.55, "stub-1", "model", "warm", 1.0, 1 / 6, 0.0, 1.0,
         [BUSINESS, WARM, COLD]),
        ("B", "O0", 2, -0.15 + 0.1 * 5 / 6, "stub-1", "model", "warm", 0.0, -0.5, 0.0, 5 / 6,
         [WARM, COLD]),
        # C: most-held first, ranked by relevance alone; components still recorded
        ("C", "O0", 1, 1.0, "popularity-1", "control", "established", 1.0, -1 / 3,
         0.1 * 0.5 * (1 / 3 + 0), 1.0, [CONTROL]),
        ("C", "O3", 2, 0.0, "popularity-1", "control", "established", 0.0, 2 / 3, 0.1, 2 / 3,
         [CONTROL]),
    ], columns=selection.CANDIDATES.fieldNames())
    pd.testing.assert_frame_equal(got.drop(columns=Col.REASONS),
                                  expected.drop(columns=Col.REASONS), check_dtype=False)
    assert [list(r) for r in got[Col.REASONS]] == list(expected[Col.REASONS])


def test_spare_depth_ranks_further_and_never_repeats_an_offer():
    got = selection.candidate_rows(literal_batch(), make_selection(depth=4)).to_pandas()
    assert got.groupby(Col.SUBSCRIBER_ID)[Col.OFFER_ID].apply(list).to_dict() == {
        "A": ["O3"], "B": ["O2", "O0"], "C": ["O0", "O3"]}  # the rules leave no more


def test_candidates_on_executors_equal_the_local_rows(spark):
    rows = [(f"{sid}{i}", *rest) for i in range(7) for sid, *rest in ROWS]
    df = spark.createDataFrame(rows, COLUMNS).repartition(3)
    got = selection.candidates(df, make_selection()).toPandas()
    local = selection.candidate_rows(df.toPandas().assign(**{
        c: lambda f, c=c: f[c].map(lambda a: np.asarray(a, dtype=np.int64))
        for c in (Col.EXCLUDE_IDX, Col.FATIGUE_IDX)}), make_selection()).to_pandas()
    key = [Col.SUBSCRIBER_ID, Col.RANK]
    for frame in (got, local):
        frame[Col.REASONS] = frame[Col.REASONS].map(list)
    pd.testing.assert_frame_equal(got.sort_values(key, ignore_index=True),
                                  local.sort_values(key, ignore_index=True), check_dtype=False)
    assert len(got) == 5 * 7


@pytest.mark.parametrize("arm", ["model", "control"])
def test_a_broken_model_keeps_nan_scores_for_the_gate(arm):
    broken = PopularityScorer(MODEL.offer_ids, np.full(4, np.nan), version="nan")
    sel = make_selection()
    sel.scorer = sel.baseline = broken
    batch = literal_batch().assign(**{Col.ARM: arm})
    got = selection.candidate_rows(batch, sel).to_pandas()
    assert len(got) == 5 and got[Col.SCORE].isna().all()
