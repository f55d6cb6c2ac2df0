"""The input side and personal data: schema drift, malformed CDR lines, a canary PII sweep over
everything a run leaves behind, pseudonymisation and marketing consent. Every test prints its
figure."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from pyspark.sql import functions as F

from helpers import REPO as ROOT
from telcorec import sources
from telcorec.core import config, schemas
from telcorec.core.columns import Col
from telcorec.core.exceptions import ConfigError, DataError, SchemaError
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter
from telcorec.offers import rules, selection
from telcorec.sources import pseudonymise as pseudo
from telcorec.sources import validate
from telcorec.stages import ingest as ingest_stage
from telcorec.synthetic.generate import generate

RUN = dt.date(2026, 11, 23)


def read_inputs(spark, cfg):
    """The configured source's four tables, read as the ingest stage reads them."""
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    return sources.read_inputs(spark, cfg, RUN, wh, DeltaRsWriter())


TABLES = ("subscribers", "catalogue", "subscriptions", "cdr")
KEY = b"canary-test-key-0123456789abcdef"


# ---- tiny inputs: the generator's tables as pandas frames -----------------------------------

def generated_frames(spark, subscribers: int, cdr_rows: int | None = None,
                     opt_out_share: float = 0.02) -> dict[str, pd.DataFrame]:
    """The generator's four tables (with its injected bad rows), the CDR cut to `cdr_rows`."""
    gen = config.from_dict({}).generator
    gen = type(gen)(**{**gen.__dict__, "subscribers": subscribers, "bad_row_rate": 0.0,
                       "opt_out_share": opt_out_share})
    tables = generate(spark, gen, 42, RUN, partitions=2)
    frames = {name: getattr(tables, name).toPandas() for name in TABLES[:3]}
    cdr = tables.cdr
    if cdr_rows is not None:
        cdr = cdr.orderBy(Col.EVENT_ID).limit(cdr_rows)
    frames["cdr"] = cdr.toPandas()
    return frames


def operator_config(tmp_path, src: Path, fmt: str, **ingest_keys) -> config.Config:
    """inputs.source operator over `src`/<table>.<fmt>, identity column mapping."""
    data = config.load(str(ROOT / "conf/local.yaml")).to_dict()
    data["warehouse"] = str(tmp_path / "wh")
    tables = {name: {"path": f"{name}.{fmt}",
                     "columns": {c: c for c in schemas.full(name).fieldNames()
                                 if c in COLUMNS_WRITTEN[name]}}
              for name in TABLES}
    data["inputs"] = {**data["inputs"], "source": "operator",
                      "operator": {**data["inputs"]["operator"], "format": fmt,
                                   "path": str(src), **tables}}
    data["ingest"] = {**data["ingest"], "max_reject_share": 1.0, **ingest_keys}
    return config.from_dict(data)


# columns the tiny sources carry: the contract plus the consent flag the generator simulates
COLUMNS_WRITTEN = {name: schemas.GENERATED[name].fieldNames() for name in TABLES}


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    out = frame.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%d %H:%M:%S")
    out.to_csv(path, index=False)


def write_parquet(frame: pd.DataFrame, path: Path, schema: pa.Schema | None = None) -> None:
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), path)


# ---- schema drift on every input table ---------------------------------------------

# the column each drift kind touches, per table (a required one, and a numeric/date one)
DRIFT_COLUMN = {"subscribers": Col.SEGMENT, "catalogue": Col.PRICE,
                "subscriptions": Col.START_DATE, "cdr": Col.EVENT_TS}
RETYPED_COLUMN = {"subscribers": Col.HOUSEHOLD_SIZE, "catalogue": Col.PRICE,
                  "subscriptions": Col.START_DATE, "cdr": Col.DURATION_S}
KINDS = ("extra", "missing", "renamed", "case_changed", "retyped", "reordered")


