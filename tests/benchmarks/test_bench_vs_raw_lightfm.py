"""benchmarks/bench_vs_raw_lightfm.py: telcorec's pipeline path and raw LightFM on the same
generated interactions file, both figures and their ratio written."""
from __future__ import annotations

import importlib
import json
import sys

import pytest

from helpers import REPO

BENCHMARKS = REPO / "benchmarks"


@pytest.mark.slow
def test_bench_runs_both_paths_on_a_generated_file(spark, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = importlib.import_module("bench_vs_raw_lightfm")
    monkeypatch.chdir(BENCHMARKS.parent)
    result = bench.main(["--generate", str(tmp_path / "ratings.csv"), "--users", "80",
                         "--items", "120", "--out-dir", str(tmp_path / "results"),
                         "--set", "train.lightfm.epochs=5"], spark=spark)
    written = json.loads((tmp_path / "results" / "ratings.json").read_text())
    stored = next(iter(written.values()))
    mine = stored["telcorec"]["precision@10"]
    theirs = stored["raw_lightfm_identity"]["precision@10"]
    assert 0 < mine <= 1 and 0 < theirs <= 1
    assert stored["ratio_telcorec_over_raw"] == pytest.approx(mine / theirs, abs=1e-3)
    assert stored["users"] == 80 and stored["test_pairs"] > 0
    assert result["telcorec"] == stored["telcorec"]
    sys.modules.pop("bench_vs_raw_lightfm", None)
