"""The campaign page renders from literal experiment_results and drift rows (no Spark)."""
import datetime as dt

import pandas as pd

from telcorec.core.columns import Col
from telcorec.evaluation import campaign_report

D1, D2 = dt.date(2026, 11, 2), dt.date(2026, 11, 3)


def results_row(day, arm, offered, accepted, uplift=None):
    return {Col.RUN_DATE: day, Col.ARM: arm, Col.SEGMENT: "all", Col.OFFERED: offered,
            Col.CONVERSION: accepted / offered, Col.UPLIFT_ABS: uplift,
            Col.UPLIFT_ABS_LOW: None if uplift is None else uplift - 0.01,
            Col.UPLIFT_ABS_HIGH: None if uplift is None else uplift + 0.01,
            Col.EXPECTED_SHARE: 0.9 if arm == "model" else 0.1,
            Col.OBSERVED_SHARE: offered / 1000, Col.SRM_P_VALUE: 0.61, Col.SRM_OK: True,
            Col.P_VALUE: None if uplift is None else 0.004, Col.MDE: None}


def test_the_page_has_the_figure_the_srm_table_and_only_the_alerts():
    results = pd.DataFrame([results_row(D1, "model", 900, 90, 0.03),
                            results_row(D1, "control", 100, 7),
                            results_row(D2, "model", 905, 120, 0.05),
                            results_row(D2, "control", 95, 7)])
    drift = pd.DataFrame([
        {Col.RUN_DATE: D2, Col.KIND: "feature", Col.FEATURE: "data_gb_month",
         Col.REFERENCE: "previous", Col.VALUE: 0.31, Col.THRESHOLD: 0.2, Col.ALERT: True},
        {Col.RUN_DATE: D2, Col.KIND: "feature", Col.FEATURE: "sms_month",
         Col.REFERENCE: "previous", Col.VALUE: 0.01, Col.THRESHOLD: 0.2, Col.ALERT: False}])
    page = campaign_report.render(results, drift, "campaign", 0.95)
    assert page.count("data:image/png;base64,") == 1
    assert "data_gb_month" in page and "sms_month" not in page
    assert page.count("</tr>") == 1 + 4 + 1 + 1  # SRM: header + 4 rows; alerts: header + 1 row