def drift(frame: pd.DataFrame, name: str, kind: str) -> tuple[pd.DataFrame, str | None]:
    """The frame with one kind of drift, and the regex its error message must match."""
    col = DRIFT_COLUMN[name]
    if kind == "extra":
        return frame.assign(loyalty_points=1), r"\['loyalty_points'\].*extra_columns: ignore"
    if kind == "missing":
        return frame.drop(columns=[col]), rf"column '{col}' \(contract '{col}', expected \w+\)"
    if kind == "renamed":
        return (frame.rename(columns={col: f"{col}_v2"}),
                rf"column '{col}' .* is missing.*\['{col}_v2'\]")
    if kind == "case_changed":
        return (frame.rename(columns={col: col.upper()}),
                rf"column '{col}' .* is missing; the source has \['{col.upper()}'\], which "
                "differs only in letter case")
    if kind == "retyped":
        typed = RETYPED_COLUMN[name]
        want = schemas.GENERATED[name][typed].dataType.simpleString()
        return (frame.assign(**{typed: frame[typed].astype(str)}),
                rf"column '{typed}' \(contract '{typed}'\) is string, expected {want}")
    assert kind == "reordered"
    return frame[list(reversed(frame.columns))], None


@pytest.fixture(scope="module")
def tiny_frames(spark):
    return generated_frames(spark, subscribers=20, cdr_rows=400)


def write_sources(frames: dict[str, pd.DataFrame], src: Path) -> None:
    src.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        write_parquet(frame, src / f"{name}.parquet", contract_arrow(frame, name))


def contract_arrow(frame: pd.DataFrame, name: str) -> pa.Schema:
    """Arrow types of the contract for the contract columns of `frame`; other columns (the
    drifted ones) keep what pandas gives them, so a column turned to text stays text."""
    from pyspark.sql.pandas.types import to_arrow_type
    contract = {f.name: f.dataType for f in schemas.GENERATED[name].fields}
    inferred = pa.Schema.from_pandas(frame, preserve_index=False)
    fields = []
    for field in inferred:
        keep = field.name not in contract or (pa.types.is_string(field.type)
                                              and contract[field.name] != schemas.S)
        if keep and pa.types.is_timestamp(field.type):  # Spark reads no nanosecond Parquet
            field = pa.field(field.name, pa.timestamp("us"))
        fields.append(field if keep else pa.field(field.name, to_arrow_type(contract[field.name])))
    return pa.schema(fields)


def mapped_rows(spark, cfg, name) -> list:
    """The input table as ingest receives it from the adapter (contract columns, parse flags)."""
    df = read_inputs(spark, cfg)[name]
    return sorted((tuple(r) for r in df.collect()), key=repr)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", TABLES)
def test_schema_drift_is_detected_before_any_write(spark, tmp_path, tiny_frames, name, kind,
                                                   caplog):
    frames = dict(tiny_frames)
    frames[name], message = drift(tiny_frames[name], name, kind)
    write_sources(frames, tmp_path / "src")
    cfg = operator_config(tmp_path, tmp_path / "src", "parquet")
    wh = tmp_path / "wh"
    if message is not None:
        with pytest.raises(SchemaError, match=message) as err:
            ingest_stage.run(spark, cfg, RUN)
        written = sorted(str(p.relative_to(tmp_path)) for p in wh.rglob("*")) if wh.exists() else []
        print(f"drift {name}/{kind}: SchemaError, {len(written)} paths written: {err.value}")
        assert written == [] and not wh.exists()
        return
    # reordered: read by name and logged; ingest judges exactly the rows of the original order
    # (compared on the mapped table, all columns and rows, before tagging: no write needed)
    caplog.set_level("INFO", logger="telcorec.sources.parse")
    got = mapped_rows(spark, cfg, name)
    write_sources(dict(tiny_frames), tmp_path / "plain")
    want = mapped_rows(spark, operator_config(tmp_path, tmp_path / "plain", "parquet"), name)
    logged = [r.getMessage() for r in caplog.records if "another order" in r.getMessage()]
    print(f"drift {name}/reordered: {len(got)} rows read by name, identical to the original "
          f"order: {got == want}; logged: {logged}")
    assert got == want and len(got) > 0
    assert any(f"inputs.operator.{name}" in m for m in logged)
    assert not wh.exists()


