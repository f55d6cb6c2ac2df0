"""Every `./spark-submit.sh sql` example of README.md runs as written on a pipeline's warehouse.

The examples are read from README.md's bash blocks at collection time, so an example added there
is tested here. Each runs through the sql entry in-process against the session's pipeline
warehouse (conftest.tiny_pipeline), with `--conf` added to point at it; one runs through the real
launcher. An example must exit 0 and return rows, unless every table it reads is one that a single
demo run leaves empty (listed below with the reason).
"""
from __future__ import annotations

import json
import re
import shlex
import subprocess

import pytest
from deltalake import DeltaTable

from helpers import REPO
from telcorec import sql

README = REPO / "README.md"

# Tables one pipeline run on the default config leaves empty, and why.
EMPTY_AFTER_ONE_RUN = {
    "trials": "the default config does not tune (tuning.enabled: false)",
    "responses": "answers come from the operator's campaign tool or from `simulate`",
    "drift": "drift compares with a previous published run",
}


def readme_sql_examples(text: str) -> list[list[str]]:
    """The arguments after `./spark-submit.sh sql` of each such line inside a ```bash block."""
    examples, in_bash = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_bash = line.strip() == "```bash" and not in_bash
        elif in_bash and line.startswith("./spark-submit.sh sql "):
            examples.append(shlex.split(line, comments=True)[2:])
    return examples


EXAMPLES = readme_sql_examples(README.read_text())


def tables_read(query: str) -> set[str]:
    """Names after FROM or JOIN: enough to tell which tables an example reads."""
    return set(re.findall(r"\b(?:FROM|JOIN)\s+([a-z_]+)", query, flags=re.I))


def rows_in(text: str, fmt: str) -> int:
    lines = text.splitlines()
    return {"table": len(lines) - 2, "csv": len(lines) - 1, "json": len(lines)}[fmt]


@pytest.fixture(scope="module")
def demo(tiny_pipeline, tmp_path_factory):
    cfg, wh, _ = tiny_pipeline
    conf = tmp_path_factory.mktemp("readme") / "readme.yaml"
    conf.write_text(f"extends: {REPO / 'conf' / 'local.yaml'}\nwarehouse: {cfg.warehouse}\n")
    return str(conf), wh


def test_the_readme_has_sql_examples_to_run():
    assert len(EXAMPLES) >= 20
    assert all(example and not example[-1].startswith("#") for example in EXAMPLES)


@pytest.mark.parametrize("args", EXAMPLES, ids=[" ".join(e)[:60] for e in EXAMPLES])
def test_readme_sql_example_runs_as_written(demo, args, capsys, monkeypatch, tmp_path):
    conf, _ = demo
    monkeypatch.chdir(tmp_path)   # an example's --output lands here
    parsed = sql.parser().parse_args(args)
    rc = sql.main([*args, "--conf", conf])
    out, err = capsys.readouterr()
    assert rc == 0, err
    if parsed.output:
        assert out == ""
        out = (tmp_path / parsed.output).read_text()
    n = rows_in(out, parsed.format)
    if parsed.format == "json":
        assert all(isinstance(json.loads(line), dict) for line in out.splitlines())
    if not tables_read(parsed.query) <= set(EMPTY_AFTER_ONE_RUN):
        assert n > 0, f"no rows from {parsed.query}"


def test_the_acceptance_query_through_the_launcher(demo):
    conf, wh = demo
    offers = len(DeltaTable(str(wh.table("offers"))).to_pyarrow_table(columns=["rank"]))
    run = subprocess.run(["bash", str(REPO / "spark-submit.sh"), "sql", "--format", "csv",
                          "SELECT count(*) AS n FROM offers", "--conf", conf],
                         cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"n\n{offers}\n"
