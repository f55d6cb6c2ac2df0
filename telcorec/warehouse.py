"""Where every table and artifact lives under the warehouse root (one place for paths)."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from telcorec.exceptions import ConfigError

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Warehouse:
    root: Path
    inputs: Path

    @classmethod
    def from_config(cls, warehouse: str, inputs_path: str) -> "Warehouse":
        if "\x00" in warehouse or "\x00" in inputs_path:
            raise ConfigError("config key 'warehouse' / 'inputs.path': NUL byte in path")
        root = Path(warehouse).expanduser().resolve()
        inputs = Path(inputs_path)
        return cls(root=root, inputs=(inputs if inputs.is_absolute() else root / inputs).resolve())

    def table(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ConfigError(f"invalid table name {name!r}: use lower-case letters, digits, _")
        return self.root / name

    def input_table(self, name: str) -> Path:
        return self.inputs / name

    def truth_table(self) -> Path:
        """The generator's hidden preferences (only the oracle baseline reads them)."""
        return self.inputs / "_truth_subscribers"

    def models_root(self, run_date: dt.date) -> Path:
        return self.root / "models" / f"run_date={run_date.isoformat()}"

    def models(self, run_date: dt.date, model: str) -> Path:
        return self.models_root(run_date) / model

    def feature_stats(self, run_date: dt.date) -> Path:
        return self.root / "feature_stats" / f"run_date={run_date.isoformat()}.json"

    def report_dir(self, run_date: dt.date) -> Path:
        return self.root / "reports" / f"run_date={run_date.isoformat()}"
