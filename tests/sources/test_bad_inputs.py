"""Bad input files: empty, header-only, another delimiter or encoding are refused before anything
is written, with one line naming the file; bytes that do not decode make their row a reject."""
import datetime as dt
import subprocess
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from helpers import REPO
from telcorec.core import config, schemas
from telcorec.core.columns import Col
from telcorec.core.config import CsvConfig
from telcorec.core.exceptions import ConfigError, DataError, SchemaError
from telcorec.io.warehouse import Warehouse
from telcorec.io.writer import DeltaRsWriter
from telcorec.sources import preflight, read_responses
from telcorec.sources.preflight import CsvSource, EmptyInput
from telcorec.stages import ingest as ingest_stage

IBM = Path("/work/shared/data/ibm-telco-churn/Telco-Customer-Churn.csv")
RUN = dt.date(2026, 11, 23)


def ibm_config(tmp_path, content: bytes):
    path = tmp_path / "telco.csv"
    path.write_bytes(content)
    cfg = config.load(REPO / "conf/ibm_telco.yaml").with_overrides(
        warehouse=str(tmp_path / "wh"), **{"inputs.ibm_telco.path": str(path)})
    return cfg, path


def ibm_lines(n: int) -> list[bytes]:
    with IBM.open("rb") as handle:
        return [next(handle) for _ in range(n)]


@pytest.mark.parametrize("content, message", [
    (b"", "is empty: no header and no rows"),
    (b"\n\n", "is empty: no header and no rows"),
    ("header", "has a header but no data rows"),
    ("semicolons", "is separated by ';', not ','"),
])
def test_an_unusable_ibm_file_stops_ingest_before_anything_is_written(spark, tmp_path, content,
                                                                      message):
    if content == "header":
        content = ibm_lines(1)[0]
    elif content == "semicolons":
        content = b"".join(ibm_lines(3)).replace(b",", b";")
    cfg, path = ibm_config(tmp_path, content)
    with pytest.raises((DataError, SchemaError)) as caught:
        ingest_stage.run(spark, cfg, RUN)
    text = str(caught.value)
    assert message in text and str(path) in text and "\n" not in text
    assert not (tmp_path / "wh").exists()


