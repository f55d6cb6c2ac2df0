"""The HTML run report: one self-contained file per run date, beside the `metrics` table.

Everything in it comes from two small sources: this run's rows of `metrics` (models x
protocols x metrics x k x segments: hundreds of rows, read on the driver) and the validation
histories the LightFM shard artifacts record while training. `render` works on plain pandas, so
the report can be rebuilt or tested without Spark; `write` is the edge that reads and writes.

Figures are drawn with matplotlib's Agg canvas (no display, no pyplot global state) and
embedded as base64 PNG, so the file can be mailed or archived on its own.
"""
from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from telcorec.core.columns import Cohort, Col
from telcorec.core.config import Config
from telcorec.evaluation import report_sections as words
from telcorec.evaluation.report_sections import OffersOutcome, note
from telcorec.evaluation.sampled_protocol import FILE_PROTOCOL
from telcorec.io import artifacts, metrics_store, runs
from telcorec.io.artifacts import MANIFEST
from telcorec.io.warehouse import Warehouse
from telcorec.models.scoring import model_names

log = logging.getLogger(__name__)
REPORT = "report.html"
FULL = "full"
HEADLINE_K = 5
HEADLINE = ("precision", "recall", "ndcg", "auc", "coverage")
CURVES = ("precision", "recall", "ndcg", "hit_rate", "map")
SEGMENT_METRIC = ("precision", HEADLINE_K)
COHORT_METRICS = (("precision", HEADLINE_K), ("recall", HEADLINE_K), ("ndcg", HEADLINE_K))
BASELINES = ("content", "popularity", "random", "oracle")  # drawn dashed, listed last
MAX_K_FOR_BARS = 3  # up to this many K values, metric against K is bars grouped by model
HISTORY_GROUPS = ("history_0", "history_1-2", "history_3+")  # evaluation.metrics.history_groups
NOT_SEGMENTS = (metrics_store.ALL_SEGMENTS, Cohort.WARM, Cohort.COLD_START, *HISTORY_GROUPS)


@dataclass(frozen=True)
class TrainingCurve:
    """One shard model's validation metric per checked epoch, and the epoch it kept."""
    model: str
    shard: int
    points: list[tuple[int, float]]
    best_epoch: int


def _label(metric: str, k: int) -> str:
    return f"{metric}@{k}" if k else metric


def model_order(models) -> list[str]:
    """Trained models alphabetically, then the baselines in a fixed order."""
    names = set(models)
    return sorted(names - set(BASELINES)) + [b for b in BASELINES if b in names]


def _select(metrics: pd.DataFrame, protocol: str, segments=(metrics_store.ALL_SEGMENTS,)):
    return metrics[(metrics[Col.PROTOCOL] == protocol) & metrics[Col.SEGMENT].isin(segments)]


def _by_label(rows: pd.DataFrame) -> pd.DataFrame:
    """Models x "metric@k" columns (AUC and MRR have no cutoff: just the metric)."""
    labels = [_label(m, k) for m, k in zip(rows[Col.METRIC], rows[Col.K])]
    return rows.assign(label=labels).pivot_table(index=Col.MODEL, columns="label",
                                                 values=Col.VALUE, aggfunc="first")


