"""The run report in a real browser (headless Chromium): it renders, every figure decodes, and
the console stays silent. Skipped where /usr/bin/chromium is not installed."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from helpers import report_browser
from telcorec.core.columns import Col
from telcorec.evaluation import report
from telcorec.evaluation.report_sections import OffersOutcome

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not report_browser.available(),
                                 reason=f"{report_browser.CHROMIUM} not installed "
                                        "(apt-get install -y chromium)")]


def metrics_rows() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = [(model, "full", metric, k, segment, float(rng.uniform()))
            for model in ("lightfm_warp", "popularity", "random")
            for segment in ("all", "adult", "senior", "warm", "cold_start")
            for metric, k in [(m, k) for m in ("precision", "recall", "ndcg") for k in (3, 5)]
            + [("auc", 0)]]
    rows += [(m, "sampled99", "hr", 5, "all", 0.5) for m in ("lightfm_warp", "popularity")]
    return pd.DataFrame(rows, columns=[Col.MODEL, Col.PROTOCOL, Col.METRIC, Col.K,
                                       Col.SEGMENT, Col.VALUE])


def test_the_checker_catches_console_errors_and_broken_figures(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><img src='data:image/png;base64,AAAA'>"
                    "<script>console.error('boom')</script></body></html>")
    problems, _ = report_browser.check(page)
    assert "boom" in problems
    assert "figure 0 did not decode" in problems


def test_a_refused_runs_report_renders_without_console_errors(tmp_path):
    refused = OffersOutcome(published=False, reasons=("only 10 offer rows for 7 subscribers x "
                                                      "K=5, of 35 the rules and the campaign "
                                                      "cap allow",),
                            removed={"current_plan": 7}, first_by_arm={"model": 7},
                            rows_by_offer={"phone": 10},
                            rejects=pd.DataFrame({Col.SOURCE_TABLE: ["cdr"],
                                                  Col.REASON: ["absurd_duration"], "rows": [3]}))
    curves = [report.TrainingCurve("lightfm_warp", 0, [(5, 0.1), (10, 0.2)], 10)]
    page = tmp_path / "report.html"
    page.write_text(report.render(metrics_rows(), curves, f"telcorec run {dt.date(2026, 11, 23)}",
                                  outcome=refused), encoding="utf-8")
    problems, dom = report_browser.check(page)
    assert problems == []
    assert "Quality gate: refused, offers not published" in dom
    assert dom.count("<img") == 5  # metric vs K, segments, cohorts, training, sampled99