def test_the_launcher_refuses_a_header_only_file_with_one_line_and_no_trace(tmp_path):
    path = tmp_path / "telco.csv"
    path.write_bytes(ibm_lines(1)[0])
    conf = tmp_path / "header_only.yaml"
    conf.write_text(f"extends: {REPO / 'conf/ibm_telco.yaml'}\nwarehouse: {tmp_path / 'wh'}\n"
                    f"inputs:\n  ibm_telco:\n    path: {path}\n")
    done = subprocess.run(["bash", str(REPO / "spark-submit.sh"), "ingest", "--conf", str(conf),
                           "--run-date", RUN.isoformat()], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    output = done.stdout + done.stderr
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert done.returncode == 2, output[-2000:]
    assert errors == [f"error: inputs.ibm_telco: {path} has a header but no data rows. Check the "
                      "export that writes it, or point inputs.ibm_telco.path at the right file"]
    assert "Traceback" not in output and "Py4JJavaError" not in output and "\tat " not in output
    # the attempt is recorded (failed, with this message); no table of data was written
    written = {p.name for p in (tmp_path / "wh").iterdir()} if (tmp_path / "wh").exists() else set()
    assert written <= {"runs", "heartbeats"}, written


def test_an_undecodable_byte_in_a_key_makes_that_customer_a_reject(spark, tmp_path):
    lines = ibm_lines(41)
    bad = lines[1].split(b",", 1)
    lines[1] = bad[0][:-1] + b"\xff" + bad[0][-1:] + b"," + bad[1]   # 7590-VHVE\xffG
    cfg, _ = ibm_config(tmp_path, b"".join(lines))
    counts = {c.table: c for c in ingest_stage.run(spark, cfg, RUN)}
    subs = counts["subscribers"]
    assert (subs.read, subs.accepted, subs.rejected_by_reason) == (40, 39,
                                                                   {"invalid_encoding": 1})
    held = counts["subscriptions"]   # DSL and online backup, plus the contract term
    assert held.rejected_by_reason == {"invalid_encoding": 3}
    for c in counts.values():
        assert c.read == c.accepted + c.rejected, c.table
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    accepted = DeltaRsWriter().read(spark, wh.table("subscribers"),
                                    schemas.accepted("subscribers"), [RUN])
    ids = {r[Col.SUBSCRIBER_ID] for r in accepted.collect()}
    assert len(ids) == 39 and "7590-VHVEG" not in ids
    assert not any("\ufffd" in i for i in ids)
    rejects = DeltaRsWriter().read(spark, wh.table("rejects"), schemas.REJECTS, [RUN])
    got = sorted((r[Col.SOURCE_TABLE], r[Col.REASON]) for r in rejects.collect())
    assert got == [("subscribers", "invalid_encoding")] + [("subscriptions",
                                                           "invalid_encoding")] * 3


def operator_config(tmp_path, files: dict[str, bytes], **csv):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    for name, content in files.items():
        (src / name).write_bytes(content)
    data = config.load(REPO / "conf/local.yaml").to_dict()
    data["warehouse"] = str(tmp_path / "wh")
    data["inputs"]["source"] = "operator"
    data["inputs"]["operator"].update(
        path=str(src), csv={**data["inputs"]["operator"]["csv"], **csv},
        subscribers={"path": "subs.csv", "columns": {"subscriber_id": "msisdn", "segment": "seg"}},
        responses={"path": "answers.csv", "columns": {}})
    return config.from_dict(data), src


def test_a_file_in_another_delimiter_names_the_delimiter_to_set(spark, tmp_path):
    cfg, src = operator_config(tmp_path, {"subs.csv": b"msisdn;seg\nS1;youth\n"})
    with pytest.raises(SchemaError, match="subs.csv is separated by ';', not ','.*lacks "
                                          r"\['msisdn', 'seg'\]\. Set inputs\.operator\.csv\."
                                          "delimiter: ';'"):
        ingest_stage.run(spark, cfg, RUN)
    assert not (tmp_path / "wh").exists()


@pytest.mark.parametrize("content, message", [
    (b"msisdn,s\xffg\nS1,youth\n", r"the header line of .*subs.csv does not decode as utf-8 "
                                   r"\(byte 0xFF at position 8\)\. Set inputs\.operator\.csv\."
                                   "encoding"),
    ("msisdn,seg\nS1,youth\n".encode("utf-16"), "subs.csv is not utf-8 text"),
])
def test_an_undecodable_header_stops_ingest(spark, tmp_path, content, message):
    cfg, _ = operator_config(tmp_path, {"subs.csv": content})
    with pytest.raises(DataError, match=message):
        ingest_stage.run(spark, cfg, RUN)
    assert not (tmp_path / "wh").exists()


@pytest.mark.parametrize("content", [b"", b"subscriber_id,offer_id\n"])
def test_an_empty_responses_file_means_no_responses(spark, tmp_path, content):
    cfg, _ = operator_config(tmp_path, {"answers.csv": content})
    wh = Warehouse.from_config(cfg.warehouse, cfg.inputs.path)
    assert read_responses(spark, cfg, wh, DeltaRsWriter()).count() == 0


def test_a_directory_is_empty_only_when_no_file_has_a_row(tmp_path):
    (tmp_path / "day1.csv").write_bytes(b"id,msisdn\n")
    (tmp_path / "_SUCCESS").write_bytes(b"")
    src = CsvSource(str(tmp_path), "inputs.operator.cdr", CsvConfig(), "inputs.operator.csv",
                    ("id", "msisdn"))
    with pytest.raises(EmptyInput, match=r"\(a directory of 1 file\(s\)\) has a header but no"):
        preflight.inspect_csv(src)
    (tmp_path / "day2.csv").write_bytes(b"id,msisdn\r\n\r\nE1,S1\r\n")
    assert preflight.inspect_csv(src) == ["id", "msisdn"]
    (tmp_path / "day0.csv").write_bytes(b"\xef\xbb\xbfid,msisdn,,id\n")  # BOM, empty, repeated
    assert preflight.inspect_csv(src) == ["id0", "msisdn", "_c2", "id3"]


def test_an_empty_parquet_source_is_refused_naming_it(tmp_path):
    (tmp_path / "part-0.parquet").write_bytes(b"")
    with pytest.raises(EmptyInput, match=r"inputs\.operator\.cdr: .* is empty \(0 bytes\)"):
        preflight.require_bytes(str(tmp_path), "inputs.operator.cdr")


@pytest.mark.parametrize("encoding", ["utf-16", "no-such-codec"])
def test_an_encoding_that_cannot_be_read_line_by_line_is_refused(encoding):
    with pytest.raises(ConfigError, match="inputs.ibm_telco.encoding"):
        config.from_dict({"inputs": {"ibm_telco": {"encoding": encoding}}})


def test_decoded_lines_flag_exactly_the_lines_that_do_not_decode(spark, tmp_path):
    from telcorec.sources.files import decoded_lines
    from telcorec.sources.parse import UNDECODABLE
    path = tmp_path / "lines.csv"
    path.write_bytes(b"a\n\xe9t\xe9\n\x81x\nok \xef\xbf\xbd\n")   # latin-1 e-acute; 0x81; U+FFFD
    got = {enc: [(r["value"], r[UNDECODABLE]) for r in
                 decoded_lines(spark, str(path), enc).orderBy(F.monotonically_increasing_id())
                 .collect()] for enc in ("utf-8", "cp1252", "latin-1")}
    assert got["utf-8"] == [("a", False), ("\ufffdt\ufffd", True), ("\ufffdx", True),
                            ("ok \ufffd", True)]
    assert got["cp1252"] == [("a", False), ("été", False), ("\ufffdx", True),
                             ("ok ï¿½", False)]
    assert [flag for _, flag in got["latin-1"]] == [False] * 4


def test_too_many_undecodable_rows_suggest_the_encoding_key():
    from telcorec.sources.validate import TableCounts, unparsable_columns
    counts = TableCounts("subscribers", 10, 2, {"invalid_encoding": 8})
    text = unparsable_columns(None, "subscribers", counts)  # no Spark work for this reason
    assert text == (" 8 row(s) hold bytes that do not decode in the configured encoding: if the "
                    "file is in another one, name it in the source's `encoding` key (e.g. "
                    "inputs.operator.csv.encoding: cp1252).")
