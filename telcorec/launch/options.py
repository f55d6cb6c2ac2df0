"""The command line of a job: the launcher's own options, the job's name and its arguments.

The rule, for `./spark-submit.sh [LAUNCHER OPTIONS] [submit] JOB [ARGS...]`:
- before the job name only launcher options may appear, and they are always the launcher's;
- after it, a launcher option is the launcher's unless the job defines an option of the same
  name itself (jobs/vacuum.py has its own --dry-run): then it goes to the job;
- a lone `--` ends the launcher options: all that follows goes to the job as it is.
Which options a job defines is read from jobs/JOB.py without running it: the string literals
starting with "-" given to an `add_argument(...)` call.
"""
from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from telcorec.launch.messages import UsageError

DEFAULT_MASTER = "local[2]"
DEFAULT_DRIVER_MEMORY = "4g"

# The launcher's options for jobs, and whether each takes a value.
LAUNCHER_OPTIONS = {"--master": True, "--driver-memory": True, "--spark-conf": True,
                    "--dry-run": False}


@dataclass(frozen=True)
class LaunchOptions:
    master: str = DEFAULT_MASTER
    driver_memory: str = DEFAULT_DRIVER_MEMORY
    spark_confs: tuple[tuple[str, str], ...] = ()  # (key, value) in the order given
    dry_run: bool = False


@dataclass(frozen=True)
class JobRequest:
    job: str                     # NAME of jobs/NAME.py
    job_args: tuple[str, ...]    # what the job receives, unchanged and in order
    options: LaunchOptions


def job_names(jobs_dir: Path) -> list[str]:
    """Names of the jobs in jobs/ (files NAME.py, skipping _private.py)."""
    return sorted(p.stem for p in jobs_dir.glob("*.py") if not p.stem.startswith("_"))


def job_options(job_file: Path) -> frozenset[str]:
    """The option strings jobs/JOB.py gives to `add_argument(...)` (read, never run)."""
    found = set()
    for node in ast.walk(ast.parse(job_file.read_text(), filename=str(job_file))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument"):
            found.update(arg.value for arg in node.args if isinstance(arg, ast.Constant)
                         and isinstance(arg.value, str) and arg.value.startswith("-"))
    return frozenset(found)


def _spark_conf(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.startswith("spark.") or key == "spark.":
        raise UsageError(f"--spark-conf needs KEY=VALUE with a spark.* key, got {text!r}")
    return key, value


def _take_option(args: list[str], i: int, options: LaunchOptions) -> tuple[LaunchOptions, int]:
    """Apply the launcher option at args[i]; returns the new options and the next index."""
    name, sep, value = args[i].partition("=")
    if not LAUNCHER_OPTIONS[name]:
        if sep:
            raise UsageError(f"{name} takes no value, got {args[i]!r}")
        return dataclasses.replace(options, dry_run=True), i + 1
    if not sep:
        if i + 1 >= len(args):
            raise UsageError(f"{name} needs a value (see ./spark-submit.sh --help)")
        value, i = args[i + 1], i + 1
    if not value:
        raise UsageError(f"{name} needs a non-empty value")
    if name == "--master":
        options = dataclasses.replace(options, master=value)
    elif name == "--driver-memory":
        options = dataclasses.replace(options, driver_memory=value)
    else:
        options = dataclasses.replace(
            options, spark_confs=options.spark_confs + (_spark_conf(value),))
    return options, i + 1


def _leading_options(args: list[str], i: int, options: LaunchOptions
                     ) -> tuple[LaunchOptions, int]:
    while i < len(args) and args[i].startswith("-"):
        if args[i].partition("=")[0] not in LAUNCHER_OPTIONS:
            raise UsageError(f"unknown launcher option {args[i]!r} before the job name "
                             "(see ./spark-submit.sh --help)")
        options, i = _take_option(args, i, options)
    return options, i


def parse_job_command(args: list[str], jobs_dir: Path) -> JobRequest:
    """`[LAUNCHER OPTIONS] [submit] JOB [ARGS...]` -> the job and what goes where."""
    options, i = _leading_options(args, 0, LaunchOptions())
    if i < len(args) and args[i] == "submit":
        options, i = _leading_options(args, i + 1, options)
    names = job_names(jobs_dir)
    if i >= len(args):
        raise UsageError(f"no job given. Jobs: {' '.join(names)}")
    job = args[i].removeprefix("jobs/").removesuffix(".py")
    if job in ("test", "cluster"):
        raise UsageError(f"launcher options go with jobs, not with `{job}` "
                         "(see ./spark-submit.sh --help)")
    if job not in names:
        raise UsageError(f"unknown job {job!r}: no file jobs/{job}.py. Jobs: {' '.join(names)} "
                         "(to run the tests: ./spark-submit.sh test)")
    own = job_options(jobs_dir / f"{job}.py")
    job_args: list[str] = []
    i += 1
    while i < len(args):
        name = args[i].partition("=")[0]
        if args[i] == "--":
            job_args.extend(args[i + 1:])
            break
        if name in LAUNCHER_OPTIONS and name not in own:
            options, i = _take_option(args, i, options)
        else:
            job_args.append(args[i])
            i += 1
    return JobRequest(job, tuple(job_args), options)
