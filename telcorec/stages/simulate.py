"""A simulated campaign over days on generated data: a runner, like pipeline.py, that calls
several stages (so it is one of the stage runners tests/test_architecture.py allows).

Each day D: the generator writes the inputs of D, with the plans accepted so far (an acceptor
holds the new plan from the day after the answer) and the answers to the offers of D-1
(telcorec/synthetic/responses.py) as the operator's `responses` file; then, as one attempt
recorded in `runs`: ingest, features, interactions, train (every train.every_days days, else
the newest model is served), evaluate, score, drift and experiment. A day the quality gate
refuses publishes nothing and the campaign goes on.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Iterator

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core import schemas
from telcorec.core.columns import Col, Outcome
from telcorec.core.config import Config
from telcorec.core.exceptions import ConfigError, GateRejected
from telcorec.io import runs
from telcorec.stages import (
    drift,
    evaluate,
    experiment,
    features,
    ingest,
    interactions,
    score,
    train,
)
from telcorec.stages.context import StageContext
from telcorec.synthetic.catalogue import build_catalogue
from telcorec.synthetic.generate import generate
from telcorec.synthetic.responses import responses, with_plan_changes

log = logging.getLogger(__name__)
PLAN_CHANGES = "_sim_plan_changes"  # beside the generated inputs: the plans accepted so far
CHANGES = T.StructType([schemas.SUBSCRIPTIONS[c]
                        for c in (Col.SUBSCRIBER_ID, Col.OFFER_ID, Col.START_DATE)])


def day_inputs(spark: SparkSession, cfg: Config, day: dt.date) -> int:
    """Write the generated inputs of `day` and the answers to yesterday's offers; return the
    answers written."""
    ctx = StageContext.open(spark, cfg, day)
    wh, writer = ctx.wh, ctx.writer
    tables = generate(spark, cfg.generator, cfg.seed, day, kept_days=cfg.ingest.cdr_window_days)
    yesterday = day - dt.timedelta(days=1)
    offers = ctx.history("offers", yesterday, day)
    held = ctx.history("subscriber_features", yesterday, day).select(
        Col.SUBSCRIBER_ID, Col.CURRENT_OFFER_ID)
    answers = responses(offers, tables.truth, held, build_catalogue(cfg.generator.offers, cfg.seed),
                        cfg.simulation, cfg.seed, yesterday)
    n = writer.replace_table(answers, wh.input_table("responses"), schemas.RESPONSES)
    changes_path = wh.input_table(PLAN_CHANGES)
    accepted = writer.read(spark, wh.input_table("responses"), schemas.RESPONSES) \
        .where(F.col(Col.OUTCOME) == Outcome.ACCEPTED) \
        .select(Col.SUBSCRIBER_ID, Col.OFFER_ID,
                F.date_add(Col.RESPONDED_DATE, 1).alias(Col.START_DATE))
    if writer.exists(spark, changes_path):
        earlier = writer.read(spark, changes_path, CHANGES).where(
            F.col(Col.START_DATE) < F.lit(day))  # a rerun of a day replaces its own changes
        accepted = earlier.unionByName(accepted).localCheckpoint()  # read before overwritten
    writer.replace_table(accepted, changes_path, CHANGES)
    changes = writer.read(spark, changes_path, CHANGES)
    for name, schema in schemas.GENERATED.items():
        df = getattr(tables, name)
        if name == "subscriptions":
            df = with_plan_changes(df, changes)
        writer.replace_table(df, wh.input_table(name), schema)
    writer.replace_table(tables.truth, wh.truth_table(), schemas.SUBSCRIBER_TRUTH)
    return n


def day_stages(cfg: Config, index: int, secret: bytes | None) -> dict:
    """The stages of the campaign's `index`-th day up to publishing, in order."""
    stages = {"ingest": lambda s, c, d: ingest.run(s, c, d, secret=secret),
              "features": features.run, "interactions": interactions.run}
    if index % cfg.train.every_days == 0:
        stages["train"] = train.run
    return {**stages, "evaluate": evaluate.run, "score": score.run}


# Run after score whether or not the gate let it publish: the results measure offers published
# on earlier days, and the input drift is there either way. Fatigue (rank-1 offers for a week,
# declines for a month) leaves more subscribers short of K offers each day; on the 7th day of
# the default campaign the offer rows fell to 88% of subscribers x K, under gate.min_row_share.
AFTER_SCORE = {"drift": drift.run, "experiment": experiment.run}


def run(spark: SparkSession, cfg: Config, start: dt.date, days: int, *,
        secret: bytes | None = None) -> Iterator[dict]:
    """Run the campaign day by day, yielding each day's results (stage name -> result)."""
    if cfg.inputs.source != "generated":
        raise ConfigError(f"config key 'inputs.source': simulate needs generated data (it is "
                          f"{cfg.inputs.source!r}); use conf/local.yaml or set it to generated")
    wh = StageContext.open(spark, cfg, start).wh
    for index in range(days):
        day = start + dt.timedelta(days=index)
        answers = day_inputs(spark, cfg, day)
        stages = day_stages(cfg, index, secret)

        seen: dict = {}  # what the stages returned, also when the attempt is rejected

        def every_stage(results: dict, day=day, stages=stages, seen=seen) -> None:
            def after_score() -> None:
                for name, stage in AFTER_SCORE.items():
                    results[name] = seen[name] = stage(spark, cfg, day)
            try:
                for name, stage in stages.items():
                    results[name] = seen[name] = stage(spark, cfg, day)
            except GateRejected:  # recorded as `rejected`, with what came after it
                after_score()
                raise
            after_score()
        results: dict = {}
        try:
            results = runs.recorded(wh.table("runs"), wh.table("metrics"), cfg, day, every_stage,
                                    job="simulate")
        except GateRejected as exc:
            results = {"rejected": str(exc), **seen}
        yield {"day": day, "answers": answers, **results}


def day_line(day: dict, cfg: Config) -> str:
    """One line per day: answers, conversion by arm, uplift with its interval, p-value,
    sample-ratio check and drift alerts."""
    head = f"{day['day']}  answers {day['answers']:>6,}"
    if "rejected" in day:
        head += f"  not published ({day['rejected'].split(': ', 1)[-1]})"
    arms = day.get("experiment", {})
    parts = [f"{a} {r[Col.ACCEPTED]}/{r[Col.OFFERED]}" + (
             f" = {r[Col.CONVERSION]:.2%}" if r[Col.CONVERSION] is not None else "")
             for a, r in arms.items()]
    treated = [r for a, r in arms.items() if a != cfg.experiment.control]
    if treated and treated[0][Col.UPLIFT_ABS] is not None:
        r = treated[0]
        parts.append(f"uplift {r[Col.UPLIFT_ABS]:+.2%} [{r[Col.UPLIFT_ABS_LOW]:+.2%}, "
                     f"{r[Col.UPLIFT_ABS_HIGH]:+.2%}] p={r[Col.P_VALUE]:.3g} "
                     f"srm {'ok' if r[Col.SRM_OK] else 'MISMATCH'}")
    alerts = day.get("drift", {}).get("alerts", [])
    parts.append(f"drift alerts {len(alerts)}" + (f": {', '.join(alerts[:4])}" if alerts else ""))
    return head + "  " + "  ".join(parts)