def test_extra_columns_ignore_reads_the_wider_source(spark, tmp_path, tiny_frames, caplog):
    frames = dict(tiny_frames)
    frames["cdr"] = tiny_frames["cdr"].assign(cell_id="C1")
    write_sources(frames, tmp_path / "src")
    cfg = operator_config(tmp_path, tmp_path / "src", "parquet", extra_columns="ignore")
    raw = read_inputs(spark, cfg)
    print(f"extra column ignored: cdr has {len(raw['cdr'].columns)} columns after mapping")
    assert "cell_id" not in raw["cdr"].columns


def test_csv_column_holding_text_everywhere_fails_naming_column_and_type(spark, tmp_path,
                                                                         tiny_frames):
    src = tmp_path / "src"
    src.mkdir()
    for name, frame in tiny_frames.items():
        if name == "cdr":
            frame = frame.assign(**{Col.DURATION_S: "n/a"})
        write_csv(frame, src / f"{name}.csv")
    cfg = operator_config(tmp_path, src, "csv", max_reject_share=0.05)
    with pytest.raises(DataError, match=r"Column\(s\) 'duration_s' \(expected double\) parsed in "
                                        "none of the"):
        ingest_stage.run(spark, cfg, RUN)
    print(f"csv text-everywhere: failed before any write, warehouse exists: "
          f"{(tmp_path / 'wh').exists()}")
    assert not (tmp_path / "wh").exists()


def test_contract_tables_source_detects_drift_too(spark, tmp_path, tiny_frames):
    """inputs.source tables/generated (Delta in the contract): the same check, same words."""
    base = config.load(str(ROOT / "conf/local.yaml")).with_overrides(**{
        "warehouse": str(tmp_path / "wh"), "inputs.source": "tables",
        "inputs.path": str(tmp_path / "raw")})
    wh = Warehouse.from_config(base.warehouse, base.inputs.path)
    for name, frame in tiny_frames.items():
        if name == "cdr":
            frame = frame.assign(**{Col.DURATION_S: frame[Col.DURATION_S].astype(str)})
        df = spark.createDataFrame(frame)
        DeltaRsWriter().replace_table(df, wh.input_table(name), df.schema)
    with pytest.raises(SchemaError, match=r"'duration_s' \(contract 'duration_s'\) is string, "
                                          "expected double"):
        ingest_stage.run(spark, base, RUN)
    assert not (tmp_path / "wh" / "cdr").exists() and not (tmp_path / "wh" / "rejects").exists()
    print("contract tables: retyped duration_s refused before any write")


# ---- malformed CDR lines and semantic faults -----------------------------------------

def faulty_cdr_lines(cdr: pd.DataFrame) -> tuple[list[str], dict[str, int]]:
    """The clean CDR as CSV lines plus injected faults; the expected reject reasons."""
    good = cdr.copy()
    good[Col.EVENT_TS] = good[Col.EVENT_TS].dt.strftime("%Y-%m-%d %H:%M:%S")
    lines = good.to_csv(index=False, header=False).splitlines()
    header = ",".join(good.columns)
    voice = good[good[Col.EVENT_TYPE] == "voice"].iloc[0]
    sub = voice[Col.SUBSCRIBER_ID]
    ts = voice[Col.EVENT_TS]
    faults = {
        "unparsable_value": [f"X1,{sub},voice,{ts},12s,",             # bad number
                             f"X2,{sub},voice,2026-13-45 25:61:00,60,",  # bad timestamp
                             f"X3,{sub},voice,{ts}",                  # too few fields
                             f"X4,{sub},voice,{ts},60,,extra"],       # too many fields
        "negative_duration": [f"X5,{sub},voice,{ts},-30,"],
        "absurd_duration": [f"X6,{sub},voice,{ts},90000,"],
        "duplicate_event": [lines[0], lines[1].replace(lines[1].split(",")[3],  # exact copy,
                                                       "2026-11-22 23:59:59")],  # re-sent later
    }
    injected = [line for group in faults.values() for line in group]
    return [header, *lines, *injected], {k: len(v) for k, v in faults.items()}


