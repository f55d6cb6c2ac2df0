"""The launcher's commands: help, test, cluster, and submitting a job from jobs/."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import telcorec
from telcorec.core import process
from telcorec.launch import cluster, environment
from telcorec.launch.daemons import Layout
from telcorec.launch.messages import LaunchError, UsageError, log
from telcorec.launch.options import (
    DEFAULT_DRIVER_MEMORY,
    DEFAULT_MASTER,
    job_names,
    parse_job_command,
)
from telcorec.launch.submit import Plan, build_plan, python_only, render_dry_run, spark_env

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv"
# Not symlink-resolved: resolving .venv/bin/python would land on the base interpreter.
VENV_PYTHON = str(VENV / "bin" / "python")
HELP = ("-h", "--help", "help")
RESULT_FILE = "TELCOREC_RESULT_FILE"   # where a submitted job writes its result (run_submitted)

USAGE = """\
Usage: ./spark-submit.sh COMMAND [ARGS...]

Runs telcorec's tests and Spark jobs from the repository root. Before each run it checks for
Python 3.11 and Java 17 (installing them with apt-get when run as root) and keeps the
virtualenv .venv up to date with `pip install -e '.[test]'` (re-installed only when
setup.py changes).

Commands:
  test [--all] [PYTEST_ARGS...]
        Run the test suite with .venv's pytest; other arguments go to pytest unchanged.
        Tests marked slow, benchmark, integration or cluster are skipped by default
        (pytest.ini); --all runs them too (cluster: tests/launch/test_cluster.py starts its own
        standalone cluster, ~20 min). Exits with pytest's exit code; collecting no test at
        all (pytest's code 5) counts as a failure.
  [LAUNCHER OPTIONS] pipeline [ARGS...]
        Submit jobs/pipeline.py.
  sql "QUERY" [--format table|csv|json] [--output FILE] [--limit N] [--conf FILE]
        One read-only query over the warehouse's tables, run in plain Python (delta-rs and
        DuckDB, no JVM): the result alone on stdout, logs on stderr; anything but a query
        exits 2. With --engine spark it is submitted like a job and runs on Spark SQL
        (./spark-submit.sh sql --help).
  [LAUNCHER OPTIONS] JOB [ARGS...]  or  [LAUNCHER OPTIONS] submit JOB [ARGS...]
        Submit jobs/JOB.py with ARGS (`./spark-submit.sh JOB --help`: the job's own options).
  cluster up|add-worker|down|status [OPTIONS]
        A standalone Spark cluster (master + workers) on 127.0.0.1 to submit to, run with
        Spark's sbin/spark-daemon.sh; ./spark-submit.sh cluster --help tells more.
  -h, --help
        Show this help.
  --version
        Print telcorec's version.

Jobs available now (jobs/*.py): {jobs}

Launcher options, for pipeline, sql and JOB. Before the job name they are always the
launcher's. After it they are the launcher's too, unless the job defines an option of the same
name: then it goes to the job (`./spark-submit.sh vacuum --dry-run` is vacuum's own dry run;
`./spark-submit.sh --dry-run vacuum` shows the launcher's command). Every other argument goes
to the job unchanged, after the job file; a lone -- ends the launcher options.
  --master URL           Spark master (default {master}).
  --driver-memory SIZE   Driver memory (default {memory}).
  --spark-conf KEY=VALUE Any Spark setting, e.g. --spark-conf spark.executor.memory=2g
                         (repeatable; wins over conf/spark/*.properties). The job's --conf
                         is its YAML config, not a Spark setting.
  --dry-run              Print the complete command, shell-quoted, one argument per line,
                         and exit 0 without running it or building anything.

Relative paths in job arguments are taken from the repository root: the launcher runs there.
A job's result is all that reaches stdout; spark-submit's and the job's log lines go to stderr.

Spark settings come from conf/spark/*.properties (spark-defaults.conf format; edit them):
common.properties for every job, then the file of the master's mode:
  local.properties     local, local[N], local[*]: 4 shuffle partitions, parallelism 4;
                       SPARK_LOCAL_IP=127.0.0.1 unless set. The job reads its own default
                       configuration (conf/local.yaml) unless given --conf.
  loopback.properties  a standalone master on this machine (spark://127.0.0.1:PORT or
                       spark://localhost:PORT, as `cluster up` starts): local's partitions and
                       SPARK_LOCAL_IP, and everything shipped as for a cluster (below).
  cluster.properties   any other master (spark://HOST:PORT, yarn, k8s://URL), client mode:
  --py-files dist/telcorec-VERSION.zip   the telcorec/ package, rebuilt when a file under
                                         telcorec/ is newer than the zip;
  --archives dist/telcorec-env-VERSION.tar.gz#environment
                                         .venv packed by venv-pack (~700 MB, a minute or two;
                                         without Spark's jars), rebuilt when .venv changed;
                                         executors run ./environment/bin/python;
  and --conf conf/cluster.yaml added to the job's arguments when you gave no --conf.
  delta.properties (Delta's package, SQL extension and catalog) only when the job's config (its
  --conf, else conf/cluster.yaml) has storage.writer spark or auto. Spark resolves the package
  from Maven at submit time, so this machine needs Maven Central or a mirror
  (TELCOREC_SPARK_REPOSITORIES) or the jars (TELCOREC_DELTA_JARS). Without either, use
  storage.writer: delta-rs, which needs no jars at all.

Environment:
  JAVA_HOME                    Used when it points to Java 17; otherwise the launcher looks
                               for a Java 17 and sets JAVA_HOME to it for the run.
  SPARK_LOCAL_IP               Local runs and tests default it to 127.0.0.1.
  SPARK_CONF_DIR               A directory whose spark-defaults.conf adds Spark settings
                               (below conf/spark/*.properties and --spark-conf).
  TELCOREC_SPARK_REPOSITORIES  Cluster runs: extra Maven repositories (comma-separated URLs)
                               for the Delta package, e.g. your company's mirror.
  TELCOREC_DELTA_JARS          Cluster runs: comma-separated Delta jars (delta-spark_2.13 and
                               delta-storage 4.0.1) shipped with --jars instead.
  TELCOREC_PYTHON_PREFIX       Cluster runs: venv-pack --python-prefix, the prefix of Python
                               3.11 on the cluster nodes (the packed env links to it). Delete
                               dist/telcorec-env-*.tar.gz after changing it.

Examples:
  ./spark-submit.sh test                          # fast tests, as CI runs them
  ./spark-submit.sh test --all -x -k delta        # every marker, stop at first failure
  ./spark-submit.sh pipeline                      # the whole pipeline on local[2]
  ./spark-submit.sh pipeline --conf conf/local.yaml --master 'local[*]' --driver-memory 8g
  ./spark-submit.sh sql "SELECT run_date, count(*) AS n FROM offers GROUP BY run_date" --limit 20
  ./spark-submit.sh sql --format csv --output offers.csv "SELECT * FROM latest_offers"
  ./spark-submit.sh --dry-run score --master spark://spark-master:7077
  ./spark-submit.sh score --master yarn --conf conf/cluster.yaml
  ./spark-submit.sh vacuum --dry-run              # vacuum's own dry run: lists orphan files
  ./spark-submit.sh cluster up                    # a standalone master + worker on 127.0.0.1
  ./spark-submit.sh pipeline --master spark://127.0.0.1:7077 --conf conf/cluster-loopback.yaml
  ./spark-submit.sh cluster down
"""


def usage() -> str:
    return USAGE.format(jobs=" ".join(job_names(REPO / "jobs")), master=DEFAULT_MASTER,
                        memory=DEFAULT_DRIVER_MEMORY)


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def runs_without_setup(argv: list[str]) -> bool:
    """Whether `argv` can run with the Python at hand, without Java or an up-to-date .venv:
    help, usage errors, cluster status/down, and --dry-run inside .venv's Python."""
    if not argv or argv[0] in HELP or argv[0] == "--version":
        return True
    if argv[0] == "test":
        return False
    if argv[0] == "cluster":
        return len(argv) < 2 or argv[1] in ("down", "status", *HELP) or any(
            a in HELP for a in argv[2:])
    try:
        request = parse_job_command(argv, REPO / "jobs")
    except UsageError:
        return True
    return request.options.dry_run and in_venv()


def setup_needed(argv: list[str]) -> int:
    """The answer to spark-submit.sh's --runs-without-setup: 0 when `argv` runs with the Python
    at hand, 3 when it needs .venv but no Java (a Python-only job), 1 when it needs both."""
    if runs_without_setup(argv):
        return 0
    try:
        return 3 if python_only(parse_job_command(argv, REPO / "jobs")) else 1
    except UsageError:
        return 1


def run_tests(args: list[str]) -> int:
    cmd = [VENV_PYTHON, "-m", "pytest"]
    if "--all" in args:
        # An empty -m expression selects every test: it overrides the marker filter that
        # pytest.ini's addopts puts earlier on the command line (a later -m wins).
        cmd += ["-m", ""]
    cmd += [a for a in args if a != "--all"]
    env = {**os.environ, **spark_env("local", VENV_PYTHON, os.environ)}
    rc = subprocess.call(cmd, cwd=REPO, env=env)
    if rc == 5:
        log("error: pytest collected no tests (exit code 5): check tests/ and the -m/-k selection.")
    return rc


def run_cluster(args: list[str]) -> int:
    if not args:
        print(cluster.USAGE, file=sys.stderr, end="")
        return 2
    command, rest = args[0], args[1:]
    if command in HELP or any(a in HELP for a in rest):
        print(cluster.USAGE, end="")
        return 0
    commands = ("up", "add-worker", "down", "status")
    if command not in commands:
        raise UsageError(f"unknown cluster command {command!r}: {', '.join(commands)} "
                         "(./spark-submit.sh cluster --help)")
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        print("no .venv yet, so no cluster either (./spark-submit.sh cluster up)")
        return 1 if command == "status" else 0
    layout = Layout(REPO / "work" / "cluster", Path(spec.origin).parent)
    env = {**os.environ, **spark_env("loopback", VENV_PYTHON, os.environ)}
    if command == "status":
        if rest:
            raise UsageError("cluster status takes no options")
        return cluster.status(layout)
    if command == "down":
        return cluster.down(layout, rest)
    return (cluster.up if command == "up" else cluster.add_worker)(layout, rest, env)


def _cluster_note(plan: Plan, master: str) -> None:
    prefix = os.environ.get("TELCOREC_PYTHON_PREFIX") or sys.base_prefix
    log(f"submitting to {master} (client mode: the driver runs here with .venv's python).",
        f"Python code: telcorec/ travels as --py-files {plan.py_files}.",
        "Native dependencies (pyarrow, torch, lightfm's OpenMP build, deltalake, ...) travel in",
        f"the packed virtualenv {plan.archive}, unpacked on every executor as ./environment;",
        f"its python links to {prefix}: the nodes need Python 3.11 there (or set",
        "TELCOREC_PYTHON_PREFIX and repack).",
        f"Delta tables: storage.writer is {plan.writer} in {plan.conf}"
        + (" (no Delta jars needed)." if plan.writer == "delta-rs" else
           ": Delta's jars from conf/spark/delta.properties (Maven or TELCOREC_DELTA_JARS)."))


def run_submitted(plan: Plan) -> int:
    """Run a spark-submit command with a clean stdout. spark-submit copies what the Python
    driver writes to stderr (its log lines) onto its own stdout, so everything spark-submit
    prints goes to stderr here, and the job's result (what it prints as such: telcorec/cli.py,
    telcorec/sql.py) reaches stdout through the file named in TELCOREC_RESULT_FILE."""
    fd, result = tempfile.mkstemp(prefix="telcorec-result-")
    os.close(fd)
    try:
        proc = subprocess.Popen(plan.argv, cwd=REPO, stdout=sys.stderr,
                                env={**os.environ, **plan.env, RESULT_FILE: result},
                                # dies with the launcher: kill -9 of the command ends the job
                                preexec_fn=process.die_with_parent)
        try:
            rc = proc.wait()
        except KeyboardInterrupt:   # the job got the same Ctrl-C: let it stop in its own way
            rc = proc.wait()
        with open(result, encoding="utf-8") as f:
            shutil.copyfileobj(f, sys.stdout)
        return rc
    finally:
        os.unlink(result)


def run_job(argv: list[str]) -> int:
    request = parse_job_command(argv, REPO / "jobs")
    plan = build_plan(request, REPO, VENV_PYTHON, environment.project_version(REPO / "setup.py"),
                      lambda conf: environment.config_writer(REPO / conf), os.environ)
    if request.options.dry_run:
        print(render_dry_run(plan, REPO, os.environ.get("JAVA_HOME")), end="")
        return 0
    if plan.py_files and plan.archive:
        zip_path, archive = REPO / plan.py_files, REPO / plan.archive
        if environment.pyfiles_stale(zip_path, REPO / "telcorec"):
            environment.build_pyfiles(zip_path, REPO / "telcorec")
        else:
            log(f"reusing {plan.py_files} (telcorec/ unchanged since it was built)")
        if environment.env_archive_stale(archive, VENV, VENV / ".telcorec-setup.sha256"):
            environment.build_env_archive(archive, VENV, os.environ.get("TELCOREC_PYTHON_PREFIX"))
        else:
            log(f"reusing {plan.archive} (.venv unchanged since it was packed)")
        _cluster_note(plan, request.options.master)
    if plan.mode != "python":
        return run_submitted(plan)
    os.chdir(REPO)
    sys.stdout.flush()
    os.execve(plan.argv[0], plan.argv, {**os.environ, **plan.env})


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["--runs-without-setup"]:
            return setup_needed(argv[1:])
        if not argv:
            print(usage(), file=sys.stderr, end="")
            return 2
        if argv[0] in HELP:
            print(usage(), end="")
            return 0
        if argv[0] == "--version":
            print(f"telcorec {telcorec.__version__}")
            return 0
        if argv[0] == "test":
            return run_tests(argv[1:])
        if argv[0] == "cluster":
            return run_cluster(argv[1:])
        return run_job(argv)
    except UsageError as exc:
        log(f"error: {exc}")
        return 2
    except LaunchError as exc:
        log(f"error: {exc.args[0]}", *exc.args[1:])
        return 1
    except KeyboardInterrupt:
        return 130
