"""Checks of a source's files on the driver, before Spark reads a row: an empty file, a header
without rows, a header in another delimiter or encoding stop the run with one line that names
the file, what is wrong and what to do (instead of a parser's stack trace, or a model fitted on
nothing). Only the first non-blank lines of each file are read (at most HEAD_BYTES per line),
so the check costs the same for a 100-byte file and a 100-GB directory of CDR files.
"""
from __future__ import annotations

import bz2
import csv as csv_module
import gzip
from dataclasses import dataclass
from pathlib import Path

from telcorec.core.config import CsvConfig
from telcorec.core.exceptions import DataError, SchemaError

HEAD_BYTES = 1 << 20
DELIMITERS = (",", ";", "\t", "|")
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open}


class EmptyInput(DataError):
    """A source with no rows at all (no bytes, or a header only)."""


@dataclass(frozen=True)
class CsvSource:
    """A CSV source and, for the messages, the config keys that say where it is and how it is
    read: `key` the source's section, `path_key` its path, `csv_key` the section holding
    `encoding` and `delimiter` (for a fixed public file whose delimiter cannot be configured,
    the adapter's section, with `fixed_delimiter`); `expected`: the columns its header must
    have."""
    path: str
    key: str
    csv: CsvConfig
    csv_key: str
    expected: tuple[str, ...] = ()
    path_key: str = ""
    fixed_delimiter: bool = False

    @property
    def encoding_key(self) -> str:
        return f"{self.csv_key}.encoding"

    @property
    def where_key(self) -> str:
        return self.path_key or f"{self.key}.path"


def data_files(path: str) -> list[Path]:
    """The files Spark reads at `path`: the file, or a directory's files (hidden ones and
    Spark's own `_SUCCESS`-style markers left out), in name order."""
    root = Path(path)
    if root.is_file():
        return [root]
    return sorted(f for f in root.rglob("*") if f.is_file()
                  and not any(p.startswith(("_", ".")) for p in f.relative_to(root).parts))


def first_lines(file: Path, n: int) -> list[bytes]:
    """Up to `n` non-blank lines from the start of `file` (decompressed when .gz / .bz2)."""
    out = []
    with _OPENERS.get(file.suffix, open)(file, "rb") as handle:
        while len(out) < n:
            line = handle.readline(HEAD_BYTES)
            if not line:
                break
            if line.strip(b" \t\r\n"):
                out.append(line.rstrip(b"\r\n"))
    return out


def _where(path: str, files: list[Path]) -> str:
    if Path(path).is_file():
        return path
    return f"{path} (a directory of {len(files)} file(s))" if files else f"{path} (no files)"


def require_bytes(path: str, key: str) -> None:
    """Any format: at least one non-empty file (Parquet's reader fails on a 0-byte file with a
    stack trace, and infers no schema from an empty directory)."""
    files = data_files(path)
    if not any(f.stat().st_size for f in files):
        raise EmptyInput(f"{key}: {_where(path, files)} is empty (0 bytes): nothing to read. "
                         f"Check the export that writes it, or point {key}.path at the right file")


def _decode(line: bytes, src: CsvSource, file: Path) -> str:
    enc = src.csv.encoding
    if line.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in line:
        raise DataError(f"{src.key}: {file} is not {enc} text (its first line holds NUL bytes: "
                        "UTF-16 or a binary file?). Export it as UTF-8, or in an 8-bit "
                        f"encoding named in {src.encoding_key}")
    try:
        return line.decode(enc).lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise DataError(f"{src.key}: the header line of {file} does not decode as {enc} (byte "
                        f"0x{line[exc.start]:02X} at position {exc.start}). Set "
                        f"{src.encoding_key} to the file's encoding (e.g. cp1252 or latin-1), "
                        f"or export it as {enc}") from None


def _fields(text: str, delimiter: str) -> list[str]:
    return next(csv_module.reader([text], delimiter=delimiter), [])


def spark_names(fields: list[str]) -> list[str]:
    """Column names as Spark's CSV reader makes them from a header (CSVUtils.makeSafeHeader,
    case-insensitive): `_c<i>` for an empty name, `<name><i>` for a repeated one."""
    lower = [f.lower() for f in fields]
    repeated = {f for f in lower if lower.count(f) > 1}
    return [f"_c{i}" if not f else f"{f}{i}" if f.lower() in repeated else f
            for i, f in enumerate(fields)]


def _check_delimiter(src: CsvSource, file: Path, text: str, names: list[str]) -> None:
    """A header that lacks expected columns but has them all when split by another common
    delimiter was written with that delimiter: say so (the column check alone would report
    one column named like the whole header line)."""
    missing = [c for c in src.expected if c not in names]
    if not missing:
        return
    for other in DELIMITERS:
        if other == src.csv.delimiter:
            continue
        alt = _fields(text, other)
        if len(alt) > len(names) and all(c in alt for c in src.expected):
            fix = (f"Export it separated by {src.csv.delimiter!r}" if src.fixed_delimiter
                   else f"Set {src.csv_key}.delimiter: {other!r}")
            raise SchemaError(
                f"{src.key}: {file} is separated by {other!r}, not {src.csv.delimiter!r}: its "
                f"header splits into {len(names)} column(s) and lacks {missing[:4]}. {fix}")
    if len(names) == 1 and len(src.expected) > 1:
        raise SchemaError(
            f"{src.key}: the header of {file} is one column with the delimiter "
            f"{src.csv.delimiter!r}, where columns {list(src.expected)[:4]}... are expected. "
            f"Check the delimiter ({src.csv_key}) and that {src.where_key} is the right file")


def inspect_csv(src: CsvSource) -> list[str]:
    """The column names of a CSV source (from its first file's header, or `_c<i>` without
    one), after refusing an empty or header-only source (EmptyInput), an undecodable header
    and a header in another delimiter."""
    files = data_files(src.path)
    wanted = 2 if src.csv.header else 1
    head, head_file, has_rows = None, None, False
    for file in files:
        lines = first_lines(file, wanted)
        if lines and head is None:
            head, head_file = lines[0], file
        if len(lines) == wanted:
            has_rows = True
            break
    where = _where(src.path, files)
    if head is None:
        raise EmptyInput(f"{src.key}: {where} is empty: no header and no rows. Check the "
                         f"export that writes it, or point {src.where_key} at the right file")
    text = _decode(head, src, head_file)
    fields = _fields(text, src.csv.delimiter)
    if not src.csv.header:
        return [f"_c{i}" for i in range(len(fields))]
    names = spark_names(fields)
    _check_delimiter(src, head_file, text, names)
    if not has_rows:
        raise EmptyInput(f"{src.key}: {where} has a header but no data rows. Check the export "
                         f"that writes it, or point {src.where_key} at the right file")
    return names