def test_malformed_cdr_lines_counts_hold_for_every_projection(spark, tmp_path, tiny_frames):
    src = tmp_path / "src"
    src.mkdir()
    for name, frame in tiny_frames.items():
        if name != "cdr":
            write_csv(frame, src / f"{name}.csv")
    lines, expected = faulty_cdr_lines(tiny_frames["cdr"][schemas.CDR.fieldNames()])
    (src / "cdr.csv").write_text("\n".join(lines) + "\n")
    cfg = operator_config(tmp_path, src, "csv")
    read = len(lines) - 1
    raw = read_inputs(spark, cfg)
    subs = validate.tag_subscribers(raw["subscribers"])
    sub_ids = subs.filter(F.col(Col.REASON).isNull()).select(Col.SUBSCRIBER_ID)
    tagged = validate.tag_cdr(raw["cdr"], sub_ids, RUN, cfg.ingest.cdr_window_days).cache()
    projections = [tagged.columns, [Col.EVENT_ID], [Col.DURATION_S], [Col.EVENT_TS, Col.REASON],
                   [Col.DATA_MB]]
    seen = set()
    for cols in projections:
        acc = tagged.where(F.col(Col.REASON).isNull()).select(*cols).count()
        rej = tagged.where(F.col(Col.REASON).isNotNull()).select(*cols).count()
        total = raw["cdr"].select(*[c for c in cols if c in raw["cdr"].columns]
                                  or [Col.EVENT_ID]).count()
        seen.add((acc, rej, total))
    by_reason = {r[0]: r[1] for r in tagged.where(F.col(Col.REASON).isNotNull())
                 .groupBy(Col.REASON).count().collect()}
    tagged.unpersist()
    # Spark's own DROPMALFORMED reader, for comparison: its count depends on the projection
    dropping = spark.read.options(header=True, mode="DROPMALFORMED").schema(
        ", ".join(f"{c} string" for c in schemas.CDR.fieldNames())).csv(str(src / "cdr.csv"))
    spark_counts = {dropping.count(), dropping.select(Col.EVENT_ID).count(),
                    len(dropping.collect())}
    print(f"malformed cdr: read {read}, (accepted, quarantined, read) over {len(projections)} "
          f"projections: {seen}; rejects by reason {by_reason}; Spark DROPMALFORMED counts "
          f"{sorted(spark_counts)}")
    assert len(seen) == 1
    acc, rej, total = seen.pop()
    assert total == read == acc + rej
    assert by_reason == expected
    # over the limit: a clear error and no table written
    strict = operator_config(tmp_path / "s", src, "csv", max_reject_share=0.001)
    with pytest.raises(DataError, match=r"rows of 'cdr' .* above ingest.max_reject_share=0.001"):
        ingest_stage.run(spark, strict, RUN)
    assert not (tmp_path / "s" / "wh").exists()
    # under the limit: every quarantined row is in rejects, with its reason
    counts = {c.table: c for c in ingest_stage.run(spark, cfg, RUN)}
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    rejects = DeltaRsWriter().read(spark, wh.table("rejects"), schemas.REJECTS, [RUN])
    stored = {r[0]: r[1] for r in rejects.where(F.col(Col.SOURCE_TABLE) == "cdr")
              .groupBy(Col.REASON).count().collect()}
    assert counts["cdr"].read == read and stored == expected


# ---- pseudonymisation ----------------------------------------------------------------

def plain_hashes(value: str):
    """sha256, sha1 and md5 of an identifier, hex, cut to the pseudonym's length (a pseudonym
    can only equal a hash's first 32 hex digits)."""
    b = value.encode()
    return (algo(b).hexdigest()[:pseudo.PSEUDONYM_HEX]
            for algo in (hashlib.sha256, hashlib.sha1, hashlib.md5))


def dictionary_hits(pseudonyms: set[str], numbers: range) -> int:
    """Pseudonyms an attacker finds by hashing every id of the numbering range."""
    return sum(h in pseudonyms for n in numbers for h in plain_hashes(f"S{n:09d}"))


