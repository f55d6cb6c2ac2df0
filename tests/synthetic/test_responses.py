"""The simulated campaign's pieces on literal rows: answer probabilities and plan changes."""
import datetime as dt

import numpy as np
from pyspark.testing import assertDataFrameEqual

from telcorec.core import schemas
from telcorec.core.config import SimulationConfig
from telcorec.synthetic.responses import answer_probabilities, with_plan_changes

d = dt.date


def test_acceptance_rises_with_utility_gain_and_sight_falls_with_rank():
    cfg = SimulationConfig(max_accept=0.5, utility_scale=2.0, bias=0.0, rank_decay=0.5)
    seen, accept = answer_probabilities(np.array([-1.0, 0.0, 1.0]), np.array([1, 2, 3]), cfg)
    assert seen.tolist() == [1.0, 0.5, 0.25]
    # 0.5 / (1 + exp(-2 gain)): 0.5 * sigmoid(-2), 0.25, 0.5 * sigmoid(2)
    np.testing.assert_allclose(accept, [0.5 / (1 + np.exp(2)), 0.25, 0.5 / (1 + np.exp(-2))])


def test_an_accepted_plan_ends_the_plans_held_before_it(spark):
    subscriptions = spark.createDataFrame([
        ("S1", "O1", d(2024, 1, 1), d(2025, 1, 1)),
        ("S1", "O2", d(2025, 1, 2), None),           # current until the change
        ("S2", "O1", d(2024, 1, 1), None),           # no change: untouched
        ("S3", "O1", d(2024, 1, 1), None),           # two changes in a row
    ], schemas.SUBSCRIPTIONS)
    changes = spark.createDataFrame(
        [("S1", "O3", d(2026, 11, 2)), ("S3", "O2", d(2026, 11, 2)), ("S3", "O4", d(2026, 11, 5))],
        "subscriber_id string, offer_id string, start_date date")
    assertDataFrameEqual(with_plan_changes(subscriptions, changes), spark.createDataFrame([
        ("S1", "O1", d(2024, 1, 1), d(2025, 1, 1)),
        ("S1", "O2", d(2025, 1, 2), d(2026, 11, 1)),
        ("S1", "O3", d(2026, 11, 2), None),
        ("S2", "O1", d(2024, 1, 1), None),
        ("S3", "O1", d(2024, 1, 1), d(2026, 11, 1)),
        ("S3", "O2", d(2026, 11, 2), d(2026, 11, 4)),
        ("S3", "O4", d(2026, 11, 5), None),
    ], schemas.SUBSCRIPTIONS))
