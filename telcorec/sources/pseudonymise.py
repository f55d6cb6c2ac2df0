"""Pseudonymisation: subscriber identifiers (MSISDN, customer numbers) replaced by a keyed hash.

HMAC-SHA-256 under a secret key, hex, first 32 characters (128 bits; RFC 2104 allows truncation
to half the output): the same identifier always gives the same pseudonym under the same key,
so tables stay joinable across runs, and without the key nobody can recompute or test a guess.
It is applied to the input tables right after they are read, before anything is written
(validated tables, rejects, features, offers all carry pseudonyms only).

The key is read once at the job's edge by `resolve_secret` (from the environment variable named
by `pseudonymisation.secret_env`, or the file `pseudonymisation.secret_file`) and handed to the
ingest stage; it is never logged, never put in config dumps and never a literal in a Spark plan
(it travels to executors inside the hashing function's closure).
"""
from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core.columns import Col
from telcorec.core.config import Config
from telcorec.core.exceptions import ConfigError

PSEUDONYM_HEX = 32
MIN_KEY_BYTES = 16


def resolve_secret(cfg: Config, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The pseudonymisation key, or None when pseudonymisation is off. Call it at the job's
    edge (cli); it fails closed: on, but no usable key -> ConfigError saying where to put one."""
    p = cfg.pseudonymisation
    if not p.enabled:
        return None
    environ = os.environ if environ is None else environ
    if p.secret_file:
        path = Path(p.secret_file).expanduser()
        if not path.is_file():
            raise ConfigError(f"pseudonymisation is on but the key file {path} "
                              "(pseudonymisation.secret_file) does not exist")
        key = path.read_bytes().strip()
        where = f"the file {path}"
    else:
        key = environ.get(p.secret_env, "").strip().encode()
        where = f"the environment variable {p.secret_env}"
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"pseudonymisation is on but {where} (pseudonymisation.secret_env / "
                          f"secret_file) holds no key of at least {MIN_KEY_BYTES} bytes; set "
                          "it, or turn pseudonymisation.enabled off for demo data")
    return key


def pseudonym(key: bytes, value: str) -> str:
    """The pseudonym of one identifier (the slow, obvious definition; tests compare with it)."""
    return hmac.new(key, value.encode("utf-8"), "sha256").hexdigest()[:PSEUDONYM_HEX]


def hasher(key: bytes) -> Callable[[Column], Column]:
    """A Column -> Column function that pseudonymises on executors (vectorised per batch)."""
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"a pseudonymisation key needs at least {MIN_KEY_BYTES} bytes")

    @F.pandas_udf("string")
    def keyed_hash(values: pd.Series) -> pd.Series:
        return values.map(lambda v: hmac.new(key, v.encode("utf-8"), "sha256")
                          .hexdigest()[:PSEUDONYM_HEX], na_action="ignore")

    return keyed_hash


def pseudonymise(tables: dict[str, DataFrame], key: bytes,
                 event_ids: bool) -> dict[str, DataFrame]:
    """Replace subscriber_id in every table (and event_id in the CDR) by its pseudonym."""
    fn = hasher(key)
    out = {}
    for name, df in tables.items():
        replaced = {c: fn(F.col(c)) for c in pseudonymised_columns(df.columns, event_ids)}
        if Col.RAW_RECORD in df.columns:  # raw values of unparsable rows hold identifiers too
            replaced[Col.RAW_RECORD] = F.lit(None).cast("string")
        out[name] = df.withColumns(replaced)
    return out


def pseudonymised_columns(columns: list[str], event_ids: bool) -> list[str]:
    keys = [Col.SUBSCRIBER_ID, *([Col.EVENT_ID] if event_ids else [])]
    return [c for c in keys if c in columns]


def private_record(schema: T.StructType, event_ids: bool) -> Column:
    """A rejected row as JSON when pseudonymisation is on: only values that cannot hold an
    identifier in clear, i.e. the pseudonymised keys, dates, timestamps and flags, plus the
    names of the columns that failed to parse. A rejected row may be malformed, its fields
    shifted (a phone number in event_type or offer_id, or parsed as a number into duration_s),
    so free text and numbers stay out; the reason says what was wrong."""
    keys = pseudonymised_columns(schema.fieldNames(), event_ids)
    safe = [f.name for f in schema.fields if f.name in keys
            or isinstance(f.dataType, (T.DateType, T.TimestampType, T.BooleanType))]
    return F.to_json(F.struct(*[F.col(c) for c in safe],
                              F.col(Col.PARSE_ERROR).alias("_unparsable")))