def test_pseudonyms_stable_collision_free_and_not_in_a_plain_hash_dictionary(spark):
    # the generator's ids are S + 9 digits; the dictionary covers S000000000..S000999999
    # (1,000,000 numbers: every id of a population up to 999,999 subscribers)
    population = [f"S{n:09d}" for n in range(1, 20_001)]
    ids = spark.createDataFrame([(i,) for i in population], f"{Col.SUBSCRIBER_ID} string")
    run1 = {r[0]: r[1] for r in ids.select(Col.SUBSCRIBER_ID, pseudo.hasher(KEY)(
        F.col(Col.SUBSCRIBER_ID))).collect()}
    run2 = {r[0]: r[1] for r in ids.repartition(3).select(Col.SUBSCRIBER_ID, pseudo.hasher(KEY)(
        F.col(Col.SUBSCRIBER_ID))).collect()}
    other_key = {pseudo.pseudonym(b"another-key-0123456789abcdef", i) for i in population}
    collisions = len(population) - len(set(run1.values()))
    numbering = range(1_000_000)
    found = dictionary_hits(set(run1.values()), numbering)
    plain = {hashlib.sha256(i.encode()).hexdigest()[:32] for i in population[:1000]}
    control = dictionary_hits(plain, range(2_000))  # positive control: the attack works
    print(f"pseudonyms: {len(population)} ids, stable across runs {run1 == run2}, collisions "
          f"{collisions}, shared with another key {len(other_key & set(run1.values()))}, found "
          f"by sha256/sha1/md5 of all {len(numbering):,} numbers S000000000..S000999999: "
          f"{found} (plain sha256 pseudonyms found the same way: {control}/1000)")
    assert run1 == run2 and collisions == 0 and found == 0 and control == 1000
    assert not other_key & set(run1.values())


def test_missing_secret_fails_closed_naming_where_to_put_it(spark, tmp_path, tiny_frames):
    write_sources(dict(tiny_frames), tmp_path / "src")
    cfg = operator_config(tmp_path, tmp_path / "src", "parquet").with_overrides(
        **{"pseudonymisation.enabled": True})
    with pytest.raises(ConfigError, match="environment variable TELCOREC_PSEUDO_KEY") as err:
        pseudo.resolve_secret(cfg, environ={})
    with pytest.raises(ConfigError, match="no key"):
        ingest_stage.run(spark, cfg, RUN)
    print(f"missing secret: {err.value}; warehouse created: {(tmp_path / 'wh').exists()}")
    assert not (tmp_path / "wh").exists()


def test_rejects_keep_no_source_value_of_unparsable_rows_when_pseudonymised(spark, tmp_path,
                                                                            tiny_frames):
    """Shifted fields put a phone number anywhere in a malformed line: only keys survive."""
    src = tmp_path / "src"
    src.mkdir()
    for name, frame in tiny_frames.items():
        if name != "cdr":
            write_csv(frame, src / f"{name}.csv")
    cdr = tiny_frames["cdr"][schemas.CDR.fieldNames()].copy()
    cdr[Col.EVENT_TS] = cdr[Col.EVENT_TS].dt.strftime("%Y-%m-%d %H:%M:%S")
    canary = "+4570000999"
    lines = [",".join(cdr.columns), *cdr.to_csv(index=False, header=False).splitlines(),
             f"E1,S000000001,{canary},2026-11-01 10:00:00,60,",       # canary in event_type
             f"E2,S000000001,voice,{canary},60,",                    # ... in the timestamp
             f"E3,extra,S000000001,voice,2026-11-01 10:00:00,{canary[1:]},",  # shifted: a number
             f"{canary}"]                                             # a line of one field
    (src / "cdr.csv").write_text("\n".join(lines) + "\n")
    cfg = operator_config(tmp_path, src, "csv").with_overrides(
        **{"pseudonymisation.enabled": True})
    ingest_stage.run(spark, cfg, RUN, secret=KEY)
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    records = [r[Col.RECORD] for r in DeltaRsWriter().read(spark, wh.table("rejects"),
                                                           schemas.REJECTS, [RUN]).collect()]
    leaks = [r for r in records if "4570000999" in r or "4.570000999" in r]
    print(f"rejects under pseudonymisation: {len(records)} records, {len(leaks)} with the canary")
    assert len(records) >= 4 and leaks == []


