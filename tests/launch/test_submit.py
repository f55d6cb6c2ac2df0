"""The spark-submit command a job gets: options, modes, conf/spark/*.properties, --dry-run."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from helpers import REPO
from telcorec.launch.messages import UsageError
from telcorec.launch.options import LaunchOptions, job_options, parse_job_command
from telcorec.launch.submit import build_plan, read_properties, render_dry_run, spark_mode

JOBS = REPO / "jobs"
PY = "/repo/.venv/bin/python"
COMMON = ["--conf", "spark.ui.showConsoleProgress=true",
          "--conf", "spark.sql.execution.arrow.pyspark.enabled=true",
          "--conf", ("spark.driver.extraJavaOptions=-Dlog4j2.configurationFile="
                     "conf/spark/log4j2.properties -XX:-DontCompileHugeMethods"),
          "--conf", "spark.executor.extraJavaOptions=-XX:-DontCompileHugeMethods"]
DELTA = ["--packages", "io.delta:delta-spark_2.13:4.0.1",
         "--conf", "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
         "--conf", "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog"]
SHIPPED = ["--py-files", "dist/telcorec-1.2.zip",
           "--archives", "dist/telcorec-env-1.2.tar.gz#environment",
           "--conf", "spark.pyspark.python=./environment/bin/python",
           "--conf", f"spark.pyspark.driver.python={PY}"]


def plan_for(args: list[str], writer: str = "delta-rs", environ: dict | None = None):
    seen = []

    def writer_of(conf: str) -> str:
        seen.append(conf)
        return writer

    plan = build_plan(parse_job_command(args, JOBS), REPO, PY, "1.2", writer_of, environ or {})
    return plan, seen


@pytest.mark.parametrize("master, mode", [
    ("local", "local"), ("local[2]", "local"), ("local[*]", "local"), ("local[4,2]", "local"),
    ("spark://127.0.0.1:7077", "loopback"), ("spark://localhost:7078", "loopback"),
    ("spark://10.0.0.1:7077", "cluster"), ("yarn", "cluster"), ("k8s://https://k:443", "cluster"),
    ("localhost", "cluster"), ("local[x]", "cluster")])
def test_spark_mode_by_master(master, mode):
    assert spark_mode(master) == mode


def test_read_properties_accepts_spark_defaults_lines(tmp_path):
    path = tmp_path / "x.properties"
    path.write_text("# comment\n\n! also a comment\nspark.a   1\nspark.b=two words\n"
                    "spark.c  -Dx=y -Dz=w\n  spark.d : v\n")
    assert read_properties(path) == {"spark.a": "1", "spark.b": "two words",
                                     "spark.c": "-Dx=y -Dz=w", "spark.d": "v"}


def test_read_properties_names_the_bad_line(tmp_path):
    path = tmp_path / "x.properties"
    path.write_text("spark.a 1\nlonely\n")
    with pytest.raises(ValueError, match=r"x.properties:2"):
        read_properties(path)


def test_local_command_is_exact():
    plan, seen = plan_for(["pipeline", "--run-date", "2026-11-01"])
    assert plan.argv == [".venv/bin/spark-submit", "--master", "local[2]", "--driver-memory", "4g",
                         *COMMON, "--conf", "spark.sql.shuffle.partitions=4",
                         "--conf", "spark.default.parallelism=4",
                         "jobs/pipeline.py", "--run-date", "2026-11-01"]
    assert plan.env == {"PYSPARK_PYTHON": PY, "PYSPARK_DRIVER_PYTHON": PY,
                        "SPARK_LOCAL_IP": "127.0.0.1"}
    assert (plan.mode, plan.py_files, plan.archive) == ("local", None, None)
    assert seen == []   # local mode never reads the job's config


def test_loopback_ships_code_keeps_local_partitions_and_adds_cluster_conf():
    plan, seen = plan_for(["--master", "spark://127.0.0.1:7077", "score"])
    assert plan.argv == [".venv/bin/spark-submit", "--master", "spark://127.0.0.1:7077",
                         "--driver-memory", "4g", *SHIPPED, *COMMON,
                         "--conf", "spark.sql.shuffle.partitions=4",
                         "--conf", "spark.default.parallelism=4",
                         "jobs/score.py", "--conf", "conf/cluster.yaml"]
    assert seen == ["conf/cluster.yaml"]
    assert plan.env["SPARK_LOCAL_IP"] == "127.0.0.1"


def test_remote_cluster_with_spark_writer_gets_delta_and_200_partitions():
    plan, seen = plan_for(["score", "--master", "spark://10.0.0.1:7077", "--conf", "conf/x.yaml"],
                          writer="auto")
    assert plan.argv == [".venv/bin/spark-submit", "--master", "spark://10.0.0.1:7077",
                         "--driver-memory", "4g", *SHIPPED, *COMMON,
                         "--conf", "spark.sql.shuffle.partitions=200", *DELTA,
                         "jobs/score.py", "--conf", "conf/x.yaml"]
    assert seen == ["conf/x.yaml"] and plan.conf == "conf/x.yaml" and plan.writer == "auto"
    assert "SPARK_LOCAL_IP" not in plan.env
    assert "Delta jars and extension added" in plan.notes[0]


def test_delta_rs_writer_needs_no_delta_jars():
    plan, _ = plan_for(["score", "--master", "yarn"], writer="delta-rs")
    assert not {"--packages", "--jars"} & set(plan.argv)
    assert not any("delta" in arg.lower() for arg in plan.argv if arg.startswith("spark.sql."))


def test_delta_jars_and_repositories_from_the_environment():
    plan, _ = plan_for(["score", "--master", "yarn"], writer="spark",
                       environ={"TELCOREC_DELTA_JARS": "/j/a.jar,/j/b.jar"})
    assert "--packages" not in plan.argv
    assert plan.argv[plan.argv.index("--jars") + 1] == "/j/a.jar,/j/b.jar"
    plan, _ = plan_for(["score", "--master", "yarn"], writer="spark",
                       environ={"TELCOREC_SPARK_REPOSITORIES": "https://m.example/maven"})
    assert plan.argv[plan.argv.index("--repositories") + 1] == "https://m.example/maven"


def test_last_job_conf_decides_the_writer():
    _, seen = plan_for(["score", "--conf", "a.yaml", "--master", "yarn", "--conf=b.yaml"])
    assert seen == ["b.yaml"]


def test_spark_conf_wins_over_the_properties_files_and_appears_once():
    plan, _ = plan_for(["--spark-conf", "spark.sql.shuffle.partitions=8", "pipeline",
                        "--spark-conf=spark.executor.memory=2g"])
    confs = [plan.argv[i + 1] for i, a in enumerate(plan.argv) if a == "--conf"]
    assert [c for c in confs if c.startswith("spark.sql.shuffle.partitions=")] == [
        "spark.sql.shuffle.partitions=8"]
    assert confs[-1] == "spark.executor.memory=2g"


def test_master_and_driver_memory_in_both_spellings():
    plan, _ = plan_for(["--master=local[4]", "pipeline", "--driver-memory", "8g"])
    assert plan.argv[1:5] == ["--master", "local[4]", "--driver-memory", "8g"]


def test_job_arguments_pass_through_untouched():
    args = ["--run-date", "2026-11-01", "--subscribers", "500", "--weird=a=b", "-x", "", "--conf",
            "conf/local.yaml"]
    plan, _ = plan_for(["pipeline", *args])
    assert plan.argv[plan.argv.index("jobs/pipeline.py") + 1:] == args


def test_double_dash_hands_everything_after_it_to_the_job():
    request = parse_job_command(["pipeline", "--", "--master", "x", "--dry-run"], JOBS)
    assert request.job_args == ("--master", "x", "--dry-run")
    assert request.options == LaunchOptions()


def test_a_job_option_named_like_a_launcher_option_reaches_the_job():
    assert "--dry-run" in job_options(JOBS / "vacuum.py")
    request = parse_job_command(["vacuum", "--dry-run", "--min-age-minutes", "0"], JOBS)
    assert request.job_args == ("--dry-run", "--min-age-minutes", "0")
    assert not request.options.dry_run
    request = parse_job_command(["--dry-run", "vacuum", "--dry-run"], JOBS)
    assert request.options.dry_run and request.job_args == ("--dry-run",)
    # A job without its own --dry-run: the launcher takes it wherever it stands.
    request = parse_job_command(["score", "--run-date", "2026-11-01", "--dry-run"], JOBS)
    assert request.options.dry_run and request.job_args == ("--run-date", "2026-11-01")


def test_job_options_are_read_without_running_the_job(tmp_path):
    job = tmp_path / "j.py"
    job.write_text("raise SystemExit('never run')\n"
                   "def _args(p):\n    p.add_argument('--master', '-m', help='x')\n"
                   "    p.add_argument('query')\n    other.call('--dry-run')\n")
    assert job_options(job) == {"--master", "-m"}


def test_submit_word_and_jobs_prefix():
    request = parse_job_command(["--dry-run", "submit", "--master", "yarn", "jobs/score.py", "-v"],
                                JOBS)
    assert (request.job, request.job_args) == ("score", ("-v",))
    assert request.options.master == "yarn" and request.options.dry_run


@pytest.mark.parametrize("args, message", [
    ([], "no job given"),
    (["nosuch"], "unknown job 'nosuch'"),
    (["--bogus", "pipeline"], "unknown launcher option '--bogus'"),
    (["--dry-run", "test"], "launcher options go with jobs"),
    (["pipeline", "--master"], "--master needs a value"),
    (["pipeline", "--master="], "--master needs a non-empty value"),
    (["pipeline", "--dry-run=1"], "--dry-run takes no value"),
    (["pipeline", "--spark-conf", "executor.memory=2g"], "spark.* key"),
    (["pipeline", "--spark-conf", "spark.x"], "KEY=VALUE"),
])
def test_usage_errors_name_the_problem(args, message):
    with pytest.raises(UsageError, match=message):
        parse_job_command(args, JOBS)


def test_python_only_jobs_skip_spark_submit():
    plan, seen = plan_for(["sql", "SELECT 1", "--master", "yarn"])
    assert plan.argv == [PY, "jobs/sql.py", "SELECT 1"] and plan.env == {} and seen == []
    assert plan.mode == "python"


@pytest.mark.parametrize("engine", [["--engine", "spark"], ["--engine=spark"],
                                    ["--engine", "duckdb", "--engine", "spark"]])
def test_sql_on_spark_goes_through_spark_submit(engine):
    plan, _ = plan_for(["sql", "SELECT 1", *engine])
    assert plan.argv[0] == ".venv/bin/spark-submit" and plan.mode == "local"
    assert plan.argv[-2 - len(engine):] == ["jobs/sql.py", "SELECT 1", *engine]


def test_sql_options_reach_the_job_whatever_their_place():
    request = parse_job_command(["sql", "--format", "csv", "SELECT 1", "--limit", "3"], JOBS)
    assert request.job_args == ("--format", "csv", "SELECT 1", "--limit", "3")


def test_dry_run_quotes_each_argument_so_the_shell_gives_it_back():
    query = """SELECT a, 'b c' AS "d e", $HOME FROM offers WHERE x = 'it''s'"""
    plan, _ = plan_for(["sql", query, "--limit", "3", "--engine", "spark"])
    text = render_dry_run(plan, Path("/my repo"), "/usr/lib/jvm/java-17")
    lines = text.splitlines()
    assert lines[0].startswith("# --dry-run: nothing was run")
    assert lines[1] == "cd '/my repo'"
    assert "export JAVA_HOME=/usr/lib/jvm/java-17" in lines
    command = text[text.index(".venv/bin/spark-submit"):]
    assert all(line.endswith(" \\") for line in command.splitlines()[:-1])
    assert shlex.split(command.replace(" \\\n", " ")) == plan.argv
    assert plan.argv[-5:] == [query, "--limit", "3", "--engine", "spark"]
