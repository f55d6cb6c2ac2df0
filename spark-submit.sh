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
        (pytest.ini); --all runs them too. Exits with pytest's exit code; collecting no
        test at all (pytest's code 5) counts as a failure.
  pipeline [ARGS...]
        Submit jobs/pipeline.py (same as: ./spark-submit.sh submit pipeline ARGS...).
  sql "QUERY" [--conf FILE]
        Submit jobs/sql.py with QUERY as its first argument (quote the query).
  JOB [ARGS...]  or  submit JOB [ARGS...]
        Submit jobs/JOB.py with ARGS.
  -h, --help
        Show this help.

Jobs available now (jobs/*.py): $(job_names)

Launcher options, for pipeline, sql and JOB. They may appear anywhere after the command and
are removed before the job sees its arguments; every other argument goes to the job
unchanged, after the job file. A lone -- ends the launcher options: all that follows goes to
the job as it is.
  --master URL           Spark master (default ${DEFAULT_MASTER}).
  --driver-memory SIZE   Driver memory (default ${DEFAULT_DRIVER_MEMORY}).
  --dry-run              Print the complete command, shell-quoted, one argument per line,
                         and exit 0 without running it or building anything.

Relative paths in job arguments are taken from the repository root: the launcher runs there.

Local masters (local, local[N], local[*]) run on this machine with
  spark.sql.shuffle.partitions=4 and spark.default.parallelism=4 (the default 200 shuffle
  partitions make hundreds of tiny tasks on a laptop), Arrow enabled, log level WARN and
  SPARK_LOCAL_IP=127.0.0.1 unless already set. The job reads its own default configuration
  (conf/local.yaml) unless given --conf.

Any other master (spark://HOST:PORT, yarn, k8s://URL) submits in client mode with
  --py-files dist/telcorec-VERSION.zip          the telcorec/ package, rebuilt when a file
                                                under telcorec/ is newer than the zip;
  --archives dist/telcorec-env-VERSION.tar.gz#environment
                                                .venv packed by venv-pack (~900 MB, about a
                                                minute), rebuilt when the install stamp is
                                                newer; executors run ./environment/bin/python;
  --packages ${DELTA_PACKAGE} plus Delta's SQL extension and catalog;
  spark.sql.shuffle.partitions=200; and --conf ${CLUSTER_CONF} added to the job's
  arguments when you gave no --conf.
  Delta's jars are resolved from Maven at submit time, so this machine needs Maven Central
  or a mirror; see TELCOREC_SPARK_REPOSITORIES and TELCOREC_DELTA_JARS below.

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

export_spark_env() {  # $1: local|cluster
    export PYSPARK_PYTHON="$VENV_PY"
    export PYSPARK_DRIVER_PYTHON="$VENV_PY"
    # Only for local runs: a client-mode driver bound to 127.0.0.1 could not be reached by
    # executors on other hosts.
    if [[ $1 == local ]]; then
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

# True when the archive $1 is missing or the install stamp is newer than it.
env_archive_stale() {
    [[ ! -f $1 || $STAMP -nt $1 ]]
}

build_env_archive() {  # $1: the archive to write (relative to the repository root)
    if [[ ! -x $VENV_DIR/bin/venv-pack ]]; then
        log "installing venv-pack into .venv ..."
        "$VENV_PY" -m pip install venv-pack >&2
    fi
    log "packing .venv into $1 with venv-pack (about a minute, ~900 MB) ..."
    mkdir -p "$(dirname "$1")"
    local pack=("$VENV_DIR/bin/venv-pack" -p "$VENV_DIR" -o "$1.partial" --format tar.gz --force)
    if [[ -n ${TELCOREC_PYTHON_PREFIX:-} ]]; then
        pack+=(--python-prefix "$TELCOREC_PYTHON_PREFIX")
    fi
    "${pack[@]}" >&2
    chmod a+r "$1.partial"   # venv-pack writes it owner-only
    mv -f "$1.partial" "$1"
}

cluster_note() {  # $1: master, $2: py-files zip, $3: env archive
    local base
    base="$("$VENV_PY" -c 'import sys; print(sys.base_prefix)' 2>/dev/null || printf '?')"
    log "submitting to $1 (client mode: the driver runs here with .venv's python)."
    log "  Python code: telcorec/ travels as --py-files $2."
    log "  Native dependencies (pyarrow, torch, lightfm's OpenMP build, deltalake, ...) travel in the"
    log "  packed virtualenv $3, unpacked on every executor as ./environment"
    log "  (--archives ...#environment); executors run ./environment/bin/python. The packed env"
    log "  links its python to ${TELCOREC_PYTHON_PREFIX:-$base}: the nodes need Python 3.11 there"
    log "  (or set TELCOREC_PYTHON_PREFIX and repack)."
    if [[ -n ${TELCOREC_DELTA_JARS:-} ]]; then
        log "  Delta Lake's jars are shipped with --jars $TELCOREC_DELTA_JARS."
    else
        log "  Delta Lake's jars come from Maven via --packages $DELTA_PACKAGE: spark-submit must reach"
        log "  Maven Central or a mirror (TELCOREC_SPARK_REPOSITORIES gives --repositories), or ship"
        log "  the jars with --jars (TELCOREC_DELTA_JARS)."
    fi
}

# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------
print_dry_run() {  # $1: local|cluster, $2: comment line or '', rest: the command
    local mode="$1" note="$2"
    shift 2
    printf '# --dry-run: nothing was run. The launcher would run, from the repository root:\n'
    printf 'cd %q\n' "$REPO_ROOT"
    printf 'export PYSPARK_PYTHON=%q PYSPARK_DRIVER_PYTHON=%q\n' "$VENV_PY" "$VENV_PY"
    if [[ $mode == local ]]; then
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
    local rest=() arg
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

    local mode=local
    is_local_master "$master" || mode=cluster
    export_spark_env "$mode"

    local cmd=(.venv/bin/spark-submit --master "$master" --driver-memory "$driver_memory")
    local note='' zip='' archive=''
    if [[ $mode == local ]]; then
        # The default of 200 shuffle partitions makes hundreds of tiny tasks in local mode,
        # each with its own scheduling overhead: 4 is plenty for 2 local cores.
        cmd+=(--conf spark.sql.shuffle.partitions=4 --conf spark.default.parallelism=4)
    else
        local version
        version="$(project_version)"
        zip="dist/telcorec-$version.zip"
        archive="dist/telcorec-env-$version.tar.gz"
        cmd+=(
            --py-files "$zip"
            --archives "$archive#environment"
            --conf spark.pyspark.python=./environment/bin/python
            --conf "spark.pyspark.driver.python=$VENV_PY"
            --conf spark.sql.shuffle.partitions=200
        )
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
        note="$zip and $archive are not built under --dry-run; a real run builds them when missing or out of date (venv-pack: ~1 min, ~900 MB)."
    fi
    cmd+=(
        --conf spark.ui.showConsoleProgress=true
        --conf spark.sql.execution.arrow.pyspark.enabled=true
        --conf spark.driver.extraJavaOptions=-Dlog4j2.level=WARN
        "jobs/$job.py"
    )
    cmd+=(${job_args[@]+"${job_args[@]}"})
    if [[ $mode == cluster ]]; then
        # Without --conf the job would read conf/local.yaml, its own default.
        local has_conf=0
        for arg in ${job_args[@]+"${job_args[@]}"}; do
            if [[ $arg == --conf || $arg == --conf=* ]]; then has_conf=1; fi
        done
        if ((has_conf == 0)); then
            cmd+=(--conf "$CLUSTER_CONF")
        fi
    fi

    if ((dry_run)); then
        print_dry_run "$mode" "$note" "${cmd[@]}"
        exit 0
    fi

    if [[ $mode == cluster ]]; then
        if pyfiles_stale "$zip"; then build_pyfiles "$zip"; fi
        if env_archive_stale "$archive"; then build_env_archive "$archive"; fi
        cluster_note "$master" "$zip" "$archive"
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