# ---- consent --------------------------------------------------------------------------

def test_opted_out_subscribers_get_no_offers_and_the_rule_counts_them(spark, tmp_path):
    from deltalake import DeltaTable

    from helpers.selection_rows import COLUMNS, ROWS, literal_batch, make_selection
    from telcorec.publish import passes
    from telcorec.publish.contract import OffersContract
    batch = literal_batch()
    batch[Col.MARKETING_OPT_OUT] = [True, False, True]   # A (model arm) and C (control arm)
    got = selection.candidate_rows(batch, make_selection()).to_pandas()
    opted_out = set(batch.loc[batch[Col.MARKETING_OPT_OUT], Col.SUBSCRIBER_ID])
    n_offers = 4
    rows = [(f"{sid}{i}", *rest, sid in opted_out) for i in range(5) for sid, *rest in ROWS]
    df = spark.createDataFrame(rows, COLUMNS + f", {Col.MARKETING_OPT_OUT} boolean")
    # the score stage's publishing pass: counted and written by the same tasks
    sel = make_selection()
    contract = OffersContract(tuple(sel.offers[Col.OFFER_ID]), sel.depth)
    staged = DeltaRsWriter().stage_partition(df, tmp_path / "offers", schemas.OFFERS, RUN,
                                             passes.publishing_task(sel, sel.depth, None, contract,
                                                                 RUN, "run-1"))
    names = (rules.CANDIDATE_PAIRS, rules.CONSENT, rules.CURRENT_PLAN,
             *(r.name for r in sel.eligibility), rules.FATIGUE, rules.ELIGIBLE_PAIRS,
             rules.WITHOUT_OFFERS)
    counts = {name: staged.counts.rules.get(name, 0) for name in names}
    staged.commit()
    offered = DeltaTable(str(tmp_path / "offers")).to_pandas()
    leaked = offered[offered[Col.SUBSCRIBER_ID].str[0].isin(opted_out)]
    local = int(got[Col.SUBSCRIBER_ID].isin(opted_out).sum())
    print(f"consent: opted-out subscribers {2 * 5} x {n_offers} offers, rule count "
          f"{counts[rules.CONSENT]}, their offers (local {local}, executors {len(leaked)}), "
          f"others kept {len(offered)} rows")
    assert set(got[Col.SUBSCRIBER_ID]) == {"B"} and len(leaked) == 0
    assert counts[rules.CONSENT] == 2 * 5 * n_offers
    assert counts[rules.CANDIDATE_PAIRS] == sum(v for k, v in counts.items()
                                                if k not in (rules.CANDIDATE_PAIRS,
                                                             rules.WITHOUT_OFFERS))
    assert counts[rules.WITHOUT_OFFERS] >= 2 * 5 and len(offered) > 0


def test_generator_flags_the_configured_share_and_ingest_carries_it(spark):
    frames = generated_frames(spark, subscribers=2000, cdr_rows=10, opt_out_share=0.05)
    share = frames["subscribers"][Col.MARKETING_OPT_OUT].mean()
    print(f"generator: opt-out share {share:.4f} of 2000 (configured 0.05)")
    assert abs(share - 0.05) < 0.015


# ---- canary PII sweep ---------------------------------------------------------------

CANARY_BASE = 4570000000  # +4570000001 .. : the subscribers' MSISDNs in the canary run
CANARY = re.compile(rb"4570000\d{3}|4\.570000\d")  # +45..., 0045..., 45..., and as a float


