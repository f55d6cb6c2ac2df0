"""What a scoring task counts on the way, one typed record merged over every batch and task.

A batch's ranking (telcorec/offers/selection.py) counts what the rules removed and left room
for and what the campaign cap admitted; the publishing task (telcorec/publish/passes.py) adds
what it writes. Each Spark task merges its batches' counts and sends them to the driver as
one small JSON row (telcorec/io/task_files.py), where the quality gate, the output contract,
the cap and the run record read them.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ScoreCounts:
    # rules.removed_counts: candidate pairs, pairs each rule removed, eligible pairs, and
    # subscribers left without offers, by name (rule names come from the config)
    rules: dict[str, int] = field(default_factory=dict)
    # rows the rules leave room for: the sum over subscribers of min(K, offers allowed);
    # None when no batch was counted
    fillable: int | None = None
    eligible: dict[int, int] = field(default_factory=dict)   # offer index -> subscribers allowed
    admitted: dict[int, int] = field(default_factory=dict)   # offer index -> picks the cap admitted
    rows: int = 0                                             # offers rows written
    first: dict[str, int] = field(default_factory=dict)      # arm -> rank-1 rows (subscribers)
    offered: dict[str, int] = field(default_factory=dict)    # offer id -> rows
    violations: dict[str, int] = field(default_factory=dict)  # contract rule -> rows breaking it

    def merge(self, other: ScoreCounts) -> ScoreCounts:
        """Both counts added, field by field and key by key (keys in order of first count)."""
        return ScoreCounts(**{f.name: _added(getattr(self, f.name), getattr(other, f.name))
                              for f in dataclasses.fields(self)})

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ScoreCounts:
        values = json.loads(text)
        for name in ("eligible", "admitted"):  # JSON keys are strings, offer indices are not
            values[name] = {int(k): n for k, n in values[name].items()}
        return cls(**values)


def _added(a, b):
    if a is None or b is None:
        return b if a is None else a
    if isinstance(a, dict):
        out = dict(a)
        for key, n in b.items():
            out[key] = out.get(key, 0) + n
        return out
    return a + b
