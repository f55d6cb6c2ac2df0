"""The run report's words and its offers section (telcorec/evaluation/report.py draws the figures).

Every table and figure of the report gets a few sentences in plain language: what the metric
means, what each model, baseline and protocol is. The offers section says what reached (or would
have reached) subscribers: the quality gate's verdict, shown first and in red when it refused,
the offer mix by segment and by experiment arm, what each business rule removed and the input
rows rejected by reason. Its tables are Spark aggregates (offers x segments, offers x arms,
tables x reasons): nothing per subscriber reaches the driver.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

import pandas as pd
from pyspark.sql import DataFrame

from telcorec.core.columns import Col
from telcorec.core.exceptions import GateRejected

REFUSED_PREFIX = "quality gate refused to publish: "

METRICS = {
    "precision": "precision@K: the share of the K offers shown that are a held-out plan "
                 "(with one held-out plan per subscriber it is at most 1/K).",
    "recall": "recall@K: the share of a subscriber's held-out plans found in their top K.",
    "ndcg": "ndcg@K: like recall, but a hit at rank 1 counts more than one at rank K "
            "(1 = the held-out plan always first).",
    "hit_rate": "hit_rate@K: the share of subscribers with at least one held-out plan in "
                "their top K.",
    "map": "map@K: mean average precision, the precision at the rank of each hit, averaged.",
    "auc": "auc: the chance that a held-out plan is ranked above a plan the subscriber does "
           "not hold (0.5 = a coin toss, 1 = always above).",
    "coverage": "coverage@K: the share of the catalogue that appears in anyone's top K "
                "(low: everyone is offered the same few plans).",
}
MODELS = {
    "lightfm": "lightfm_*: LightFM models named by their loss (warp, bpr, warpkos, logistic; "
               "deep: 128 components), measured as served, cold-start routing by tenure "
               "included.",
    "ncf": "ncf_*: neural collaborative filtering (GMF, MLP and NeuMF built from both).",
    "ensemble": "ensemble_*: the member models' scores combined, by weights (weighted) or by "
                "reciprocal rank fusion (rrf).",
    "content": "content: the cold-start content rules alone (segment, data and price fit), "
               "what a brand-new subscriber is offered.",
    "popularity": "popularity: the most-held plans, the same list for everyone. A model must "
                  "beat it for the quality gate to publish.",
    "random": "random: a random order, the floor.",
    "oracle": "oracle: ranks by the generator's hidden true preferences (generated data only), "
              "the ceiling no model can pass.",
}
FULL_PROTOCOL = ("Protocol full: every model ranks the whole catalogue for every subscriber, "
                 "and is scored on the plans held out of training (the latest plan taken, or "
                 "one held service per customer). All subscribers, K = {k}.")
CURVES = ("Each metric at every cut-off K of evaluation.ks, protocol full: precision usually "
          "falls and recall rises as K grows, so compare models at the same K. With few K "
          "values the bars are grouped by model, one bar per K.")
SEGMENTS = ("precision@{k} per subscriber segment (subscriber_features.segment): where a "
            "model helps and where it does not. A small segment's bar moves a lot by chance.")
COHORTS = ("warm: subscribers whose held-out plan follows earlier plans in training; "
           "cold_start: new subscribers without history, scored against the plan they take "
           "first. history_0, history_1-2, history_3+: warm subscribers by the number of "
           "offers they held in training; a history-aware model should gain most with the "
           "longest histories.")
TRAINING = ("{label} of each LightFM shard, checked every few epochs on subscribers kept out of "
            "training; the circled point is the epoch early stopping kept. A curve still "
            "rising at its last point means more epochs could help.")
SAMPLED = ("Protocol {protocol}: each held-out plan is ranked among {n} plans the subscriber "
           "never held, drawn once and shared by every model (how the NCF paper and much "
           "published work report results). hr@K: the held-out plan is in the top K of those "
           "{n1}; ndcg@K: the same, weighted by its rank. Easier than the full ranking, and "
           "the same as it when the catalogue has no more than {n} plans a subscriber does not "
           "hold (the demo's 60 plans, the IBM table's 13).")
SAMPLED_FILE = ("Protocol {protocol}: each held-out item is ranked among the candidates the "
                "negatives file (inputs.interactions.negatives) lists for its user, the same for "
                "every model; users the file lists nothing for are left out. hr@K: the held-out "
                "item is in the top K of them and itself; ndcg@K: the same, weighted by its rank.")
MIX_SEGMENT = ("Rows published per offer (every rank) by subscriber segment: which plans each "
               "segment is offered. An offer stopped at the same total in every run hit the "
               "campaign cap (rules.campaign_cap).")
MIX_ARM = ("Rows published per offer by experiment arm: the model arm gets the model's ranking, "
           "the control arm the most-held plans under the same rules (the baseline the "
           "experiment measures the model against).")
RULES = ("What the business rules removed before ranking, in pairs (subscriber x offer) "
         "counted by the first rule that removed each; campaign_cap counts candidate rows "
         "beyond the cap; eligible_pairs is what was left to rank, subscribers_without_offers "
         "those left nothing.")
REJECTS = "Input rows refused at ingest, by table and reason (read = accepted + rejected)."
FIRST = "Subscribers per experiment arm (their rank-1 rows)."
REFUSED_ROWS = ("Rows per offer the scoring pass produced and the gate refused: nothing of this "
                "reached the offers table.")
STYLE = """.verdict{padding:.6em 1em;border-radius:4px;font-weight:bold;margin:1em 0}
.refused{background:#fde8e8;color:#b00020;border:2px solid #b00020}
.passed{background:#e8f5e9;color:#1b5e20;border:1px solid #1b5e20}
.pending{background:#f3f3f3;color:#555;border:1px solid #999}
.note{color:#444;font-size:.92em;max-width:60em}.warn{color:#8a4b00}"""


@dataclass(frozen=True)
class OffersOutcome:
    """What the score stage did with the run: published (or refused, with the reasons), the
    gate's row check, the rules' removals and the small Spark aggregates the section shows."""
    published: bool
    reasons: tuple[str, ...] = ()
    rows_line: str = ""
    removed: dict[str, int] = field(default_factory=dict)
    first_by_arm: dict[str, int] = field(default_factory=dict)
    rows_by_offer: dict[str, int] = field(default_factory=dict)  # refused: the judged pass's
    by_segment: pd.DataFrame | None = None   # offers x segments, rows
    by_arm: pd.DataFrame | None = None       # offers x arms, rows
    rejects: pd.DataFrame | None = None      # source_table, reason, rows


def reasons_of(refusal: GateRejected) -> tuple[str, ...]:
    """The gate's reasons, one per failed check."""
    verdict = getattr(refusal, "verdict", None)
    if verdict is not None:
        return tuple(verdict.reasons)
    text = str(refusal)
    text = text[len(REFUSED_PREFIX):] if text.startswith(REFUSED_PREFIX) else text
    return tuple(r.strip() for r in text.split("; ") if r.strip())


def offer_mix(offers: DataFrame, features: DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(offers x segments, offers x arms) row counts of the published `offers`: two grouped
    aggregations, offers x segments and offers x arms rows come back."""
    segments = features.select(Col.SUBSCRIBER_ID, Col.SEGMENT)
    by_segment = (offers.join(segments, on=Col.SUBSCRIBER_ID, how="left")
                  .groupBy(Col.OFFER_ID, Col.SEGMENT).count().toPandas())
    by_arm = offers.groupBy(Col.OFFER_ID, Col.ARM).count().toPandas()
    return _pivot(by_segment, Col.SEGMENT), _pivot(by_arm, Col.ARM)


def _pivot(counts: pd.DataFrame, column: str) -> pd.DataFrame:
    table = counts.assign(**{column: counts[column].fillna("(none)")}).pivot_table(
        index=Col.OFFER_ID, columns=column, values="count", aggfunc="sum", fill_value=0)
    table["total"] = table.sum(axis=1)
    return table.sort_values("total", ascending=False).astype(int)


def rejects_by_reason(rejects: DataFrame) -> pd.DataFrame:
    """Rejected input rows per (source table, reason) of the run date: one aggregation."""
    return (rejects.groupBy(Col.SOURCE_TABLE, Col.REASON).count()
            .withColumnRenamed("count", "rows").orderBy(Col.SOURCE_TABLE, Col.REASON).toPandas())


def note(text: str, cls: str = "note") -> str:
    return f"<p class='{cls}'>{html.escape(text)}</p>\n"


def metrics_note(metrics: list[str]) -> str:
    return "".join(note(METRICS[m]) for m in METRICS if m in metrics)


def models_note(models) -> str:
    """One sentence per kind of model or baseline present in the report."""
    present = []
    for kind in MODELS:
        if any(m == kind or m.startswith(f"{kind}_") for m in models):
            present.append(MODELS[kind])
    return "".join(note(t) for t in present)


def epoch_notes(curves, epochs_key: str = "train.lightfm.epochs") -> str:
    """A warning per shard model whose kept epoch is its last checked one."""
    out = []
    for c in curves:
        if c.points and c.best_epoch == max(e for e, _ in c.points):
            key = "train.deep.epochs" if c.model == "lightfm_deep" else epochs_key
            out.append(note(f"{c.model} shard {c.shard} kept its last checked epoch "
                            f"({c.best_epoch}): its validation curve may still be rising. "
                            f"Try more epochs ({key}).", "note warn"))
    return "".join(out)


def verdict_html(outcome: OffersOutcome | None) -> str:
    """The gate's verdict, for the top of the report."""
    if outcome is None:
        return ("<div class='verdict pending'>Quality gate: not judged yet when this report "
                "was written (after evaluation, before scoring). The pipeline rewrites the "
                "report with the verdict once the score stage has run.</div>\n")
    if outcome.published:
        text = ("Quality gate: passed, offers published: " + outcome.rows_line).rstrip(": ")
        return f"<div class='verdict passed'>{html.escape(text)}</div>\n"
    items = "".join(f"<li>{html.escape(r)}</li>" for r in outcome.reasons)
    line = f"<br>{html.escape(outcome.rows_line)}" if outcome.rows_line else ""
    return ("<div class='verdict refused'>Quality gate: refused, offers not published (the "
            "offers table keeps its last published rows; the run is recorded as rejected in "
            f"runs). Why:<ul>{items}</ul>{line}</div>\n")


def _counts(table: pd.DataFrame) -> str:
    """Counts with thousands separators, the index and column names dropped."""
    table = table.rename_axis(index=[None] * table.index.nlevels, columns=None)
    return table.map(lambda v: f"{v:,.0f}" if pd.notna(v) else "–").to_html(border=0)


def _series(values: dict[str, int], name: str) -> str:
    return _counts(pd.DataFrame({name: pd.Series(values, dtype="int64")}))


def offers_html(outcome: OffersOutcome | None) -> str:
    """The offers section's body: verdict, mix, rules, arms, rejects, each with its note."""
    parts = [verdict_html(outcome)]
    if outcome is None:
        return "".join(parts)
    if outcome.by_segment is not None and not outcome.by_segment.empty:
        parts += ["<h3>Offer mix by segment</h3>", _counts(outcome.by_segment),
                  note(MIX_SEGMENT)]
    if outcome.by_arm is not None and not outcome.by_arm.empty:
        parts += ["<h3>Offer mix by experiment arm</h3>", _counts(outcome.by_arm), note(MIX_ARM)]
    if outcome.rows_by_offer:
        parts += ["<h3>Rows per offer in the refused pass (not published)</h3>",
                  _series(outcome.rows_by_offer, "rows"), note(REFUSED_ROWS)]
    if outcome.first_by_arm:
        parts += ["<h3>Subscribers per arm</h3>", _series(outcome.first_by_arm, "subscribers"),
                  note(FIRST)]
    if outcome.removed:
        parts += ["<h3>Removed by each rule</h3>", _series(outcome.removed, "removed"),
                  note(RULES)]
    if outcome.rejects is not None:
        rejects = (_counts(outcome.rejects.set_index([Col.SOURCE_TABLE, Col.REASON]))
                   if not outcome.rejects.empty else "<p>No input row was rejected.</p>")
        parts += ["<h3>Rejected input rows by reason</h3>", rejects, note(REJECTS)]
    return "".join(parts)