def canary_sources(spark, src: Path, subscribers: int) -> list[str]:
    """The generator's tables as operator CSV files whose subscriber ids are canary MSISDNs
    (event ids built on them too), plus malformed and semantically bad rows carrying them."""
    frames = generated_frames(spark, subscribers, cdr_rows=30_000, opt_out_share=0.05)
    ids = sorted(set(frames["subscribers"][Col.SUBSCRIBER_ID].dropna()))
    msisdn = {s: f"+{CANARY_BASE + i + 1}" for i, s in enumerate(ids)}
    for name in ("subscribers", "subscriptions", "cdr"):
        frame = frames[name]
        frame[Col.SUBSCRIBER_ID] = frame[Col.SUBSCRIBER_ID].map(msisdn)
        if name == "cdr":
            frame[Col.EVENT_ID] = frame[Col.SUBSCRIBER_ID] + "-" + frame.index.astype(str)
    src.mkdir(parents=True)
    for name, frame in frames.items():
        write_csv(frame, src / f"{name}.csv")
    first = f"+{CANARY_BASE + 1}"
    bad = [f"{first}-x1,{first},voice,2026-11-01 10:00:00,12s,",          # unparsable number
           f"{first}-x2,{first},{first},2026-11-01 10:00:00,60,",         # shifted into a type
           f"{first}-x3,{first},voice,2026-11-01 10:00:00",               # too few fields
           f"{first}-x4,extra,{first},voice,2026-11-01 10:00:00,60,",     # too many fields
           f"{first}-x5,{first},voice,2026-11-01 10:00:00,-5,",           # negative duration
           f"{first}-x6,+4570000999,voice,2026-11-01 10:00:00,60,"]       # unknown subscriber
    with open(src / "cdr.csv", "a") as f:
        f.write("\n".join(bad) + "\n")
    return list(msisdn.values())


def pipeline_config(tmp_path, src: Path, **overrides) -> Path:
    cfg = operator_config(tmp_path, src, "csv", max_reject_share=0.05).with_overrides(**{
        "pseudonymisation.enabled": True, "train.lightfm.epochs": 5,
        "gate.min_lift_over_popularity": -1.0, "gate.min_row_share": 0.0,
        "gate.min_catalogue_coverage": 0.0, **overrides})
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "conf.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(cfg.to_dict()))))
    return path


