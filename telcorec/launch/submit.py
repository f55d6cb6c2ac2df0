"""A job's command line: the spark-submit arguments, the environment, the --dry-run text.

The Spark settings come from conf/spark/*.properties (spark-defaults.conf format), read in
this order, a later value winning: common.properties, then the mode's file (local, loopback or
cluster), then delta.properties when the job's config writes with Spark's Delta source, then
the user's --spark-conf. Pure functions: the caller builds the artifacts and runs the command.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from telcorec.launch.options import JobRequest

SPARK_CONF_DIR = Path("conf") / "spark"   # relative to the repository root
CLUSTER_CONF = "conf/cluster.yaml"        # the job's --conf on a cluster when none is given
SPARK_SUBMIT = ".venv/bin/spark-submit"   # pyspark's own, relative to the repository root

# Jobs that run as `python jobs/NAME.py`, without spark-submit: `sql` on its embedded engine,
# `runs`, which lists the attempts from the Delta log with delta-rs. Put a job's name here and
# it gets no Spark arguments at all.
PYTHON_ONLY_JOBS: frozenset[str] = frozenset({"sql", "runs"})

# Properties that spark-submit takes as options of its own; shown as those options.
_SUBMIT_FLAGS = {"spark.jars.packages": "--packages", "spark.jars.repositories": "--repositories",
                 "spark.jars": "--jars"}

_LOCAL = re.compile(r"local(\[(\d+|\*)(,\d+)?\])?")        # local, local[N], local[*], local[N,F]
_LOOPBACK = re.compile(r"spark://(127\.[0-9.]+|localhost)(:\d+)?")


def spark_mode(master: str) -> str:
    """local (local[...]), loopback (a standalone master on this machine, as `cluster up`
    starts) or cluster (any other master: spark://HOST, yarn, k8s://...)."""
    if _LOCAL.fullmatch(master):
        return "local"
    return "loopback" if _LOOPBACK.fullmatch(master) else "cluster"


def read_properties(path: Path) -> dict[str, str]:
    """A spark-defaults.conf style file: `key value` or `key=value` per line, # comments."""
    props = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        match = re.fullmatch(r"([^\s=:]+)\s*[\s=:]\s*(.*)", line)
        if match is None:
            raise ValueError(f"{path}:{number}: expected `key value`, got {raw!r}")
        props[match.group(1)] = match.group(2)
    return props


def job_conf(job_args: tuple[str, ...]) -> str | None:
    """The job's YAML config: its last --conf FILE or --conf=FILE, else None."""
    conf = None
    for i, arg in enumerate(job_args):
        if arg == "--conf" and i + 1 < len(job_args):
            conf = job_args[i + 1]
        elif arg.startswith("--conf="):
            conf = arg.removeprefix("--conf=")
    return conf


@dataclass(frozen=True)
class Plan:
    """What the launcher runs for a job, from the repository root."""
    argv: list[str]
    env: dict[str, str]                 # set for the command, on top of the caller's
    mode: str
    py_files: str | None = None         # cluster modes: artifacts to build before running
    archive: str | None = None
    conf: str | None = None             # cluster modes: the config that decided the writer
    writer: str | None = None
    notes: list[str] = field(default_factory=list)


def delta_properties(spark_conf_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Delta's jars and SQL extension; TELCOREC_DELTA_JARS ships jars instead of the Maven
    package, TELCOREC_SPARK_REPOSITORIES adds Maven mirrors."""
    props = read_properties(spark_conf_dir / "delta.properties")
    if environ.get("TELCOREC_DELTA_JARS"):
        props.pop("spark.jars.packages", None)
        props["spark.jars"] = environ["TELCOREC_DELTA_JARS"]
    elif environ.get("TELCOREC_SPARK_REPOSITORIES"):
        props["spark.jars.repositories"] = environ["TELCOREC_SPARK_REPOSITORIES"]
    return props


def spark_env(mode: str, venv_python: str, environ: Mapping[str, str]) -> dict[str, str]:
    env = {"PYSPARK_PYTHON": venv_python, "PYSPARK_DRIVER_PYTHON": venv_python}
    # Local and loopback only: executors on other hosts could not reach a driver on 127.0.0.1.
    if mode != "cluster":
        env["SPARK_LOCAL_IP"] = environ.get("SPARK_LOCAL_IP") or "127.0.0.1"
    return env


def python_only(request: JobRequest) -> bool:
    """Whether the job runs without spark-submit: a Python-only job, unless it is `sql` asked
    for Spark's engine (its last --engine wins, as argparse reads it)."""
    if request.job not in PYTHON_ONLY_JOBS:
        return False
    if request.job != "sql":
        return True
    engine = "duckdb"
    for i, arg in enumerate(request.job_args):
        if arg == "--engine" and i + 1 < len(request.job_args):
            engine = request.job_args[i + 1]
        elif arg.startswith("--engine="):
            engine = arg.removeprefix("--engine=")
    return engine != "spark"


def build_plan(request: JobRequest, repo: Path, venv_python: str, version: str,
               writer_of: Callable[[str], str], environ: Mapping[str, str]) -> Plan:
    """The command for `request`. `writer_of(conf)` reads storage.writer of a YAML config
    (called in cluster modes only); `version` names the cluster artifacts."""
    job_file = f"jobs/{request.job}.py"
    if python_only(request):
        return Plan([venv_python, job_file, *request.job_args], {}, "python")
    opts = request.options
    mode = spark_mode(opts.master)
    conf_dir = repo / SPARK_CONF_DIR
    props = {**read_properties(conf_dir / "common.properties"),
             **read_properties(conf_dir / f"{mode}.properties")}
    argv = [SPARK_SUBMIT, "--master", opts.master, "--driver-memory", opts.driver_memory]
    job_args = list(request.job_args)
    shipped: dict = {}   # the Plan fields of the cluster modes
    if mode != "local":
        conf = job_conf(request.job_args)
        if conf is None:  # the job's own default is conf/local.yaml: not for a cluster
            conf = CLUSTER_CONF
            job_args += ["--conf", CLUSTER_CONF]
        writer = writer_of(conf)
        py_files, archive = f"dist/telcorec-{version}.zip", f"dist/telcorec-env-{version}.tar.gz"
        argv += ["--py-files", py_files, "--archives", f"{archive}#environment"]
        props = {"spark.pyspark.python": "./environment/bin/python",
                 "spark.pyspark.driver.python": venv_python, **props}
        if writer != "delta-rs":   # spark, or auto: Spark's Delta source when it is there
            props.update(delta_properties(conf_dir, environ))
        jars = "no Delta jars" if writer == "delta-rs" else "Delta jars and extension added"
        shipped = dict(py_files=py_files, archive=archive, conf=conf, writer=writer, notes=[
            f"storage.writer in {conf}: {writer} ({jars}). {py_files} and {archive} are not "
            "built under --dry-run; a real run builds them when missing or out of date "
            "(venv-pack: 1-2 min, ~700 MB)."])
    props.update(opts.spark_confs)   # the user's --spark-conf wins
    for key, value in props.items():
        argv += [_SUBMIT_FLAGS[key], value] if key in _SUBMIT_FLAGS else ["--conf", f"{key}={value}"]
    argv += [job_file, *job_args]
    return Plan(argv, spark_env(mode, venv_python, environ), mode, **shipped)


def render_dry_run(plan: Plan, repo: Path, java_home: str | None) -> str:
    """The plan as shell lines, one argument per line, each shell-quoted."""
    lines = ["# --dry-run: nothing was run. The launcher would run, from the repository root:",
             f"cd {shlex.quote(str(repo))}"]
    if plan.env:
        lines.append("export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in plan.env.items()))
    if java_home:
        lines.append(f"export JAVA_HOME={shlex.quote(java_home)}")
    lines += [f"# {note}" for note in plan.notes]
    quoted = [shlex.quote(arg) for arg in plan.argv]
    lines.append(" \\\n    ".join(quoted))
    return "\n".join(lines) + "\n"
