"""What a cluster submission ships (the package zip, its staleness) and the config's writer."""
from __future__ import annotations

import os
import zipfile

import pytest

from helpers import REPO
from telcorec.launch import environment
from telcorec.launch.messages import LaunchError


def test_writer_follows_extends_relative_to_each_file(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "root.yaml").write_text("storage:\n  writer: spark\nseed: 1\n")
    (tmp_path / "mid.yaml").write_text("extends: base/root.yaml\nwarehouse: w\n")
    (tmp_path / "leaf.yaml").write_text("extends: mid.yaml\n")
    assert environment.config_writer(tmp_path / "leaf.yaml") == "spark"
    (tmp_path / "mid.yaml").write_text("extends: base/root.yaml\nstorage:\n  writer: delta-rs\n")
    assert environment.config_writer(tmp_path / "leaf.yaml") == "delta-rs"
    (tmp_path / "bare.yaml").write_text("seed: 3\n")
    assert environment.config_writer(tmp_path / "bare.yaml") == "auto"


def test_writer_of_the_shipped_configs():
    assert environment.config_writer(REPO / "conf" / "cluster.yaml") == "auto"
    assert environment.config_writer(REPO / "conf" / "cluster-loopback.yaml") == "delta-rs"


@pytest.mark.parametrize("text, message", [
    ("storage:\n  writer: parquet\n", "must be one of auto, delta-rs, spark"),
    ("extends: self.yaml\n", "cycle"),
    ("extends: missing.yaml\n", "does not exist"),
    ("- a list\n", "must hold a mapping"),
])
def test_writer_errors_name_the_file_and_the_fix(tmp_path, text, message):
    (tmp_path / "self.yaml").write_text(text)
    with pytest.raises(LaunchError, match=message):
        environment.config_writer(tmp_path / "self.yaml")


def test_project_version_from_setup_py(tmp_path):
    assert environment.project_version(REPO / "setup.py") == "0.1.0"
    (tmp_path / "setup.py").write_text("setup(name='x')\n")
    with pytest.raises(LaunchError, match="cannot read the version"):
        environment.project_version(tmp_path / "setup.py")


def test_package_zip_is_rebuilt_only_when_a_file_is_newer(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub" / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "mod.py").write_text("x = 1\n")
    (package / "sub" / "mod.pyc").write_bytes(b"")
    (package / "sub" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"")
    zip_path = tmp_path / "dist" / "pkg.zip"
    assert environment.pyfiles_stale(zip_path, package)
    environment.build_pyfiles(zip_path, package)
    with zipfile.ZipFile(zip_path) as zf:
        assert sorted(zf.namelist()) == ["pkg/__init__.py", "pkg/sub/mod.py"]
    built = zip_path.stat().st_mtime
    os.utime(package / "sub" / "mod.py", (built - 10, built - 10))
    for path in (package, package / "sub", package / "__init__.py"):
        os.utime(path, (built - 10, built - 10))
    os.utime(package / "sub" / "__pycache__", (built + 10, built + 10))   # ignored
    assert not environment.pyfiles_stale(zip_path, package)
    os.utime(package / "sub" / "mod.py", (built + 10, built + 10))
    assert environment.pyfiles_stale(zip_path, package)


def test_env_archive_is_stale_when_the_install_changed(tmp_path):
    venv, archive, stamp = tmp_path / "venv", tmp_path / "env.tar.gz", tmp_path / "venv" / "stamp"
    site = venv / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    stamp.write_text("x")
    assert environment.env_archive_stale(archive, venv, stamp)
    archive.write_bytes(b"")
    packed = archive.stat().st_mtime
    for path in (site, stamp):
        os.utime(path, (packed - 10, packed - 10))
    assert not environment.env_archive_stale(archive, venv, stamp)
    os.utime(site, (packed + 10, packed + 10))    # pip added or removed a package
    assert environment.env_archive_stale(archive, venv, stamp)
