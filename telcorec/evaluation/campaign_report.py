"""The campaign page of the HTML report: conversion by arm over the run dates with confidence
bands, the model arm's uplift over control with its interval, the sample-ratio check and the
drift alerts, from `experiment_results` and `drift` (small tables: a row per arm x segment or
per feature and day). `render` works on pandas; `write` is the edge that reads and writes."""
from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from telcorec.core.columns import Col
from telcorec.core.config import Config
from telcorec.evaluation.experiment import ALL
from telcorec.evaluation.report import STYLE, _figure, _image, _section, _table
from telcorec.io import delta_rs
from telcorec.io.warehouse import Warehouse

CAMPAIGN = "campaign.html"


def conversion_figure(results: pd.DataFrame, confidence: float) -> Figure | None:
    """Conversion per arm and run date (segment all) with its Wald band, and the uplift of
    each treated arm with its interval."""
    rows = results[results[Col.SEGMENT] == ALL].sort_values(Col.RUN_DATE)
    if rows.empty:
        return None
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    figure = _figure(10, 3.5)
    left, right = figure.subplots(1, 2)
    for arm, part in rows.groupby(Col.ARM):
        p, n = part[Col.CONVERSION].to_numpy(float), part[Col.OFFERED].to_numpy(float)
        half = z * np.sqrt(np.nan_to_num(p * (1 - p)) / np.maximum(n, 1))
        left.plot(part[Col.RUN_DATE], p, marker="o", label=str(arm))
        left.fill_between(part[Col.RUN_DATE], p - half, p + half, alpha=0.2)
        if part[Col.UPLIFT_ABS].notna().any():
            right.plot(part[Col.RUN_DATE], part[Col.UPLIFT_ABS], marker="o", label=str(arm))
            right.fill_between(part[Col.RUN_DATE], part[Col.UPLIFT_ABS_LOW].astype(float),
                               part[Col.UPLIFT_ABS_HIGH].astype(float), alpha=0.2)
    right.axhline(0, color="grey", linewidth=0.8)
    left.set_title("conversion (accepted / offered)", fontsize=9)
    right.set_title(f"uplift over control, {confidence:.0%} interval", fontsize=9)
    for ax in (left, right):
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        if ax.get_legend_handles_labels()[0]:  # no uplift line when no arm has a control
            ax.legend(fontsize=7)
    return figure


def render(results: pd.DataFrame, drift: pd.DataFrame, title: str, confidence: float) -> str:
    overall = results[results[Col.SEGMENT] == ALL].sort_values([Col.RUN_DATE, Col.ARM])
    srm = overall[[Col.RUN_DATE, Col.ARM, Col.OFFERED, Col.EXPECTED_SHARE, Col.OBSERVED_SHARE,
                   Col.SRM_P_VALUE, Col.SRM_OK, Col.P_VALUE, Col.MDE]]
    alerts = drift[drift[Col.ALERT]].sort_values([Col.RUN_DATE, Col.VALUE], ascending=[True, False])
    body = [_section("Conversion and uplift by day", _image(
                conversion_figure(results, confidence), "no experiment results yet")),
            _section("Sample-ratio check (offered subscribers per arm)",
                     _table(srm.set_index(Col.RUN_DATE))),
            _section("Drift alerts", _table(alerts[[Col.RUN_DATE, Col.KIND, Col.FEATURE,
                                                    Col.REFERENCE, Col.VALUE, Col.THRESHOLD]]
                                            .set_index(Col.RUN_DATE))
                     if not alerts.empty else "<p class='missing'>none</p>")]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            + "".join(body) + "</body></html>")


def _rows(path: Path, run_date: dt.date) -> pd.DataFrame | None:
    if not delta_rs.is_delta_table(path):
        return None
    frame = delta_rs.read_small(path).to_pandas()  # a few rows per run date
    frame[Col.RUN_DATE] = pd.to_datetime(frame[Col.RUN_DATE]).dt.date
    return frame[frame[Col.RUN_DATE] <= run_date]


def write(wh: Warehouse, cfg: Config, run_date: dt.date) -> Path | None:
    """reports/run_date=.../campaign.html from every run date up to this one; None before the
    first experiment results."""
    results = _rows(wh.table("experiment_results"), run_date)
    if results is None:
        return None
    drift = _rows(wh.table("drift"), run_date)
    drift = drift if drift is not None else pd.DataFrame(
        columns=[Col.RUN_DATE, Col.KIND, Col.FEATURE, Col.REFERENCE, Col.VALUE, Col.THRESHOLD,
                 Col.ALERT]).astype({Col.ALERT: bool})
    target = wh.report_dir(run_date) / CAMPAIGN
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(results, drift, f"telcorec campaign up to {run_date}",
                             cfg.experiment.confidence))
    return target