def headline_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Models x headline metrics at K=5, full protocol, all subscribers."""
    wanted = [_label(m, 0 if m == "auc" else HEADLINE_K) for m in HEADLINE]
    table = _by_label(_select(metrics, FULL))
    return table.reindex(index=model_order(table.index),
                         columns=[c for c in wanted if c in table.columns])


def sampled_table(metrics: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """Models x (hr@k, ndcg@k) of one sampled-candidates protocol, all subscribers."""
    table = _by_label(_select(metrics, protocol))
    return table.reindex(index=model_order(table.index), columns=sorted(table.columns))


def sampled_protocols(metrics: pd.DataFrame) -> list[str]:
    return sorted(p for p in metrics[Col.PROTOCOL].unique() if p.startswith("sampled"))


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)  # Agg: renders to memory, needs no display
    return figure


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _grouped_bars(ax: Axes, table: pd.DataFrame, ylabel: str) -> None:
    """One group of bars per row of `table`, one bar per column."""
    width = 0.8 / max(len(table.columns), 1)
    x = np.arange(len(table.index))
    for i, column in enumerate(table.columns):
        ax.bar(x + i * width - 0.4 + width / 2, table[column].to_numpy(dtype=float), width,
               label=str(column))
    ax.set_xticks(x, [str(v) for v in table.index], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside: bars stay visible


def curves_figure(metrics: pd.DataFrame) -> Figure | None:
    """Metric against K, full protocol: with a few K values one group of bars per model (a
    two-point line says little), else one line per model (baselines dashed)."""
    rows = _select(metrics, FULL)
    rows = rows[rows[Col.METRIC].isin(CURVES) & (rows[Col.K] > 0)]
    present = [m for m in CURVES if m in set(rows[Col.METRIC])]
    if not present:
        return None
    bars = rows[Col.K].nunique() <= MAX_K_FOR_BARS
    figure = _figure(3.2 * len(present) + (1.0 if bars else 0.0), 3.4)
    axes = figure.subplots(1, len(present), squeeze=False)[0]
    for ax, metric in zip(axes, present):
        mine = rows[rows[Col.METRIC] == metric]
        if bars:
            table = mine.pivot_table(index=Col.MODEL, columns=Col.K, values=Col.VALUE,
                                     aggfunc="first")
            table = table.reindex(model_order(table.index)).rename(columns=lambda k: f"K={k}")
            _grouped_bars(ax, table, metric)
            ax.get_legend().remove()
        else:
            for model in model_order(mine[Col.MODEL]):
                line = mine[mine[Col.MODEL] == model].sort_values(Col.K)
                ax.plot(line[Col.K], line[Col.VALUE], marker="o", label=model,
                        linestyle="--" if model in BASELINES else "-")
            ax.set_xlabel("K")
        ax.set_title(metric)
    axes[-1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return figure


def segments_figure(metrics: pd.DataFrame) -> Figure | None:
    """precision@5 per subscriber segment, one bar per model."""
    metric, k = SEGMENT_METRIC
    rows = metrics[(metrics[Col.PROTOCOL] == FULL) & ~metrics[Col.SEGMENT].isin(NOT_SEGMENTS)
                   & (metrics[Col.METRIC] == metric) & (metrics[Col.K] == k)]
    if rows.empty:
        return None
    table = rows.pivot_table(index=Col.SEGMENT, columns=Col.MODEL, values=Col.VALUE,
                             aggfunc="first")
    figure = _figure(10, 3.8)
    _grouped_bars(figure.subplots(), table[model_order(table.columns)], _label(metric, k))
    return figure


def cohorts_figure(metrics: pd.DataFrame) -> Figure | None:
    """Cold-start against warm subscribers, and subscribers by the length of their history
    (offers held in training: 0, 1-2, 3+), per model, for a few metrics at K=5."""
    rows = _select(metrics, FULL, (Cohort.WARM, Cohort.COLD_START, *HISTORY_GROUPS))
    panels = [(m, k) for m, k in COHORT_METRICS
              if ((rows[Col.METRIC] == m) & (rows[Col.K] == k)).any()]
    if not panels:
        return None
    figure = _figure(4.2 * len(panels), 3.8)
    for ax, (metric, k) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
        mine = rows[(rows[Col.METRIC] == metric) & (rows[Col.K] == k)]
        table = mine.pivot_table(index=Col.MODEL, columns=Col.SEGMENT, values=Col.VALUE,
                                 aggfunc="first")
        _grouped_bars(ax, table.reindex(model_order(table.index)), _label(metric, k))
    return figure


def sampled_figure(metrics: pd.DataFrame, protocol: str) -> Figure:
    """HR and NDCG at each K of one sampled protocol, one bar per model."""
    table = sampled_table(metrics, protocol)
    figure = _figure(10, 3.8)
    _grouped_bars(figure.subplots(), table, protocol)
    return figure


def training_figure(curves: list[TrainingCurve], label: str) -> Figure | None:
    """One panel per model: the validation metric per checked epoch, one line per shard,
    the kept (best) epoch circled."""
    models = sorted({c.model for c in curves if c.points})
    if not models:
        return None
    columns = min(3, len(models))
    rows = -(-len(models) // columns)
    figure = _figure(3.6 * columns, 3.0 * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, model in zip(axes, models):
        mine = [c for c in curves if c.model == model and c.points]
        for curve in mine:
            epochs, values = zip(*curve.points)
            (line,) = ax.plot(epochs, values, marker=".", label=f"shard {curve.shard}")
            best = dict(curve.points).get(curve.best_epoch)
            if best is not None:
                ax.plot([curve.best_epoch], [best], "o", markerfacecolor="none",
                        markersize=10, color=line.get_color())
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label, fontsize=8)
        if len(mine) <= 8:  # beyond that a legend hides the lines
            ax.legend(fontsize=7)
    for ax in axes[len(models):]:
        ax.set_visible(False)
    return figure


def _section(title: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2>\n{body}\n"


def _image(figure: Figure | None, missing: str) -> str:
    if figure is None:
        return f"<p class='missing'>{html.escape(missing)}</p>"
    return f"<img alt='figure' src='data:image/png;base64,{_png(figure)}'>"


def _table(table: pd.DataFrame) -> str:
    return table.rename_axis(index=None, columns=None).to_html(
        float_format=lambda v: f"{v:.4f}", na_rep="–", border=0)


STYLE = """body{font-family:sans-serif;margin:2em;max-width:1100px}
table{border-collapse:collapse}td,th{padding:2px 10px;text-align:right}
tr:nth-child(even){background:#f3f3f3}img{max-width:100%}.missing{color:#888}
""" + words.STYLE


def render(metrics: pd.DataFrame, curves: list[TrainingCurve], title: str,
           training_label: str = "validation precision@5",
           outcome: OffersOutcome | None = None) -> str:
    """The whole report as one HTML string from `metrics` rows (Col.MODEL, PROTOCOL, METRIC,
    K, SEGMENT, VALUE), the LightFM shards' training curves and what scoring did with the run
    (`outcome`; None: not scored yet). Under every table and figure, what it shows."""
    headline = headline_table(metrics)
    in_curves = sorted(set(_select(metrics, FULL)[Col.METRIC]) & set(CURVES))
    parts = [_section(f"Headline metrics (protocol {FULL}, all subscribers, K={HEADLINE_K})",
                      _table(headline) + note(words.FULL_PROTOCOL.format(k=HEADLINE_K))
                      + words.metrics_note([c.split("@")[0] for c in headline.columns])
                      + words.models_note(headline.index)),
             _section("Metric against K", _image(curves_figure(metrics), "no metrics at K")
                      + note(words.CURVES) + words.metrics_note(
                          [m for m in in_curves if m not in HEADLINE])),
             _section("Per segment", _image(segments_figure(metrics), "no per-segment rows")
                      + note(words.SEGMENTS.format(k=HEADLINE_K))),
             _section("Cold start against warm subscribers, and by history length (offers held)",
                      _image(cohorts_figure(metrics), "no cohort rows") + note(words.COHORTS)),
             _section("Training curves per shard (LightFM)",
                      _image(training_figure(curves, training_label),
                             "no validation history (early stopping off?)")
                      + note(words.TRAINING.format(label=training_label))
                      + words.epoch_notes(curves))]
    for protocol in sampled_protocols(metrics):
        if protocol == FILE_PROTOCOL:  # a negatives file's candidates, however many it gives
            text = words.SAMPLED_FILE.format(protocol=protocol)
        else:
            n = int(protocol.removeprefix("sampled") or 0)
            text = words.SAMPLED.format(protocol=protocol, n=n, n1=n + 1)
        parts.append(_section(f"Sampled candidates: protocol {protocol}",
                              _table(sampled_table(metrics, protocol))
                              + _image(sampled_figure(metrics, protocol), "") + note(text)))
    parts.append(_section("Offers", words.offers_html(outcome)))
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
            + words.verdict_html(outcome) + "".join(parts) + "</body></html>\n")


def load_training_curves(models_root: Path, models: list[str]) -> list[TrainingCurve]:
    """Validation histories of every shard of the named LightFM models (others are skipped:
    ensembles have no training, NCF models keep their own history)."""
    curves = []
    for name in models:
        manifest_path = models_root / name / MANIFEST
        if not manifest_path.is_file():
            continue
        manifest = json.loads(manifest_path.read_text())
        for shard, sub in manifest["shard_paths"].items():
            meta = json.loads((models_root / name / sub / artifacts.META).read_text())
            curves.append(TrainingCurve(name, int(shard), [tuple(p) for p in meta["history"]],
                                        int(meta["best_epoch"])))
    return sorted(curves, key=lambda c: (c.model, c.shard))


def write(wh: Warehouse, cfg: Config, run_date: dt.date,
          outcome: OffersOutcome | None = None) -> Path:
    """Render this run's report to reports/run_date=.../report.html; returns its path.
    `outcome`: what the score stage did (None before scoring: the report says so)."""
    rid = runs.run_id(cfg, run_date)
    rows = metrics_store.run_metrics(wh.table("metrics"), run_date)
    metrics = rows[rows[Col.RUN_ID] == rid]  # a rerun with another config leaves older rows
    curves = load_training_curves(wh.models_root(run_date), model_names(cfg))
    text = render(metrics, curves, f"telcorec run {rid} (run date {run_date.isoformat()})",
                  f"validation precision@{cfg.train.early_stopping.k}", outcome)
    out = wh.report_dir(run_date)
    out.mkdir(parents=True, exist_ok=True)
    partial = out / f".{REPORT}.partial"
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, out / REPORT)  # readers never see a half-written report
    log.info("run report written to %s", out / REPORT)
    return out / REPORT
