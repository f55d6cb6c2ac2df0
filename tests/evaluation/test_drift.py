"""Drift: PSI against a slow obvious reference, and an injected shift flags only its feature."""
import math

import numpy as np
import pytest

from telcorec.evaluation import drift

BINS = 10


def slow_psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Deciles of the reference as edges, shares floored at 1e-4, sum (a - e) ln(a / e)."""
    edges = sorted(set(np.quantile(reference, [i / BINS for i in range(1, BINS)])))
    total = 0.0
    for b in range(len(edges) + 1):
        def share(x):
            idx = np.array([sum(v > e for e in edges) for v in x])
            return max(np.mean(idx == b), 1e-4)
        e, a = share(reference), share(current)
        total += (a - e) * math.log(a / e)
    return total


def test_psi_of_a_hand_derived_histogram():
    # (0.5 - 0.25) ln 2 + (0.5 - 0.75) ln(2/3)
    want = 0.25 * math.log(2) - 0.25 * math.log(2 / 3)
    assert drift.psi({"a": 25, "b": 75}, {"a": 50, "b": 50}) == pytest.approx(want)
    assert drift.psi({"a": 10}, {"a": 3}) == 0.0
    assert drift.relative_change(150, 100) == pytest.approx(0.5)


def frame(spark, values: dict[str, np.ndarray], segments: np.ndarray):
    rows = [tuple(float(values[c][i]) for c in values) + (str(segments[i]),)
            for i in range(len(segments))]
    return spark.createDataFrame(rows, ", ".join(f"{c} double" for c in values) + ", seg string")


def test_an_injected_shift_flags_its_feature_only_and_psi_agrees_with_the_slow_one(spark):
    rng = np.random.default_rng(11)
    n = 3000

    def draw():
        return {"data_gb": rng.lognormal(2, 0.8, n), "voice": rng.normal(300, 80, n),
                "sms": rng.exponential(40, n)}, rng.choice(["youth", "family", "senior"], n)
    ref_values, ref_seg = draw()
    cur_values, cur_seg = draw()
    shifted = rng.random(n) < 0.4  # 40% of subscribers use four times the data
    cur_values["data_gb"] = np.where(shifted, 4 * cur_values["data_gb"], cur_values["data_gb"])
    got = drift.column_psi(frame(spark, cur_values, cur_seg), frame(spark, ref_values, ref_seg),
                           ["data_gb", "voice", "sms"], ["seg"], BINS)
    assert drift.alerts(got, 0.2) == ["data_gb"]
    assert max(got["voice"], got["sms"], got["seg"]) < 0.05
    for c in ("data_gb", "voice", "sms"):  # approximate quantiles: close to the exact binning
        assert got[c] == pytest.approx(slow_psi(ref_values[c], cur_values[c]), abs=0.01)

