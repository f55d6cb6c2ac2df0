#!/usr/bin/env bash
# spark-submit.sh: the one entry point for running telcorec.
#
# On every run (except --help, and --dry-run when .venv already exists) it makes sure that
#   * Python 3.11 is there (it is what the pinned stack in setup.py is built for),
#   * Java 17 is there (Spark 4.0 runs on it),
#   * the project virtualenv .venv exists and holds `pip install -e '.[test]'`, re-installed
#     only when setup.py changes (its sha256 is kept in .venv/.telcorec-setup.sha256),
# and then either runs the test suite (`test`) or submits a job from jobs/ with the
# virtualenv's own spark-submit (pyspark ships it), locally or to a cluster.
#
# Run `./spark-submit.sh --help` for the commands and options.
#
# Conventions in this file: every command line is built as a bash array and run as "${cmd[@]}",
# never as a string, so arguments such as SQL queries keep their quoting; progress and notes
# go to stderr so that a job's stdout stays clean.
set -euo pipefail

# ----------------------------------------------------------------------------------------------
# Constants
# ----------------------------------------------------------------------------------------------
REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
VENV_DIR="$REPO_ROOT/.venv"
# Absolute path and NOT symlink-resolved: resolving .venv/bin/python would land on the base
# interpreter, which does not see the virtualenv's packages.
VENV_PY="$VENV_DIR/bin/python"
STAMP="$VENV_DIR/.telcorec-setup.sha256"

DEFAULT_MASTER='local[2]'
DEFAULT_DRIVER_MEMORY='4g'
CLUSTER_CONF='conf/cluster.yaml'
# Delta's JVM side: the Maven artifact matching delta-spark 4.0.1 / Spark 4.0 (Scala 2.13).
DELTA_PACKAGE='io.delta:delta-spark_2.13:4.0.1'

# `cluster up|down|status`: a standalone master and workers on this machine. Their logs, PID
# files and work directories live here (work/ is gitignored).
CLUSTER_DIR="$REPO_ROOT/work/cluster"
CLUSTER_HOST='127.0.0.1'
DEFAULT_CLUSTER_PORT=7077
DEFAULT_CLUSTER_WEBUI_PORT=8080
DEFAULT_CLUSTER_WORKERS=1
DEFAULT_CLUSTER_CORES=2
DEFAULT_CLUSTER_MEMORY='4g'
DEFAULT_CLUSTER_TIMEOUT=90
MASTER_CLASS='org.apache.spark.deploy.master.Master'
WORKER_CLASS='org.apache.spark.deploy.worker.Worker'

APT_UPDATED=0   # apt-get update runs at most once per launcher run
PYTHON311=''    # set by find_python311

# ----------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------
log() { printf '[telcorec] %s\n' "$*" >&2; }
die() {
    printf '[telcorec] error: %s\n' "$1" >&2
    shift
    local line
    for line in "$@"; do printf '[telcorec]   %s\n' "$line" >&2; done
    exit 1
}

