#!/usr/bin/env bash
# spark-submit.sh: the one entry point for running telcorec. Bash only where bash must be:
#   * Python 3.11 is there (the pinned stack in setup.py is built for it),
#   * Java 17 is there (Spark 4.0 runs on it),
#   * the project virtualenv .venv exists and holds `pip install -e '.[test]'`, re-installed
#     only when setup.py changes (its sha256 is kept in .venv/.telcorec-setup.sha256),
# then it hands every argument over to the Python launcher: `python -m telcorec.launch "$@"`
# (telcorec/launch/: the commands, the spark-submit arguments built from conf/spark/*.properties,
# the packed environment for clusters, `cluster up|down|status|add-worker`).
#
# The launcher is first asked (with .venv's Python, or any Python 3 before .venv exists) whether
# the command needs the environment at all (--help, a usage error, `cluster status|down`, and
# --dry-run once .venv exists do not) and whether it needs Java (a Python-only job such as `sql`
# on its embedded engine does not); what it needs is checked or built first.
# Run `./spark-submit.sh --help` for the commands and options.
set -euo pipefail

REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
VENV_DIR="$REPO_ROOT/.venv"
# Absolute path and NOT symlink-resolved: resolving .venv/bin/python would land on the base
# interpreter, which does not see the virtualenv's packages.
VENV_PY="$VENV_DIR/bin/python"
STAMP="$VENV_DIR/.telcorec-setup.sha256"
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

# Read from pyvenv.cfg rather than by starting the interpreter: this runs before every command.
venv_ok() {
    [[ -x $VENV_PY ]] && grep -qE '^version(_info)? *= *3\.11\.' "$VENV_DIR/pyvenv.cfg" 2>/dev/null
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

    # A stamp written after setup.py last changed needs no hashing (a checkout or an edit of
    # setup.py makes it newer than the stamp again).
    [[ -f $STAMP && $STAMP -nt $REPO_ROOT/setup.py ]] && return 0
    local want have=''
    want="$(sha256_of "$REPO_ROOT/setup.py")"
    [[ -f $STAMP ]] && have="$(<"$STAMP")"
    if [[ $want == "$have" ]]; then
        touch "$STAMP"
        return 0
    fi

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

# ----------------------------------------------------------------------------------------------
# Hand over to Python
# ----------------------------------------------------------------------------------------------
# The interpreter that can run the launcher now: .venv's, else any Python 3 (the launcher
# module needs only the standard library to parse the command line and print help).
launcher_python() {
    if venv_ok; then
        printf '%s\n' "$VENV_PY"
    elif find_python311; then
        printf '%s\n' "$PYTHON311"
    else
        command -v python3 2>/dev/null
    fi
}

main() {
    cd "$REPO_ROOT"
    local py needs=1
    # --runs-without-setup exits 0 when the command needs neither Java nor an up-to-date .venv,
    # 3 when it needs .venv but not Java.
    if py="$(launcher_python)"; then
        needs=0
        "$py" -m telcorec.launch --runs-without-setup "$@" 2>/dev/null || needs=$?
        ((needs == 0)) && exec "$py" -m telcorec.launch "$@"
    fi
    ((needs == 3)) || ensure_java
    ensure_venv
    exec "$VENV_PY" -m telcorec.launch "$@"
}

main "$@"
