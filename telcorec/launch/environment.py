"""What a cluster submission ships, and the one config value the launcher reads.

- the telcorec/ package zipped for --py-files, rebuilt when a file under telcorec/ is newer;
- .venv packed by venv-pack for --archives (LightFM, torch and pyarrow are native, so the
  executors need the same environment), rebuilt when .venv changed;
- storage.writer of the job's YAML config, which decides whether Delta's jars are added.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from telcorec.launch.messages import LaunchError, log

WRITERS = ("auto", "delta-rs", "spark")


def project_version(setup_py: Path) -> str:
    match = re.search(r"""^\s*version\s*=\s*["']([^"']+)["']""", setup_py.read_text(), re.M)
    if match is None:
        raise LaunchError(f"cannot read the version from {setup_py}")
    return match.group(1)


def _storage(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """The `storage:` mapping of a config, merged over its `extends:` parents (the child wins)."""
    import yaml  # lazily: --help runs before .venv (and PyYAML) exists

    if not path.is_file():
        raise LaunchError(f"config file {path} does not exist; pass --conf with a file from conf/")
    if path.resolve() in seen:
        raise LaunchError(f"extends: cycle through {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise LaunchError(f"{path}: the file must hold a mapping")
    parent = data.get("extends")
    inherited = {} if parent is None else _storage(path.parent / parent, seen + (path.resolve(),))
    return {**inherited, **(data.get("storage") or {})}


def config_writer(path: Path) -> str:
    """storage.writer of a job config, following `extends:` (relative to each file) as
    telcorec's config loader does; auto when no file in the chain sets it."""
    writer = _storage(path).get("writer", "auto")
    if writer not in WRITERS:
        raise LaunchError(f"storage.writer in {path} must be one of {', '.join(WRITERS)}, "
                          f"got {writer!r}")
    return writer


def pyfiles_stale(zip_path: Path, package: Path) -> bool:
    """True when the zip is missing or some file under the package is newer than it."""
    if not zip_path.is_file():
        return True
    built = zip_path.stat().st_mtime
    for root, dirs, files in os.walk(package):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in [*dirs, *files]:
            if os.stat(os.path.join(root, name)).st_mtime > built:
                return True
    return False


def build_pyfiles(zip_path: Path, package: Path) -> None:
    """Zip the package (no __pycache__, no .pyc) with paths relative to its parent."""
    log(f"building {zip_path} from {package.name}/ ...")
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_path.with_name(zip_path.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for root, dirs, files in os.walk(package):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if not name.endswith((".pyc", ".pyo")):
                    path = Path(root, name)
                    zf.write(path, path.relative_to(package.parent))
    partial.replace(zip_path)


def env_archive_stale(archive: Path, venv: Path, stamp: Path) -> bool:
    """True when the archive is missing, or the install stamp or a site-packages directory
    (whose mtime changes with every package pip adds or removes) is newer than it."""
    if not archive.is_file():
        return True
    built = archive.stat().st_mtime
    newer = [p for p in [stamp, *venv.glob("lib/python3*/site-packages")]
             if p.exists() and p.stat().st_mtime > built]
    return bool(newer)


def build_env_archive(archive: Path, venv: Path, python_prefix: str | None) -> None:
    """Pack the virtualenv with venv-pack, without Spark's jars (executors run the cluster's
    Spark; only its Python workers use this environment) and without the editable install of
    telcorec, which points at this checkout (executors import telcorec from the zip)."""
    venv_pack = venv / "bin" / "venv-pack"
    if not venv_pack.exists():
        log("installing venv-pack into .venv ...")
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "venv-pack"],
                       stdout=sys.stderr, check=True)
    log(f"packing .venv into {archive} with venv-pack (a minute or two, ~700 MB) ...")
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    cmd = [str(venv_pack), "-p", str(venv), "-o", str(partial), "--format", "tar.gz", "--force",
           "--exclude", "lib/python*/site-packages/pyspark/jars/*",
           "--exclude", "lib/python*/site-packages/__editable__*telcorec*",
           "--exclude", "lib/python*/site-packages/__pycache__/__editable__*telcorec*",
           "--exclude", "lib/python*/site-packages/telcorec-*.dist-info/*"]
    if python_prefix:
        cmd += ["--python-prefix", python_prefix]
    if not sys.stderr.isatty():
        cmd.append("--quiet")   # its progress bar is for terminals only
    subprocess.run(cmd, stdout=sys.stderr, check=True)
    partial.chmod(0o644)        # venv-pack writes it owner-only
    partial.replace(archive)
