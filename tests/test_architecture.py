"""The package's layers: imports point down only, and no stage imports another stage.

    entry points   telcorec.cli, telcorec.sql, telcorec.launch
    stages         telcorec.stages (one module per pipeline stage; pipeline.py runs them in order)
    publish        telcorec.publish      (judge and commit the score stage's output)
    evaluation     telcorec.evaluation   (offline metrics, protocols, report)
    offers         telcorec.offers       (what one scoring task does to a batch)
    models         telcorec.models       (LightFM, NCF, baselines' scorers, encoding, top k)
    data           telcorec.features, telcorec.sources, telcorec.synthetic (independent)
    io             telcorec.io           (warehouse paths, Delta writers, artifacts, runs)
    core           telcorec.core         (columns, schemas, exceptions, config, path rules)

A module may import from its own layer's package and from any layer below it, never above;
inside `data` the three packages do not import each other, and the stage modules import no
other stage (only the runners `stages.pipeline` and `stages.simulate` call several; `stages.context` is their shared preamble). The check reads every import statement
of the package (function-level ones too; `if TYPE_CHECKING:` blocks are skipped, since they
are not run) and fails with the offending file, line and import.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import REPO

PACKAGE = REPO / "telcorec"

LAYERS = (  # top first
    ("cli", "sql", "launch"),
    ("stages",),
    ("publish",),
    ("evaluation",),
    ("offers",),
    ("models",),
    ("features", "sources", "synthetic"),
    ("io",),
    ("core",),
)
# modules that run several stages in order: telcorec.stages.pipeline (every stage of one run
# date) and telcorec.stages.simulate (the daily cycle of a simulated campaign, which needs the
# generator between days and another stage order than one pipeline run)
STAGE_RUNNER = ("pipeline", "simulate")
STAGE_SHARED = "context"  # telcorec.stages.context: the preamble every stage shares


def layer_of(top: str) -> int:
    for rank, names in enumerate(LAYERS):
        if top in names:
            return rank
    raise AssertionError(f"telcorec.{top} is in no layer of tests/test_architecture.py: add it")


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING")


def imported_modules(tree: ast.AST, module: str, is_package: bool):
    """(line, imported telcorec module) for every import the module runs."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if _type_checking_only(child):
                continue
            stack.append(child)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield child.lineno, alias.name
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = module.split(".")
                    anchor = anchor if is_package else anchor[:-1]
                    anchor = anchor[:len(anchor) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                if base == "telcorec":  # from telcorec import x: x is the module
                    for alias in child.names:
                        yield child.lineno, f"telcorec.{alias.name}"
                else:
                    yield child.lineno, base


def violations(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        parts = module.split(".")
        if len(parts) < 2:
            continue  # telcorec/__init__.py
        source_rank = layer_of(parts[1])
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, target in imported_modules(tree, module, path.name == "__init__.py"):
            tparts = target.split(".")
            if tparts[0] != "telcorec" or len(tparts) < 2 or tparts[1] == parts[1]:
                if (tparts[:2] == ["telcorec", "stages"] == parts[:2] and len(tparts) > 2
                        and len(parts) > 2 and parts[2] not in STAGE_RUNNER
                        and tparts[2] not in (parts[2], STAGE_SHARED)):
                    found.append(f"{path.relative_to(root.parent)}:{line}: stage {module} "
                                 f"imports stage {target} (stages are independent; shared code "
                                 "belongs in a domain package below them)")
                continue
            target_rank = layer_of(tparts[1])
            if target_rank < source_rank:
                found.append(f"{path.relative_to(root.parent)}:{line}: {module} imports {target}, "
                             "a layer above it (see tests/test_architecture.py)")
            elif target_rank == source_rank:
                found.append(f"{path.relative_to(root.parent)}:{line}: {module} imports {target}; "
                             f"{parts[1]} and {tparts[1]} are independent packages of one layer")
    return found


def test_imports_point_down_and_stages_are_independent():
    assert violations(PACKAGE) == []


def test_top_level_stays_small():
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    assert len(entries) <= 14, entries


@pytest.mark.parametrize("module, line, expected", [
    ("core/columns.py", "from telcorec.io import writer", "a layer above it"),
    ("models/topk.py", "from telcorec.offers.rules import Rule", "a layer above it"),
    ("features/usage.py", "from telcorec.sources import parse", "independent packages"),
    ("stages/train.py", "from telcorec.stages.features import run", "stage telcorec.stages.train"),
    ("io/runs.py", "import telcorec.publish.gate", "a layer above it"),
])
def test_the_check_fails_on_an_upward_import(tmp_path, module, line, expected):
    """A copy of the package with one forbidden import added is caught, naming the file."""
    copy = tmp_path / "telcorec"
    for path in PACKAGE.rglob("*.py"):
        target = copy / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    with open(copy / module, "a") as f:
        f.write(f"\n{line}\n")
    found = violations(copy)
    assert len(found) == 1 and module in found[0] and expected in found[0], found