def run_pipeline(conf: Path, cwd: Path, key: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TELCOREC_PSEUDO_KEY"}
    env.update(PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
               PYTHONPATH=str(ROOT))
    if key is not None:
        env["TELCOREC_PSEUDO_KEY"] = key
    return subprocess.run([sys.executable, str(ROOT / "jobs/pipeline.py"), "--conf", str(conf),
                           "--run-date", RUN.isoformat()], cwd=cwd, env=env,
                          capture_output=True, timeout=3000)


def texts_of(path: Path):
    """Every searchable text of a file: its bytes, and decoded values where the bytes are
    compressed (Parquet column values, npz arrays, zip members)."""
    data = path.read_bytes()
    yield data                                   # JSON, logs, Parquet footers (min/max stats)
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        for column in table.columns:
            yield "\n".join(map(str, column.to_pylist())).encode()
        yield str(pq.ParquetFile(path).metadata.to_dict()).encode()   # stats, decoded
    elif path.suffix in (".npz", ".pt", ".zip") and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for member in z.namelist():
                yield z.read(member)
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as arrays:
                for name in arrays.files:
                    yield "\n".join(map(str, arrays[name].ravel().tolist())).encode()


def sweep(root: Path) -> tuple[int, dict[str, int]]:
    """(files searched, {file: canary occurrences}) under `root`."""
    hits, searched = {}, 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        searched += 1
        n = sum(len(CANARY.findall(text)) for text in texts_of(path))
        if n:
            hits[str(path.relative_to(root))] = n
    return searched, hits


@pytest.mark.slow
def test_canary_msisdns_leak_nowhere(spark, tmp_path):
    src = tmp_path / "input"   # the operator's own files, outside the warehouse
    canaries = canary_sources(spark, src, subscribers=200)
    assert CANARY.search(f"x {canaries[0][1:]} y".encode())  # the pattern finds a bare canary
    work = tmp_path / "work"
    work.mkdir()
    key = "k" * 32
    outputs = []
    # 1. a full run: valid rows, malformed and bad rows (rejects), every stage and artifact
    ok = run_pipeline(pipeline_config(tmp_path, src), work, key)
    outputs.append(ok.stdout + ok.stderr)
    assert ok.returncode == 0, ok.stderr.decode()[-3000:]
    # 2. a run failing on the reject-share limit (its error text, its `runs` row)
    strict = pipeline_config(tmp_path, src, **{"ingest.max_reject_share": 0.0})
    failed = run_pipeline(strict, work, key)
    outputs.append(failed.stdout + failed.stderr)
    assert failed.returncode != 0 and b"max_reject_share" in failed.stderr
    # 3. a subscribers file without its header row: data values become column names
    headless = tmp_path / "headless"
    headless.mkdir()
    for f in src.iterdir():
        lines = f.read_text().splitlines()
        (headless / f.name).write_text("\n".join(lines[1:] if f.name == "subscribers.csv"
                                                 else lines) + "\n")
    broken = run_pipeline(pipeline_config(tmp_path / "h", headless), work, key)
    outputs.append(broken.stdout + broken.stderr)
    assert broken.returncode != 0 and b"looks like data" in broken.stderr
    # 4. no key: fails closed before anything is written
    nokey = run_pipeline(pipeline_config(tmp_path / "n", src), work, None)
    outputs.append(nokey.stdout + nokey.stderr)
    assert nokey.returncode != 0 and b"TELCOREC_PSEUDO_KEY" in nokey.stderr
    assert not (tmp_path / "n" / "wh").exists()

    searched, hits = sweep(tmp_path / "wh")
    h_searched, h_hits = sweep(tmp_path / "h") if (tmp_path / "h").exists() else (0, {})
    w_searched, w_hits = sweep(work)  # spark-warehouse, derby or other files the job left
    log_hits = sum(len(CANARY.findall(o)) for o in outputs)
    tables = sorted(p.name for p in (tmp_path / "wh").iterdir())
    print(f"canary sweep: {len(canaries)} canary MSISDNs; {searched} warehouse files "
          f"({tables}), {w_searched + h_searched} other files, {sum(map(len, outputs)):,} bytes "
          f"of job output over 4 runs: occurrences {sum(hits.values())} + "
          f"{sum(w_hits.values()) + sum(h_hits.values())} + {log_hits}; {hits or ''}")
    assert searched > 50 and "rejects" in tables and "offers" in tables
    assert hits == {} and w_hits == {} and h_hits == {} and log_hits == 0


@pytest.mark.slow
def test_opted_out_subscribers_get_no_offers_end_to_end(spark, tmp_path):
    """The generated source through every stage: flagged in features, absent from offers."""
    from telcorec.stages import pipeline
    cfg = config.load(str(ROOT / "conf/local.yaml")).with_overrides(**{
        "warehouse": str(tmp_path / "wh"), "generator.subscribers": 300,
        "generator.opt_out_share": 0.1, "train.lightfm.epochs": 5,
        "gate.min_lift_over_popularity": -1.0, "gate.min_row_share": 0.0})
    results = pipeline.run(spark, cfg, RUN)
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    feats = DeltaRsWriter().read(spark, wh.table("subscriber_features"),
                                 schemas.SUBSCRIBER_FEATURES, [RUN])
    offers = DeltaRsWriter().read(spark, wh.table("offers"), schemas.OFFERS, [RUN])
    opted = feats.where(F.col(Col.MARKETING_OPT_OUT)).select(Col.SUBSCRIBER_ID)
    n_opted = opted.count()
    leaked = offers.join(opted, on=Col.SUBSCRIBER_ID).count()
    n_offers = DeltaRsWriter().read(spark, wh.table("offer_features"), schemas.OFFER_FEATURES,
                                    [RUN]).count()
    removed = results["score"]["rules"][rules.CONSENT]
    print(f"consent end to end: {n_opted} of {feats.count()} subscribers opted out, "
          f"{leaked} offers to them, rule consent removed {removed} = {n_opted} x {n_offers}")
    assert n_opted > 0 and leaked == 0 and removed == n_opted * n_offers
