"""./spark-submit.sh as a user runs it (cheap commands only: no Spark, no cluster)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import REPO
from telcorec.launch import cli


def launcher(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "spark-submit.sh"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


def test_help_lists_commands_jobs_and_the_option_rule():
    run = launcher("--help")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("Usage: ./spark-submit.sh COMMAND")
    jobs = sorted(p.stem for p in (REPO / "jobs").glob("*.py") if not p.stem.startswith("_"))
    assert f"Jobs available now (jobs/*.py): {' '.join(jobs)}" in run.stdout
    assert "unless the job defines an option of the same" in run.stdout
    cluster_help = launcher("cluster", "--help")
    assert cluster_help.returncode == 0 and "spark-daemon.sh" in cluster_help.stdout


def test_dry_run_prints_the_command_and_runs_nothing():
    run = launcher("score", "--dry-run", "--run-date", "2026-11-01")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("# --dry-run: nothing was run")
    assert lines[1] == f"cd {REPO}"
    assert ".venv/bin/spark-submit \\" in lines
    assert lines[-3:] == ["    jobs/score.py \\", "    --run-date \\", "    2026-11-01"]


@pytest.mark.parametrize("args", [("nosuch",), ("--bogus", "pipeline"), ("sql",), ("cluster",),
                                  ("cluster", "sideways"), ()])
def test_usage_errors_go_to_stderr_with_exit_2(args):
    run = launcher(*args)
    assert run.returncode == 2 and run.stdout == "" and run.stderr


def test_which_commands_need_the_environment_built_first():
    assert not cli.runs_without_setup(["test"])
    assert not cli.runs_without_setup(["pipeline"])
    assert not cli.runs_without_setup(["cluster", "up"])
    assert not cli.runs_without_setup(["vacuum", "--dry-run"])    # vacuum's own dry run
    assert cli.runs_without_setup(["--help"]) and cli.runs_without_setup([])
    assert cli.runs_without_setup(["cluster", "up", "--help"])
    assert cli.runs_without_setup(["cluster", "status"])
    assert cli.runs_without_setup(["nosuch"])                      # only prints the error
    assert cli.runs_without_setup(["--dry-run", "pipeline"]) == cli.in_venv()
    assert cli.runs_without_setup(["--version"])


def test_sql_on_its_embedded_engine_needs_the_venv_but_no_java():
    assert cli.setup_needed(["sql", "SELECT 1"]) == 3
    assert cli.setup_needed(["sql", "--format", "csv", "SELECT 1"]) == 3
    assert cli.setup_needed(["sql", "SELECT 1", "--engine", "spark"]) == 1
    assert cli.setup_needed(["pipeline"]) == 1
    assert cli.setup_needed(["--help"]) == 0


def test_version_is_the_packages_and_setup_pys():
    from telcorec.launch import environment
    run = launcher("--version")
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout == f"telcorec {environment.project_version(REPO / 'setup.py')}\n"


def test_sql_help_goes_to_stdout_with_exit_0():
    run = launcher("sql", "--help")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: ./spark-submit.sh sql") and "--engine" in run.stdout


def test_a_submitted_job_prints_its_result_alone_on_stdout(capfd):
    # stands in for spark-submit: log lines on its stdout, the result into the launcher's file
    job = ("import os, sys; print('INFO a log line'); print('WARN another', file=sys.stderr); "
           "open(os.environ['TELCOREC_RESULT_FILE'], 'a').write('n\\n3\\n'); sys.exit(4)")
    rc = cli.run_submitted(cli.Plan([sys.executable, "-c", job], {}, "local"))
    out, err = capfd.readouterr()
    assert (rc, out) == (4, "n\n3\n")
    assert "INFO a log line" in err and "WARN another" in err