# Space-separated names of the jobs in jobs/ (files jobs/NAME.py, skipping _private.py).
job_names() {
    local f name names=()
    for f in "$REPO_ROOT"/jobs/*.py; do
        [[ -f $f ]] || continue
        name="${f##*/}"
        name="${name%.py}"
        [[ $name == _* ]] && continue
        names+=("$name")
    done
    if ((${#names[@]})); then
        printf '%s' "${names[*]}"
    else
        printf '(none yet: jobs/ has no .py files)'
    fi
}

usage() {
    cat <<EOF
Usage: ./spark-submit.sh COMMAND [ARGS...]

Runs telcorec's tests and Spark jobs from the repository root. Before each run it checks for
Python 3.11 and Java 17 (installing them with apt-get when run as root) and keeps the
virtualenv .venv up to date with \`pip install -e '.[test]'\` (re-installed only when
setup.py changes).

Commands:
  test [--all] [PYTEST_ARGS...]
        Run the test suite with .venv's pytest; other arguments go to pytest unchanged.
        Tests marked slow, benchmark, integration or cluster are skipped by default
        (pytest.ini); --all runs them too (cluster: tests/test_cluster.py starts its own
        standalone cluster, ~20 min). Exits with pytest's exit code; collecting no test at
        all (pytest's code 5) counts as a failure.
  pipeline [ARGS...]
        Submit jobs/pipeline.py (same as: ./spark-submit.sh submit pipeline ARGS...).
  sql "QUERY" [--conf FILE]
        Submit jobs/sql.py with QUERY as its first argument (quote the query).
  JOB [ARGS...]  or  submit JOB [ARGS...]
        Submit jobs/JOB.py with ARGS.
  cluster up|add-worker|down|status [OPTIONS]
        A standalone Spark cluster (master + workers) on 127.0.0.1 to submit to; logs and
        PIDs under work/cluster/. ./spark-submit.sh cluster --help tells more.
  -h, --help
        Show this help.

Jobs available now (jobs/*.py): $(job_names)

Launcher options, for pipeline, sql and JOB. They may appear anywhere after the command and
are removed before the job sees its arguments; every other argument goes to the job
unchanged, after the job file. A lone -- ends the launcher options: all that follows goes to
the job as it is.
  --master URL           Spark master (default ${DEFAULT_MASTER}).
  --driver-memory SIZE   Driver memory (default ${DEFAULT_DRIVER_MEMORY}).
  --spark-conf KEY=VALUE Any Spark setting, e.g. --spark-conf spark.executor.memory=2g
                         (repeatable; given after the launcher's own, so it wins). The
                         job's --conf is its YAML config, not a Spark setting.
  --dry-run              Print the complete command, shell-quoted, one argument per line,
                         and exit 0 without running it or building anything.

Relative paths in job arguments are taken from the repository root: the launcher runs there.

Local masters (local, local[N], local[*]) run on this machine with
  spark.sql.shuffle.partitions=4 and spark.default.parallelism=4 (the default 200 shuffle
  partitions make hundreds of tiny tasks on a laptop), Arrow enabled, log level WARN and
  SPARK_LOCAL_IP=127.0.0.1 unless already set. The job reads its own default configuration
  (conf/local.yaml) unless given --conf.

A standalone master on this machine (spark://127.0.0.1:PORT or spark://localhost:PORT, as
\`cluster up\` starts) runs on the same cores: it gets the same shuffle settings and
SPARK_LOCAL_IP, and everything below except the 200 shuffle partitions.

Any other master (spark://HOST:PORT, yarn, k8s://URL) submits in client mode with
  --py-files dist/telcorec-VERSION.zip          the telcorec/ package, rebuilt when a file
                                                under telcorec/ is newer than the zip;
  --archives dist/telcorec-env-VERSION.tar.gz#environment
                                                .venv packed by venv-pack (~490 MB, about a
                                                minute; without Spark's jars), rebuilt when
                                                .venv changed; executors run
                                                ./environment/bin/python;
  spark.sql.shuffle.partitions=200; and --conf ${CLUSTER_CONF} added to the job's
  arguments when you gave no --conf.
  Delta's jars only when the job's config (its --conf, else ${CLUSTER_CONF}) has
  storage.writer spark or auto (read with telcorec.config):
  --packages ${DELTA_PACKAGE} plus Delta's SQL extension and catalog.
  They are resolved from Maven at submit time, so this machine needs Maven Central or a
  mirror (TELCOREC_SPARK_REPOSITORIES) or the jars (TELCOREC_DELTA_JARS). Without either,
  use storage.writer: delta-rs, which needs no jars at all.

Environment:
  JAVA_HOME                    Used when it points to Java 17; otherwise the launcher looks
                               for a Java 17 and sets JAVA_HOME to it for the run.
  SPARK_LOCAL_IP               Local runs and tests default it to 127.0.0.1.
  SPARK_CONF_DIR               A directory whose spark-defaults.conf adds Spark settings.
  TELCOREC_SPARK_REPOSITORIES  Cluster runs: extra Maven repositories (comma-separated URLs)
                               for --packages, e.g. your company's mirror.
  TELCOREC_DELTA_JARS          Cluster runs: comma-separated Delta jars (delta-spark_2.13 and
                               delta-storage 4.0.1) shipped with --jars instead of --packages.
  TELCOREC_PYTHON_PREFIX       Cluster runs: venv-pack --python-prefix, the prefix of Python
                               3.11 on the cluster nodes (the packed env links to it). Delete
                               dist/telcorec-env-*.tar.gz after changing it.

Examples:
  ./spark-submit.sh test                          # fast tests, as CI runs them
  ./spark-submit.sh test --all -x -k delta        # every marker, stop at first failure
  ./spark-submit.sh pipeline                      # the whole pipeline on local[2]
  ./spark-submit.sh pipeline --conf conf/local.yaml --master 'local[*]' --driver-memory 8g
  ./spark-submit.sh sql "SELECT run_date, count(*) AS n FROM offers GROUP BY run_date" --limit 20
  ./spark-submit.sh score --master spark://spark-master:7077 --dry-run
  ./spark-submit.sh score --master yarn --conf conf/cluster.yaml
  ./spark-submit.sh cluster up                    # a standalone master + worker on 127.0.0.1
  ./spark-submit.sh pipeline --master spark://127.0.0.1:7077 --conf conf/cluster-loopback.yaml
  ./spark-submit.sh cluster down
EOF
}

# ----------------------------------------------------------------------------------------------
# Installing system packages (root + apt-get only)
# ----------------------------------------------------------------------------------------------
can_apt() { [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; }

apt_install() {
    if ((APT_UPDATED == 0)); then
        log "apt-get update ..."
        DEBIAN_FRONTEND=noninteractive apt-get update >&2
        APT_UPDATED=1
    fi
    log "apt-get install -y $* ..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2
}

# ----------------------------------------------------------------------------------------------
# Java 17
# ----------------------------------------------------------------------------------------------
# Major version of the java binary $1 ("1.8.0_292" -> 8, "17.0.15" -> 17, "21" -> 21).
java_major() {
    local out re='version "([0-9]+)(\.([0-9]+))?'
    out="$("$1" -version 2>&1)" || return 1
    [[ $out =~ $re ]] || return 1
    if [[ ${BASH_REMATCH[1]} == 1 ]]; then
        printf '%s\n' "${BASH_REMATCH[3]}"
    else
        printf '%s\n' "${BASH_REMATCH[1]}"
    fi
}

is_java17() {
    local major
    [[ -x $1 ]] || return 1
    major="$(java_major "$1")" || return 1
    [[ $major == 17 ]]
}

# Prints the home directory of some Java 17 on this machine, or fails.
find_java17_home() {
    local java candidates=()
    if java="$(command -v java 2>/dev/null)"; then
        candidates+=("$(readlink -f "$java" 2>/dev/null || printf '%s' "$java")")
    fi
    if [[ -x /usr/libexec/java_home ]]; then   # macOS
        java="$(/usr/libexec/java_home -v 17 2>/dev/null)" && candidates+=("$java/bin/java")
    fi
    for java in /usr/lib/jvm/*/bin/java; do
        [[ -e $java ]] && candidates+=("$java")
    done
    for java in ${candidates[@]+"${candidates[@]}"}; do
        if is_java17 "$java"; then
            printf '%s\n' "${java%/bin/java}"
            return 0
        fi
    done
    return 1
}

ensure_java() {
    # Spark starts "$JAVA_HOME/bin/java" when JAVA_HOME is set, else the java on PATH.
    local java home
    if [[ -n ${JAVA_HOME:-} ]]; then
        is_java17 "$JAVA_HOME/bin/java" && return 0
    elif java="$(command -v java 2>/dev/null)" && is_java17 "$java"; then
        return 0
    fi
    if ! home="$(find_java17_home)"; then
        if ! can_apt; then
            die "Java 17 is needed (Spark 4.0) and none was found." \
                "Install a Java 17 runtime, for example:" \
                "  Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless" \
                "  Fedora/RHEL:   sudo dnf install -y java-17-openjdk-headless" \
                "  macOS:         brew install openjdk@17" \
                "then point JAVA_HOME at it (export JAVA_HOME=/path/to/jdk-17) and run again."
        fi
        log "Java 17 not found: installing openjdk-17-jre-headless ..."
        apt_install openjdk-17-jre-headless
        home="$(find_java17_home)" || die "openjdk-17-jre-headless was installed but no Java 17 was found;" \
            "set JAVA_HOME to a Java 17 installation and run again."
    fi
    if [[ -n ${JAVA_HOME:-} ]]; then
        log "JAVA_HOME=$JAVA_HOME is not Java 17: using JAVA_HOME=$home for this run"
    else
        log "no Java 17 on PATH: using JAVA_HOME=$home for this run"
    fi
    export JAVA_HOME="$home"
}

# ----------------------------------------------------------------------------------------------
# Python 3.11 and the virtualenv
# ----------------------------------------------------------------------------------------------
# True when $1 is Python 3.11 and can create virtualenvs (Debian splits ensurepip into the
# python3.11-venv package; without it `python3.11 -m venv` fails).
python311_ok() {
    "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1
}

find_python311() {
    local name path
    for name in python3.11 python3; do
        if path="$(command -v "$name" 2>/dev/null)" && python311_ok "$path"; then
            PYTHON311="$path"
            return 0
        fi
    done
    return 1
}

ensure_python311() {
    find_python311 && return 0
    if ! can_apt; then
        die "Python 3.11 is needed (with its venv module) and was not found as python3.11 or python3." \
            "Get it with pyenv:  pyenv install 3.11 && pyenv shell 3.11" \
            "or your package manager, for example:" \
            "  Debian/Ubuntu: sudo apt-get install -y python3.11 python3.11-venv" \
            "  Fedora/RHEL:   sudo dnf install -y python3.11" \
            "  macOS:         brew install python@3.11" \
            "then run again."
    fi
    log "Python 3.11 not found: installing python3.11 and python3.11-venv ..."
    apt_install python3.11 python3.11-venv
    find_python311 || die "python3.11 was installed but is not on PATH or cannot create a virtualenv."
}

venv_ok() {
    [[ -x $VENV_PY ]] &&
        "$VENV_PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1
}

sha256_of() {
    "$VENV_PY" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
}

ensure_venv() {
    [[ -f $REPO_ROOT/setup.py ]] || die "no setup.py in $REPO_ROOT: nothing to install."
    if ! venv_ok; then
        ensure_python311
        if [[ -e $VENV_DIR ]]; then
            log "recreating .venv with $PYTHON311 (the existing one does not run Python 3.11) ..."
            "$PYTHON311" -m venv --clear "$VENV_DIR"
        else
            log "creating .venv with $PYTHON311 ..."
            "$PYTHON311" -m venv "$VENV_DIR"
        fi
    fi

    local want have=''
    want="$(sha256_of "$REPO_ROOT/setup.py")"
    [[ -f $STAMP ]] && have="$(<"$STAMP")"
    [[ $want == "$have" ]] && return 0

    # Environment variables stay as they are: pip finds the CPU build of torch through
    # PIP_FIND_LINKS on machines that set it.
    if [[ -z $have ]]; then
        log "upgrading pip, setuptools and wheel in .venv ..."
        "$VENV_PY" -m pip install --upgrade pip setuptools wheel >&2
        log "installing the project (first run takes a few minutes) ..."
    else
        log "setup.py changed: re-installing the project ..."
    fi
    (cd "$REPO_ROOT" && "$VENV_PY" -m pip install -e '.[test]') >&2
    printf '%s\n' "$want" >"$STAMP"
}

setup() {
    ensure_java
    ensure_venv
}

# ----------------------------------------------------------------------------------------------
# Spark environment
# ----------------------------------------------------------------------------------------------
is_local_master() {
    # local, local[N], local[*], and local[N,F] / local[*,F] (F = task retries)
    [[ $1 =~ ^local(\[([0-9]+|\*)(,[0-9]+)?\])?$ ]]
}

is_loopback_master() {  # a standalone master on this machine, e.g. from `cluster up`
    [[ $1 =~ ^spark://(127\.[0-9.]+|localhost)(:[0-9]+)?$ ]]
}

export_spark_env() {  # $1: local|loopback|cluster
    export PYSPARK_PYTHON="$VENV_PY"
    export PYSPARK_DRIVER_PYTHON="$VENV_PY"
    # Only for local runs and a master on 127.0.0.1: a client-mode driver bound to 127.0.0.1
    # could not be reached by executors on other hosts. (Without it Spark binds to the first
    # non-loopback interface when the host name resolves to 127.0.0.1.)
    if [[ $1 == local || $1 == loopback ]]; then
        export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
    elif [[ ${SPARK_LOCAL_IP:-} == 127.* || ${SPARK_LOCAL_IP:-} == localhost ]]; then
        log "warning: SPARK_LOCAL_IP=$SPARK_LOCAL_IP: executors on other hosts cannot reach a driver bound there"
    fi
}

# ----------------------------------------------------------------------------------------------
# Cluster artifacts
# ----------------------------------------------------------------------------------------------
project_version() {
    local version
    version="$(sed -n "s/^[[:space:]]*version[[:space:]]*=[[:space:]]*[\"']\([^\"']*\)[\"'].*/\1/p" \
        "$REPO_ROOT/setup.py" | head -n 1)"
    if [[ -z $version && -x $VENV_PY ]]; then
        version="$(cd "$REPO_ROOT" && "$VENV_PY" setup.py --version 2>/dev/null | tail -n 1)" || version=''
    fi
    [[ -n $version ]] || die "cannot read the version from setup.py"
    printf '%s\n' "$version"
}

# True when the zip $1 is missing or some file under telcorec/ is newer than it.
pyfiles_stale() {
    [[ ! -f $1 ]] ||
        [[ -n "$(find telcorec -name __pycache__ -prune -o -newer "$1" -print -quit)" ]]
}

build_pyfiles() {  # $1: the zip to write (relative to the repository root)
    [[ -d telcorec ]] || die "no telcorec/ package directory in $REPO_ROOT"
    log "building $1 from telcorec/ ..."
    mkdir -p "$(dirname "$1")"
    "$VENV_PY" - telcorec "$1.partial" <<'PY'
import os, sys, zipfile
src, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if not name.endswith((".pyc", ".pyo")):
                path = os.path.join(root, name)
                zf.write(path, path)
PY
    mv -f "$1.partial" "$1"
}

# True when the archive $1 is missing, or the install stamp or site-packages (whose directory
# changes with every package pip adds or removes) is newer than it.
env_archive_stale() {
    local site
    [[ -f $1 && ! $STAMP -nt $1 ]] || return 0
    for site in "$VENV_DIR"/lib/python3*/site-packages; do
        [[ $site -nt $1 ]] && return 0
    done
    return 1
}

build_env_archive() {  # $1: the archive to write (relative to the repository root)
    if [[ ! -x $VENV_DIR/bin/venv-pack ]]; then
        log "installing venv-pack into .venv ..."
        "$VENV_PY" -m pip install venv-pack >&2
    fi
    log "packing .venv into $1 with venv-pack (a minute or two, ~700 MB) ..."
    mkdir -p "$(dirname "$1")"
    # Left out: Spark's own jars (executors run the cluster's Spark; only its Python workers
    # use this environment), and the editable install of telcorec, which points at this
    # checkout: executors import telcorec from the --py-files zip.
    local pack=("$VENV_DIR/bin/venv-pack" -p "$VENV_DIR" -o "$1.partial" --format tar.gz --force
        --exclude 'lib/python*/site-packages/pyspark/jars/*'
        --exclude 'lib/python*/site-packages/__editable__*telcorec*'
        --exclude 'lib/python*/site-packages/__pycache__/__editable__*telcorec*'
        --exclude 'lib/python*/site-packages/telcorec-*.dist-info/*')
    if [[ -n ${TELCOREC_PYTHON_PREFIX:-} ]]; then
        pack+=(--python-prefix "$TELCOREC_PYTHON_PREFIX")
    fi
    if [[ ! -t 2 ]]; then pack+=(--quiet); fi   # its progress bar is for terminals only
    "${pack[@]}" >&2
    chmod a+r "$1.partial"   # venv-pack writes it owner-only
    mv -f "$1.partial" "$1"
}

# storage.writer of the effective config $1 (delta-rs, spark or auto), read with telcorec's own
# loader, so `extends:` and validation are the job's. Fails with the loader's message.
config_writer() {
    local out
    out="$(cd "$REPO_ROOT" && "$VENV_PY" -c '
import sys
from telcorec import config
print(config.load(sys.argv[1]).storage.writer)' "$1" 2>&1)" ||
        die "cannot read storage.writer from $1:" "${out##*$'\n'}"
    printf '%s\n' "${out##*$'\n'}"
}

cluster_note() {  # $1: master, $2: py-files zip, $3: env archive, $4: config, $5: writer
    local base
    base="$("$VENV_PY" -c 'import sys; print(sys.base_prefix)' 2>/dev/null || printf '?')"
    log "submitting to $1 (client mode: the driver runs here with .venv's python)."
    log "  Python code: telcorec/ travels as --py-files $2."
    log "  Native dependencies (pyarrow, torch, lightfm's OpenMP build, deltalake, ...) travel in the"
    log "  packed virtualenv $3, unpacked on every executor as ./environment"
    log "  (--archives ...#environment); executors run ./environment/bin/python. The packed env"
    log "  links its python to ${TELCOREC_PYTHON_PREFIX:-$base}: the nodes need Python 3.11 there"
    log "  (or set TELCOREC_PYTHON_PREFIX and repack)."
    if [[ $5 == delta-rs ]]; then
        log "  Delta tables: storage.writer is delta-rs in $4, so no Delta jars are needed (executors"
        log "  write Parquet files with pyarrow, the driver commits them with delta-rs)."
    elif [[ -n ${TELCOREC_DELTA_JARS:-} ]]; then
        log "  Delta tables: storage.writer is $5 in $4; Delta's jars are shipped with --jars"
        log "  $TELCOREC_DELTA_JARS."
    else
        log "  Delta tables: storage.writer is $5 in $4, so Delta's jars come from Maven via --packages"
        log "  $DELTA_PACKAGE: spark-submit must reach Maven Central or a mirror"
        log "  (TELCOREC_SPARK_REPOSITORIES gives --repositories), or ship the jars with --jars"
        log "  (TELCOREC_DELTA_JARS). Without either, use storage.writer: delta-rs."
    fi
}

# ----------------------------------------------------------------------------------------------
# A standalone cluster on this machine: cluster up|down|status
# ----------------------------------------------------------------------------------------------
# The master and the workers are the pip pyspark's own daemons (bin/spark-class), bound to
# 127.0.0.1. Each one is started in its own session with its working directory in work/cluster/,
# so it outlives this launcher, and whatever it starts (executors, their Python workers) can be
# recognised by that working directory. `up` records each daemon's PID and its settings in
# work/cluster/; `down` stops exactly those PIDs.

cluster_pidfiles() {  # the PID files `up` wrote, workers first, then the master
    local f
    for f in "$CLUSTER_DIR"/worker-*.pid "$CLUSTER_DIR"/master.pid; do
        if [[ -f $f ]]; then printf '%s\n' "$f"; fi
    done
}

# True when PID $1 is alive and is the Spark daemon of class $2 (not a PID reused since, nor
# a zombie, whose command line is gone).
pid_runs_class() {
    local args
    [[ $1 =~ ^[0-9]+$ ]] || return 1
    if [[ -d /proc/self ]]; then
        [[ -r /proc/$1/cmdline ]] || return 1
        args="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
    else
        # -ww: the whole command line (the class name comes after a long class path)
        args="$(ps -ww -p "$1" -o args= 2>/dev/null)" || return 1
    fi
    [[ $args == *"$2"* ]]
}

pidfile_class() {  # $1: a PID file -> the class of the daemon it records
    if [[ ${1##*/} == master.pid ]]; then
        printf '%s\n' "$MASTER_CLASS"
    else
        printf '%s\n' "$WORKER_CLASS"
    fi
}

# PIDs of live processes whose working directory is inside work/cluster/: the daemons and
# what they started (executors and their Python workers). Linux only (/proc).
cluster_processes() {
    [[ -d /proc/self ]] || return 0
    local d cwd
    for d in /proc/[0-9]*; do
        cwd="$(readlink "$d/cwd" 2>/dev/null)" || continue
        if [[ $cwd == "$CLUSTER_DIR" || $cwd == "$CLUSTER_DIR"/* ]]; then
            printf '%s\n' "${d#/proc/}"
        fi
    done
}

# Reads work/cluster/cluster.env (written by `up`) into CL_PORT, CL_WEBUI_PORT, CL_WORKERS.
read_cluster_env() {
    local file="$CLUSTER_DIR/cluster.env" key value
    [[ -f $file ]] || return 1
    CL_PORT='' CL_WEBUI_PORT='' CL_WORKERS=''
    while IFS='=' read -r key value; do
        case "$key" in
            port) CL_PORT="$value" ;;
            webui_port) CL_WEBUI_PORT="$value" ;;
            workers) CL_WORKERS="$value" ;;
        esac
    done <"$file"
    [[ -n $CL_PORT && -n $CL_WEBUI_PORT && -n $CL_WORKERS ]]
}

# The master's JSON page (http://127.0.0.1:WEBUI/json/) as lines a shell reads easily:
#   status ALIVE | url spark://... | workers_alive N
#   worker ID HOST:PORT STATE CORES MEMORY_MB | app ID STATE running|completed NAME
# Prints `error ...` and exits 2 when the page cannot be read.
master_json() {  # $1: the master's web UI port
    "$VENV_PY" - "$CLUSTER_HOST" "$1" <<'PY'
import json, sys, urllib.request
host, port = sys.argv[1], sys.argv[2]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
try:
    with opener.open(f"http://{host}:{port}/json/", timeout=5) as response:
        page = json.load(response)
except Exception as exc:  # not up yet, or gone: the caller decides what that means
    print("error", exc)
    sys.exit(2)
workers = page.get("workers", [])
print("status", page.get("status", "?"))
print("url", page.get("url", "?"))
print("workers_alive", sum(w.get("state") == "ALIVE" for w in workers))
for w in workers:
    print("worker", w.get("id"), f"{w.get('host')}:{w.get('port')}", w.get("state"),
          w.get("cores"), w.get("memory"))
for key, label in (("activeapps", "running"), ("completedapps", "completed")):
    for a in page.get(key, []):
        print("app", a.get("id"), a.get("state"), label, a.get("name"))
PY
}

port_in_use() {  # $1: a port on 127.0.0.1; true when something accepts connections there
    (exec 3<>"/dev/tcp/$CLUSTER_HOST/$1") 2>/dev/null
}

start_daemon() {  # $1: name (master, worker-N), rest: the daemon's class and its arguments
    local name="$1"
    shift
    local pidfile="$CLUSTER_DIR/$name.pid" logfile="$CLUSTER_DIR/$name.log" session=()
    if command -v setsid >/dev/null 2>&1; then session=(setsid); fi
    rm -f "$pidfile"
    # The inner bash records its own PID, then becomes spark-class, which execs java: the PID
    # recorded is the daemon's JVM. setsid gives it its own session (signals sent to the
    # caller's process group do not reach it); no standard stream is left open to the caller.
    # shellcheck disable=SC2016  # expanded by the inner bash, not here
    (cd "$CLUSTER_DIR" && exec ${session[@]+"${session[@]}"} bash -c \
        'printf "%s\n" "$$" >"$1.partial" && mv -f "$1.partial" "$1"; shift; exec "$@"' \
        _ "$pidfile" "$VENV_DIR/bin/spark-class" "$@" </dev/null >"$logfile" 2>&1 &)
    local waited=0
    until [[ -s $pidfile ]]; do
        ((waited < 100)) || die "$name did not start: no PID file after 10 s; see $logfile"
        sleep 0.1
        waited=$((waited + 1))
    done
    log "started $name (PID $(<"$pidfile")), log ${logfile#"$REPO_ROOT"/}"
}

log_tail() {  # $1: a log file: its last lines, indented, to stderr
    [[ -f $1 ]] || return 0
    log "last lines of ${1#"$REPO_ROOT"/}:"
    tail -n 15 "$1" | sed 's/^/[telcorec]     /' >&2
}

# Stops every daemon recorded in work/cluster/ (TERM, then KILL after $1 seconds) and waits
# until they are gone, then waits a little for their executors, which exit with their worker.
# Returns 1 when some process is still running in work/cluster/ after that.
cluster_stop() {  # $1: seconds to wait after TERM
    local timeout="$1" f pid class pids=() classes=()
    while IFS= read -r f; do
        pid="$(<"$f")"
        class="$(pidfile_class "$f")"
        if pid_runs_class "$pid" "$class"; then
            log "stopping ${f##*/} (PID $pid) ..."
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            classes+=("$class")
        else
            log "${f##*/}: PID $pid is not running"
        fi
    done < <(cluster_pidfiles)

    local i alive=() start=$SECONDS killed=0
    while :; do
        alive=()
        for i in "${!pids[@]}"; do
            if pid_runs_class "${pids[$i]}" "${classes[$i]}"; then alive+=("${pids[$i]}"); fi
        done
        ((${#alive[@]})) || break
        if ((killed == 0 && SECONDS - start >= timeout)); then
            log "still running after ${timeout} s: kill -KILL ${alive[*]}"
            kill -KILL "${alive[@]}" 2>/dev/null || true
            killed=1
        elif ((killed && SECONDS - start >= timeout + 15)); then
            die "PIDs ${alive[*]} survived kill -KILL; stop them by hand."
        fi
        sleep 0.5
    done
    rm -f "$CLUSTER_DIR"/*.pid "$CLUSTER_DIR/cluster.env"

    # Executors watch their worker and exit when it goes away: give them a few seconds.
    local left=() tries=0
    while :; do
        mapfile -t left < <(cluster_processes)
        ((${#left[@]} == 0 || tries >= 40)) && break
        sleep 0.5
        tries=$((tries + 1))
    done
    if ((${#left[@]})); then
        log "warning: processes still running in work/cluster/ (executors or Python workers whose"
        log "  worker is gone): PIDs ${left[*]}. Not started by \`up\` itself, so left alone."
        return 1
    fi
    # Each executor unpacked the environment (~2 GB) into its directory: keep only the logs.
    local unpacked=("$CLUSTER_DIR"/worker-*/app-*/*/environment)
    if [[ -e ${unpacked[0]} ]]; then
        rm -rf "${unpacked[@]}"
        log "removed ${#unpacked[@]} unpacked environment(s); executor logs stay in work/cluster/worker-*/"
    fi
}

cluster_usage() {
    cat <<EOF
Usage: ./spark-submit.sh cluster up|add-worker|down|status [OPTIONS]

A standalone Spark cluster on this machine, bound to ${CLUSTER_HOST}: one master and N workers,
the pip pyspark's own daemons (bin/spark-class). Use it to try cluster mode, e.g.
  ./spark-submit.sh cluster up
  ./spark-submit.sh pipeline --master spark://${CLUSTER_HOST}:${DEFAULT_CLUSTER_PORT} --conf conf/cluster-loopback.yaml
  ./spark-submit.sh cluster down

  up      Start the master and the workers, then wait until the master's JSON page lists
          every worker as ALIVE (after --timeout seconds: an error with the end of the logs,
          and what was started is stopped again). Refuses to start while a cluster started
          here is running or a port is taken.
  add-worker
          Start one more worker (same cores and memory) for the running master, e.g. after
          one died, and wait until the master lists it as ALIVE. Recorded like the others.
  down    Stop the daemons \`up\` and \`add-worker\` started, by their recorded PIDs only
          (TERM, then KILL after --timeout seconds), and wait until they are gone. Executors
          exit with their worker.
  status  Print the master URL, the workers the master lists (from its JSON page), running
          applications and the recorded PIDs. Exit code 0 when the master answers and every
          recorded daemon runs, 1 otherwise.

Options of up:
  --workers N        workers (default ${DEFAULT_CLUSTER_WORKERS})
  --cores C          cores each worker offers (default ${DEFAULT_CLUSTER_CORES})
  --memory M         memory each worker offers, e.g. 4g or 512m (default ${DEFAULT_CLUSTER_MEMORY})
  --port P           master port (default ${DEFAULT_CLUSTER_PORT})
  --webui-port W     master web UI port (default ${DEFAULT_CLUSTER_WEBUI_PORT}); worker i uses W+i
  --timeout S        seconds to wait for the workers (default ${DEFAULT_CLUSTER_TIMEOUT})
Options of down:
  --timeout S        seconds between TERM and KILL (default 30)

Files, all under work/cluster/: cluster.env (the settings of \`up\`), master.pid, worker-N.pid,
master.log, worker-N.log and worker-N/ (a worker's work directory: one directory per
application, holding each executor's stdout and stderr; \`down\` deletes the unpacked
environments there, \`up\` the previous cluster's directories). Executors get Spark's default
spark.executor.memory (1g) unless a submission says otherwise, e.g.
--spark-conf spark.executor.memory=2g.
EOF
}

positive_int() {  # $1: option, $2: value
    [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer, got '$2'"
}

# Fails (naming them) when daemons recorded in work/cluster/ still run.
refuse_running_cluster() {
    local f running=()
    while IFS= read -r f; do
        if pid_runs_class "$(<"$f")" "$(pidfile_class "$f")"; then
            running+=("$(basename "$f" .pid) PID $(<"$f")")
        fi
    done < <(cluster_pidfiles)
    if ((${#running[@]})); then
        die "a cluster started from this directory is still running ($(IFS=,; printf '%s' "${running[*]}"))." \
            "See it with ./spark-submit.sh cluster status; stop it with ./spark-submit.sh cluster down."
    fi
}

# Waits until the master lists $2 workers as ALIVE; on timeout, or when a daemon exits, shows
# the logs, stops what was started and fails.
wait_for_workers() {  # $1: web UI port, $2: workers, $3: timeout (s)
    local start=$SECONDS alive line f dead why
    log "waiting up to $3 s for $2 worker(s) to register with the master ..."
    while :; do
        alive=0
        line="$(master_json "$1" | sed -n 's/^workers_alive //p')" || true
        [[ -n $line ]] && alive="$line"
        ((alive >= $2)) && break
        dead=''
        while IFS= read -r f; do
            pid_runs_class "$(<"$f")" "$(pidfile_class "$f")" || dead="$(basename "$f" .pid)"
        done < <(cluster_pidfiles)
        if [[ -n $dead ]] || ((SECONDS - start >= $3)); then
            why="only $alive of $2 worker(s) ALIVE after $((SECONDS - start)) s"
            [[ -n $dead ]] && why="$dead exited"
            for f in "$CLUSTER_DIR"/master.log "$CLUSTER_DIR"/worker-*.log; do log_tail "$f"; done
            cluster_stop 10 || true
            die "cluster up failed: $why (master page http://$CLUSTER_HOST:$1/json/)." \
                "What it had started was stopped again; the logs stay in work/cluster/."
        fi
        sleep 1
    done
    log "$alive worker(s) ALIVE after $((SECONDS - start)) s"
}

cluster_up() {
    local port=$DEFAULT_CLUSTER_PORT webui=$DEFAULT_CLUSTER_WEBUI_PORT
    local workers=$DEFAULT_CLUSTER_WORKERS cores=$DEFAULT_CLUSTER_CORES
    local memory=$DEFAULT_CLUSTER_MEMORY timeout=$DEFAULT_CLUSTER_TIMEOUT opt value
    while (($#)); do
        opt="$1"
        shift
        case "$opt" in
            -h | --help)
                cluster_usage
                exit 0
                ;;
            --*=*)
                value="${opt#*=}"
                opt="${opt%%=*}"
                ;;
            *)
                (($#)) || die "$opt needs a value (see ./spark-submit.sh cluster --help)"
                value="$1"
                shift
                ;;
        esac
        case "$opt" in
            --port) port="$value" ;;
            --webui-port) webui="$value" ;;
            --workers) workers="$value" ;;
            --cores) cores="$value" ;;
            --memory) memory="$value" ;;
            --timeout) timeout="$value" ;;
            *) die "unknown option $opt for cluster up (see ./spark-submit.sh cluster --help)" ;;
        esac
    done
    positive_int --port "$port"
    positive_int --webui-port "$webui"
    positive_int --workers "$workers"
    positive_int --cores "$cores"
    positive_int --timeout "$timeout"
    [[ $memory =~ ^[1-9][0-9]*[mMgGtT]$ ]] || die "--memory needs a size such as 4g or 512m, got '$memory'"

    setup
    export_spark_env local   # SPARK_LOCAL_IP=127.0.0.1 for the daemons and their executors
    mkdir -p "$CLUSTER_DIR"
    refuse_running_cluster
    # The previous cluster's worker directories (executor logs) go; the daemons' logs are
    # overwritten below.
    rm -f "$CLUSTER_DIR"/*.pid "$CLUSTER_DIR/cluster.env"
    rm -rf "$CLUSTER_DIR"/worker-*/
    local p i
    for p in "$port" "$webui" $(seq $((webui + 1)) $((webui + workers))); do
        if port_in_use "$p"; then
            die "port $p on $CLUSTER_HOST is already in use (another Spark master, worker or web UI?)." \
                "Choose free ones: ./spark-submit.sh cluster up --port P --webui-port W"
        fi
    done
    printf 'port=%s\nwebui_port=%s\nworkers=%s\ncores=%s\nmemory=%s\n' \
        "$port" "$webui" "$workers" "$cores" "$memory" >"$CLUSTER_DIR/cluster.env"

    local url="spark://$CLUSTER_HOST:$port"
    start_daemon master "$MASTER_CLASS" --host "$CLUSTER_HOST" --port "$port" --webui-port "$webui"
    for ((i = 1; i <= workers; i++)); do
        mkdir -p "$CLUSTER_DIR/worker-$i"
        start_daemon "worker-$i" "$WORKER_CLASS" "$url" --host "$CLUSTER_HOST" --cores "$cores" \
            --memory "$memory" --webui-port $((webui + i)) --work-dir "$CLUSTER_DIR/worker-$i"
    done
    wait_for_workers "$webui" "$workers" "$timeout"
    cluster_status || true
    log "submit with: ./spark-submit.sh pipeline --master $url --conf conf/cluster-loopback.yaml"
}

# One more worker for the running master (e.g. after one died), recorded like the others.
cluster_add_worker() {
    (($# == 0)) || [[ $1 == -h || $1 == --help ]] || die "cluster add-worker takes no options"
    if (($#)); then
        cluster_usage
        exit 0
    fi
    read_cluster_env || die "no cluster recorded in work/cluster/: start one with ./spark-submit.sh cluster up"
    pid_runs_class "$(cat "$CLUSTER_DIR/master.pid" 2>/dev/null)" "$MASTER_CLASS" ||
        die "the master recorded in work/cluster/ is not running: ./spark-submit.sh cluster down, then up"
    setup
    export_spark_env local
    local cores memory i=1 f live=0 start=$SECONDS
    cores="$(sed -n 's/^cores=//p' "$CLUSTER_DIR/cluster.env")"
    memory="$(sed -n 's/^memory=//p' "$CLUSTER_DIR/cluster.env")"
    while [[ -e $CLUSTER_DIR/worker-$i.pid ]]; do i=$((i + 1)); done
    if port_in_use $((CL_WEBUI_PORT + i)); then
        die "port $((CL_WEBUI_PORT + i)) (web UI of worker $i) is already in use"
    fi
    mkdir -p "$CLUSTER_DIR/worker-$i"
    start_daemon "worker-$i" "$WORKER_CLASS" "spark://$CLUSTER_HOST:$CL_PORT" --host "$CLUSTER_HOST" \
        --cores "$cores" --memory "$memory" --webui-port $((CL_WEBUI_PORT + i)) \
        --work-dir "$CLUSTER_DIR/worker-$i"
    sed -i.bak "s/^workers=.*/workers=$i/" "$CLUSTER_DIR/cluster.env" && rm -f "$CLUSTER_DIR/cluster.env.bak"
    while IFS= read -r f; do
        if [[ ${f##*/} == worker-* ]] && pid_runs_class "$(<"$f")" "$WORKER_CLASS"; then
            live=$((live + 1))
        fi
    done < <(cluster_pidfiles)
    # The master may still list a dead worker as ALIVE for a moment: wait for the new one's
    # own word that it registered, then for the master's count.
    until grep -q 'Successfully registered with master' "$CLUSTER_DIR/worker-$i.log" 2>/dev/null; do
        if ! pid_runs_class "$(<"$CLUSTER_DIR/worker-$i.pid")" "$WORKER_CLASS" ||
            ((SECONDS - start >= DEFAULT_CLUSTER_TIMEOUT)); then
            log_tail "$CLUSTER_DIR/worker-$i.log"
            die "worker-$i did not register with the master (log work/cluster/worker-$i.log)"
        fi
        sleep 1
    done
    wait_for_workers "$CL_WEBUI_PORT" "$live" "$DEFAULT_CLUSTER_TIMEOUT"
}

cluster_down() {
    local timeout=30
    while (($#)); do
        case "$1" in
            --timeout)
                (($# >= 2)) || die "--timeout needs a value"
                timeout="$2"
                shift 2
                ;;
            --timeout=*)
                timeout="${1#--timeout=}"
                shift
                ;;
            -h | --help)
                cluster_usage
                exit 0
                ;;
            *) die "unknown option $1 for cluster down (see ./spark-submit.sh cluster --help)" ;;
        esac
    done
    positive_int --timeout "$timeout"
    if [[ -z "$(cluster_pidfiles)" ]]; then
        log "no cluster recorded in work/cluster/: nothing to stop"
        rm -f "$CLUSTER_DIR/cluster.env"
        return 0
    fi
    cluster_stop "$timeout" || exit 1
    log "cluster stopped; no process left in work/cluster/"
}

cluster_status() {
    if ! read_cluster_env; then
        printf 'no cluster started from this directory (no work/cluster/cluster.env)\n'
        return 1
    fi
    local ok=0 facts line f pid state fields=()
    printf 'master     spark://%s:%s   web UI http://%s:%s\n' \
        "$CLUSTER_HOST" "$CL_PORT" "$CLUSTER_HOST" "$CL_WEBUI_PORT"
    if facts="$(master_json "$CL_WEBUI_PORT")"; then
        printf 'state      %s\n' "$(sed -n 's/^status //p' <<<"$facts")"
        printf 'workers    %s ALIVE (%s started here)\n' \
            "$(sed -n 's/^workers_alive //p' <<<"$facts")" "$CL_WORKERS"
        while IFS= read -r line; do
            read -r -a fields <<<"$line"   # worker ID HOST:PORT STATE CORES MEMORY_MB
            printf '  %s  %s  %s  cores %s  memory %s MB\n' \
                "${fields[1]}" "${fields[2]}" "${fields[3]}" "${fields[4]}" "${fields[5]}"
        done < <(grep '^worker ' <<<"$facts" || true)
        while IFS= read -r line; do
            read -r -a fields <<<"$line"   # app ID STATE running|completed NAME
            printf 'app        %s  %s (%s)  %s\n' "${fields[1]}" "${fields[2]}" "${fields[3]}" \
                "${fields[*]:4}"
        done < <(grep '^app ' <<<"$facts" || true)
    else
        printf 'state      master not answering (%s)\n' "${facts#error }"
        ok=1
    fi
    printf 'processes  (recorded by cluster up; logs in work/cluster/)\n'
    while IFS= read -r f; do
        pid="$(<"$f")"
        if pid_runs_class "$pid" "$(pidfile_class "$f")"; then
            state=running
        else
            state='NOT running'
            ok=1
        fi
        printf '  %-9s PID %-8s %s\n' "$(basename "$f" .pid)" "$pid" "$state"
    done < <(cluster_pidfiles)
    return "$ok"
}

run_cluster() {
    local sub="${1:-}"
    if (($#)); then shift; fi
    case "$sub" in
        up) cluster_up "$@" ;;
        add-worker) cluster_add_worker "$@" ;;
        down) cluster_down "$@" ;;
        status)
            (($# == 0)) || die "cluster status takes no options"
            [[ -x $VENV_PY ]] || die "no .venv yet, so no cluster either (./spark-submit.sh cluster up)"
            cluster_status || exit 1
            ;;
        -h | --help | help) cluster_usage ;;
        '')
            cluster_usage >&2
            exit 2
            ;;
        *) die "unknown cluster command '$sub': up, add-worker, down or status (./spark-submit.sh cluster --help)" ;;
    esac
}

# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------
print_dry_run() {  # $1: local|loopback|cluster, $2: comment line or '', rest: the command
    local mode="$1" note="$2"
    shift 2
    printf '# --dry-run: nothing was run. The launcher would run, from the repository root:\n'
    printf 'cd %q\n' "$REPO_ROOT"
    printf 'export PYSPARK_PYTHON=%q PYSPARK_DRIVER_PYTHON=%q\n' "$VENV_PY" "$VENV_PY"
    if [[ $mode == local || $mode == loopback ]]; then
        printf 'export SPARK_LOCAL_IP=%q\n' "${SPARK_LOCAL_IP:-127.0.0.1}"
    fi
    if [[ -n ${JAVA_HOME:-} ]]; then
        printf 'export JAVA_HOME=%q\n' "$JAVA_HOME"
    fi
    [[ -n $note ]] && printf '# %s\n' "$note"
    local n=$# i=0 arg
    for arg in "$@"; do
        i=$((i + 1))
        if ((i == 1)); then printf '%q' "$arg"; else printf '    %q' "$arg"; fi
        if ((i < n)); then printf ' \\\n'; else printf '\n'; fi
    done
}

run_job() {
    local master="$DEFAULT_MASTER" driver_memory="$DEFAULT_DRIVER_MEMORY" dry_run=0
    local rest=() spark_confs=() arg
    # Take out the launcher's own options; keep everything else, in order, for the job.
    while (($#)); do
        arg="$1"
        shift
        case "$arg" in
            --master | --driver-memory)
                (($#)) || die "$arg needs a value (see ./spark-submit.sh --help)"
                if [[ $arg == --master ]]; then master="$1"; else driver_memory="$1"; fi
                shift
                ;;
            --master=*) master="${arg#--master=}" ;;
            --driver-memory=*) driver_memory="${arg#--driver-memory=}" ;;
            --spark-conf)
                (($#)) || die "--spark-conf needs KEY=VALUE (see ./spark-submit.sh --help)"
                spark_confs+=("$1")
                shift
                ;;
            --spark-conf=*) spark_confs+=("${arg#--spark-conf=}") ;;
            --dry-run) dry_run=1 ;;
            --)
                rest+=("$@")
                break
                ;;
            *) rest+=("$arg") ;;
        esac
    done
    [[ -n $master ]] || die "--master needs a value"
    [[ -n $driver_memory ]] || die "--driver-memory needs a value"
    for arg in ${spark_confs[@]+"${spark_confs[@]}"}; do
        [[ $arg =~ ^spark\.[^=]+=.*$ ]] || die "--spark-conf needs KEY=VALUE with a spark.* key, got '$arg'"
    done
    ((${#rest[@]})) || die "no job given. Jobs: $(job_names)"

    # The job: NAME, or also jobs/NAME.py as a convenience.
    local job="${rest[0]}"
    job="${job#jobs/}"
    job="${job%.py}"
    local job_args=("${rest[@]:1}")
    if [[ $job == -* ]]; then
        die "unknown option $job (see ./spark-submit.sh --help)"
    fi
    if [[ ! -f jobs/$job.py ]]; then
        die "unknown job '$job': no file jobs/$job.py." "Jobs: $(job_names)" \
            "(To run the tests: ./spark-submit.sh test)"
    fi
    if [[ $job == sql ]] && { ((${#job_args[@]} == 0)) || [[ ${job_args[0]} == -* ]]; }; then
        die "sql needs the query first: ./spark-submit.sh sql \"SELECT ...\" [--conf FILE]"
    fi

    # --dry-run only prints, so it need not install anything once .venv exists.
    if ((dry_run == 0)) || [[ ! -d $VENV_DIR ]]; then
        setup
    fi

    local mode=local env_mode=local
    if ! is_local_master "$master"; then
        mode=cluster
        env_mode=cluster
        if is_loopback_master "$master"; then env_mode=loopback; fi
    fi
    export_spark_env "$env_mode"

    # The job's effective config: its last --conf, else (cluster mode) conf/cluster.yaml,
    # which the launcher then adds, else the job's own default.
    local conf='' take=0
    for arg in ${job_args[@]+"${job_args[@]}"}; do
        if ((take)); then
            conf="$arg"
            take=0
        elif [[ $arg == --conf ]]; then
            take=1
        elif [[ $arg == --conf=* ]]; then
            conf="${arg#--conf=}"
        fi
    done
    local add_conf=0
    if [[ $mode == cluster && -z $conf ]]; then
        conf="$CLUSTER_CONF"
        add_conf=1
    fi

    local cmd=(.venv/bin/spark-submit --master "$master" --driver-memory "$driver_memory")
    local note='' zip='' archive='' writer=''
    if [[ $env_mode == cluster ]]; then
        cmd+=(--conf spark.sql.shuffle.partitions=200)
    else
        # The default of 200 shuffle partitions makes hundreds of tiny tasks on a machine with
        # a few cores, each with its own scheduling overhead (and, with the delta-rs writer,
        # its own tiny file): 4 is plenty for 2 cores. A standalone master on 127.0.0.1 runs
        # on the same cores, so it gets the same (measured at 300 subscribers: 200 partitions
        # took the pipeline from ~4 to ~17 minutes).
        cmd+=(--conf spark.sql.shuffle.partitions=4 --conf spark.default.parallelism=4)
    fi
    if [[ $mode == cluster ]]; then
        local version
        version="$(project_version)"
        zip="dist/telcorec-$version.zip"
        archive="dist/telcorec-env-$version.tar.gz"
        cmd+=(
            --py-files "$zip"
            --archives "$archive#environment"
            --conf spark.pyspark.python=./environment/bin/python
            --conf "spark.pyspark.driver.python=$VENV_PY"
        )
        # Delta's jars only when the config asks for Spark's Delta writer (spark, or auto,
        # which picks it when the session has Delta's extension): a cluster normally reaches
        # Maven or a mirror. With delta-rs nothing is fetched at all.
        writer="$(config_writer "$conf")"
        if [[ $writer != delta-rs ]]; then
            if [[ -n ${TELCOREC_DELTA_JARS:-} ]]; then
                cmd+=(--jars "$TELCOREC_DELTA_JARS")
            else
                cmd+=(--packages "$DELTA_PACKAGE")
                if [[ -n ${TELCOREC_SPARK_REPOSITORIES:-} ]]; then
                    cmd+=(--repositories "$TELCOREC_SPARK_REPOSITORIES")
                fi
            fi
            cmd+=(
                --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension
                --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog
            )
        fi
        note="storage.writer in $conf: $writer ($([[ $writer == delta-rs ]] && printf 'no Delta jars' || printf 'Delta jars and extension added')). $zip and $archive are not built under --dry-run; a real run builds them when missing or out of date (venv-pack: 1-2 min, ~700 MB)."
    fi
    cmd+=(
        --conf spark.ui.showConsoleProgress=true
        --conf spark.sql.execution.arrow.pyspark.enabled=true
        --conf spark.driver.extraJavaOptions=-Dlog4j2.level=WARN
    )
    # --spark-conf last: spark-submit keeps the last value given for a key.
    for arg in ${spark_confs[@]+"${spark_confs[@]}"}; do
        cmd+=(--conf "$arg")
    done
    cmd+=("jobs/$job.py")
    cmd+=(${job_args[@]+"${job_args[@]}"})
    if ((add_conf)); then
        # Without --conf the job would read conf/local.yaml, its own default.
        cmd+=(--conf "$CLUSTER_CONF")
    fi

    if ((dry_run)); then
        print_dry_run "$env_mode" "$note" "${cmd[@]}"
        exit 0
    fi

    if [[ $mode == cluster ]]; then
        if pyfiles_stale "$zip"; then
            build_pyfiles "$zip"
        else
            log "reusing $zip (telcorec/ unchanged since it was built)"
        fi
        if env_archive_stale "$archive"; then
            build_env_archive "$archive"
        else
            log "reusing $archive (.venv unchanged since it was packed)"
        fi
        cluster_note "$master" "$zip" "$archive" "$conf" "$writer"
    fi
    exec "${cmd[@]}"
}

run_tests() {
    local all=0 pytest_args=() arg
    for arg in "$@"; do
        if [[ $arg == --all ]]; then all=1; else pytest_args+=("$arg"); fi
    done
    setup
    export_spark_env local

    local cmd=("$VENV_PY" -m pytest)
    if ((all)); then
        # An empty -m expression selects every test: it overrides the marker filter that
        # pytest.ini's addopts puts earlier on the command line (a later -m wins).
        cmd+=(-m '')
    fi
    cmd+=(${pytest_args[@]+"${pytest_args[@]}"})

    local rc=0
    "${cmd[@]}" || rc=$?
    if ((rc == 5)); then
        log "error: pytest collected no tests (exit code 5): check tests/ and the -m/-k selection."
    fi
    exit "$rc"
}

main() {
    cd "$REPO_ROOT"
    if (($# == 0)); then
        usage
        exit 2
    fi
    case "$1" in
        -h | --help | help)
            usage
            ;;
        test)
            shift
            run_tests "$@"
            ;;
        cluster)
            shift
            run_cluster "$@"
            ;;
        submit)
            shift
            (($#)) || die "submit needs a JOB. Jobs: $(job_names)"
            run_job "$@"
            ;;
        *)
            # pipeline, sql and every other jobs/JOB.py
            run_job "$@"
            ;;
    esac
}

main "$@"
