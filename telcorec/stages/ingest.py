"""The ingest stage: read the four input tables and `responses` (telcorec/sources), validate them
and write the accepted rows to the validated tables and every other row to `rejects` with its
reason (read = accepted + rejected, per table); too many rejects of an input table stop the run
before anything is written. Responses never stop it: bad ones are rejects, missing ones mean
"no response"."""
from __future__ import annotations

import datetime as dt
import logging

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from telcorec import sources
from telcorec.core import schemas
from telcorec.core.columns import Col
from telcorec.core.config import Config
from telcorec.core.exceptions import ConfigError, DataError
from telcorec.sources.pseudonymise import private_record, pseudonymise
from telcorec.sources.validate import (
    CONSENT_RECORDED,
    TableCounts,
    accepted_rows,
    count_tagged,
    rejected_rows,
    tag_catalogue,
    tag_cdr,
    tag_responses,
    tag_subscribers,
    tag_subscriptions,
    unparsable_columns,
)
from telcorec.stages.context import StageContext

log = logging.getLogger(__name__)


def read_raw(ctx: StageContext, secret: bytes | None) -> dict[str, DataFrame]:
    """The configured source's four tables and responses, pseudonymised when configured
    (fails closed)."""
    spark, cfg = ctx.spark, ctx.cfg
    raw = {**sources.read_inputs(spark, cfg, ctx.run_date, ctx.wh, ctx.writer),
           "responses": sources.read_responses(spark, cfg, ctx.wh, ctx.writer)}
    if not cfg.pseudonymisation.enabled:
        return raw
    if secret is None:
        raise ConfigError(
            "pseudonymisation.enabled is true but the ingest stage was given no key; the job's "
            "edge must pass telcorec.sources.pseudonymise.resolve_secret(cfg) as secret=")
    return pseudonymise(raw, secret, cfg.pseudonymisation.event_ids)

def run(spark: SparkSession, cfg: Config, run_date: dt.date, *,
        secret: bytes | None = None) -> list[TableCounts]:
    """Validate the configured inputs for one run date. `secret` is the pseudonymisation key
    (resolved at the job's edge; required when pseudonymisation is on)."""
    ctx = StageContext.open(spark, cfg, run_date)
    wh, writer = ctx.wh, ctx.writer
    raw = read_raw(ctx, secret)
    results, tagged_all = [], []

    def settle(name: str, tagged: DataFrame, blocking: bool = True) -> DataFrame:
        tagged = tagged.persist(StorageLevel.MEMORY_AND_DISK)
        tagged_all.append(tagged)
        counts = count_tagged(tagged, name)
        share = counts.rejected / counts.read if counts.read else 0.0
        if share > cfg.ingest.max_reject_share and not blocking:
            log.warning("ingest %s: %.1f%% of %d rows rejected %s; they are in `rejects`",
                        name, 100 * share, counts.read, counts.rejected_by_reason)
        elif share > cfg.ingest.max_reject_share:
            raise DataError(
                f"{counts.rejected} of {counts.read} rows of '{name}' ({share:.1%}) were rejected, "
                f"above ingest.max_reject_share={cfg.ingest.max_reject_share}: "
                f"{counts.rejected_by_reason}.{unparsable_columns(tagged, name, counts)} "
                "Fix the source or raise the limit; nothing was written.")
        if counts.flagged.get(CONSENT_RECORDED) == 0 and counts.accepted:
            log.warning("ingest %s: the source has no consent data (no %s value): every "
                        "subscriber counts as not opted out of marketing", name,
                        Col.MARKETING_OPT_OUT)
        results.append(counts)
        log.info("ingest %s: read %d, accepted %d, rejected %d %s %s", name, counts.read,
                 counts.accepted, counts.rejected, counts.rejected_by_reason, counts.flagged)
        return tagged

    subs = settle("subscribers", tag_subscribers(raw["subscribers"]))
    cat = settle("catalogue", tag_catalogue(raw["catalogue"]))
    sub_ids = subs.filter(F.col(Col.REASON).isNull()).select(Col.SUBSCRIBER_ID)
    offer_ids = cat.filter(F.col(Col.REASON).isNull()).select(Col.OFFER_ID)
    hist = settle("subscriptions", tag_subscriptions(raw["subscriptions"], sub_ids, offer_ids,
                                                     run_date))
    cdr = settle("cdr", tag_cdr(raw["cdr"], sub_ids, run_date, cfg.ingest.cdr_window_days))
    answers = settle("responses", tag_responses(
        raw["responses"], sub_ids, ctx.history("offers", None, run_date),
        ctx.history("responses", None, run_date), run_date), blocking=False)

    rejects = None
    for name, tagged in (("subscribers", subs), ("catalogue", cat), ("subscriptions", hist),
                         ("cdr", cdr), ("responses", answers)):
        schema = schemas.full(name)
        writer.replace_partition(accepted_rows(tagged, schema, run_date), wh.table(name),
                                 schemas.accepted(name), run_date)
        personal = cfg.pseudonymisation.enabled and Col.SUBSCRIBER_ID in schema.fieldNames()
        private = private_record(schema, cfg.pseudonymisation.event_ids) if personal else None
        part = rejected_rows(tagged, name, schema, run_date, private)
        rejects = part if rejects is None else rejects.unionByName(part)
    writer.replace_partition(rejects, wh.table("rejects"), schemas.REJECTS, run_date)
    for tagged in tagged_all:
        tagged.unpersist()
    return results
