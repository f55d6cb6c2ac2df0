"""Where every table and artifact lives under the warehouse root (the configured paths it is
built from are checked by telcorec/core/paths.py: no path handed out leads outside the root,
symlinks included)."""
from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from telcorec.core.exceptions import ConfigError

if TYPE_CHECKING:
    pass

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Warehouse:
    root: Path
    inputs: Path

    @classmethod
    def from_config(cls, warehouse: str, inputs_path: str) -> "Warehouse":
        check_path(warehouse, "warehouse")
        check_path(inputs_path, "inputs.path")
        lexical = os.path.join(warehouse, inputs_path)
        root = Path(warehouse).resolve()
        wh = cls(root=root, inputs=(root / inputs_path).resolve())
        if not os.path.isabs(inputs_path) or _inside(lexical, warehouse):
            wh._contained(wh.inputs, "inputs.path")  # a symlink inside may not lead out
        return wh

    def _contained(self, path: Path, key: str) -> Path:
        """`path` if, with symlinks resolved, it is inside the warehouse root."""
        real = path.resolve()
        if real != self.root and self.root not in real.parents:
            raise ConfigError(f"config key '{key}': {path} resolves to {real}, outside the "
                              f"warehouse {self.root} (a symlink?); remove the link or change "
                              f"'{key}'")
        return path

    def table(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ConfigError(f"invalid table name {name!r}: use lower-case letters, digits, _")
        return self._contained(self.root / name, "warehouse")

    def input_table(self, name: str) -> Path:
        return self.inputs / name

    def truth_table(self) -> Path:
        """The generator's hidden preferences (only the oracle baseline reads them)."""
        return self.inputs / "_truth_subscribers"

    def models_root(self, run_date: dt.date) -> Path:
        return self._contained(self.root / "models" / f"run_date={run_date.isoformat()}",
                               "warehouse")

    def models(self, run_date: dt.date, model: str) -> Path:
        if not _NAME.match(model):
            raise ConfigError(f"invalid model name {model!r}: use lower-case letters, digits, _")
        return self._contained(self.models_root(run_date) / model, "warehouse")

    def feature_stats(self, run_date: dt.date) -> Path:
        return self._contained(
            self.root / "feature_stats" / f"run_date={run_date.isoformat()}.json", "warehouse")

    def tuning_dir(self, run_date: dt.date) -> Path:
        """The tune stage's best configuration of a run date (telcorec/models/lightfm/tuning.py)."""
        return self._contained(self.root / "tuning" / f"run_date={run_date.isoformat()}",
                               "warehouse")

    def report_dir(self, run_date: dt.date) -> Path:
        return self._contained(self.root / "reports" / f"run_date={run_date.isoformat()}",
                               "warehouse")
from telcorec.core.paths import _inside, check_path
