"""Which configured paths are allowed at all (io/warehouse.py hands out paths under the root).

The rule for configured paths, checked on the strings when a config is built (`check_config_paths`,
from `Config.__post_init__`, before anything is read or written) and on the filesystem when the
warehouse is opened (`telcorec.io.warehouse.Warehouse`, before a table, model or report path is handed out):
- every configured path is a local filesystem path. Refused: a URI scheme (`http://`, `file:`,
  `s3://`, `hdfs://`: Spark and Hadoop would fetch from or write to them; on a cluster mount
  the shared storage and give its local path, as conf/cluster.yaml does), `~` (it expands to a
  different home on the driver and on each executor), NUL, line breaks and other control
  characters, backslashes and Windows drives, glob characters (`* ? [ ] { }`: Spark would read
  every match), more than 4,096 characters or a component of more than 255;
- `warehouse` may be any such path, relative (to where the job starts) or absolute;
- what the job writes stays inside the warehouse: tables, models, reports, and `inputs.path`
  (relative: under the warehouse; absolute: anywhere for source `tables`, but inside the
  warehouse for source `generated`, whose generator writes there). Neither `..` nor a symlink
  inside the warehouse may lead out of it (symlinks are checked on the resolved path);
- inputs the job only reads may be anywhere readable (the adapters read ../shared/data/...
  relative to the project root), but a table path under an adapter's directory
  (`inputs.operator.path`, `inputs.interactions.path`) must stay inside that directory.
"""
from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from telcorec.core.exceptions import ConfigError

if TYPE_CHECKING:
    from telcorec.core.config import Config

MAX_PATH, MAX_COMPONENT = 4096, 255
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")      # http:, file:, s3:, C: (a drive) ...
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_GLOB = re.compile(r"[*?\[\]{}]")

def check_path(value: str, key: str) -> None:
    """Refuse a configured path that is not a plain local path (see the module docstring)."""
    def refuse(why: str) -> None:
        raise ConfigError(f"config key '{key}': {why}; got {value[:80]!r}")

    if _CONTROL.search(value):
        refuse("a NUL, line break or other control character in a path")
    if len(value) > MAX_PATH or any(len(part) > MAX_COMPONENT for part in value.split("/")):
        refuse(f"path longer than {MAX_PATH} characters or a component longer than "
               f"{MAX_COMPONENT}")
    if _SCHEME.match(value):
        refuse("a URI scheme or drive letter; give a local path (mount remote storage and give "
               "the mount point)")
    if "\\" in value:
        refuse("a backslash (a Windows path?); use / separated local paths")
    if value.startswith("~"):
        refuse("'~' expands to a different home on the driver and the executors; write the "
               "path out")
    if _GLOB.search(value):
        refuse("a glob character (* ? [ ] { }), which Spark would expand; name one file or "
               "directory")

def _inside(path: str, root: str) -> bool:
    """Lexically (no filesystem access): does `path` stay inside `root` after `..` is applied?"""
    path, root = os.path.normpath(os.path.abspath(path)), os.path.normpath(os.path.abspath(root))
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)

def _check_under(base: str, path: str, key: str, base_key: str) -> None:
    if base and path and not _inside(os.path.join(base, path), base):
        raise ConfigError(f"config key '{key}': {path!r} leads out of {base_key} ({base!r}); "
                          f"put the file inside it or change {base_key}")

def check_config_paths(cfg: "Config") -> None:
    """Every path key of a config, on the strings only: called when the config is built."""
    inputs = cfg.inputs
    op, inter = inputs.operator, inputs.interactions
    keyed = {"warehouse": cfg.warehouse, "inputs.path": inputs.path,
             "inputs.operator.path": op.path, "inputs.ibm_telco.path": inputs.ibm_telco.path,
             "inputs.copenhagen.calls": inputs.copenhagen.calls,
             "inputs.copenhagen.sms": inputs.copenhagen.sms,
             "inputs.interactions.path": inter.path,
             "pseudonymisation.secret_file": cfg.pseudonymisation.secret_file}
    under = {f"inputs.operator.{t}.path": (getattr(op, t).path, op.path, "inputs.operator.path")
             for t in ("subscribers", "catalogue", "subscriptions", "cdr")}
    under |= {f"inputs.interactions.{t}.path": (getattr(inter, t).path, inter.path,
                                                "inputs.interactions.path")
              for t in ("events", "users", "items")}
    keyed |= {key: path for key, (path, _, _) in under.items()}
    for key, value in keyed.items():
        if value:
            check_path(value, key)
    for key, (path, base, base_key) in under.items():
        _check_under(base, path, key, base_key)
    # a relative inputs.path is under the warehouse; the generator writes there
    if not os.path.isabs(inputs.path) or inputs.source == "generated":
        _check_under(cfg.warehouse, inputs.path, "inputs.path", "warehouse")
