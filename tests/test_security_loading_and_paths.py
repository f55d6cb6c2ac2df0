"""Issue 7, tests 14 and 15: hostile model files, configured paths, run dates and names.

Model loading (14): a crafted pickle in place of an artifact, a wrong checksum, object arrays and
a malicious torch checkpoint are refused and nothing in them runs (a marker file that their
payload would create never appears); the source tree loads nothing through pickle (an AST check
that is shown to catch planted lines).

Paths and SQL (15): hostile configured paths are refused with the config key named before any
file is opened or directory created (seen by a Python audit hook and directory listings); run
dates and names are typed; every place SQL text or a Delta predicate is built is enumerated and
must be in the reviewed list below, with the validation that makes it safe.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as dt
import io
import json
import os
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from telcorec import config, metrics_store, storage
from telcorec.cli import parser, run_date_arg
from telcorec.exceptions import ConfigError, DataError, ModelError
from telcorec.models import artifacts
from telcorec.ncf import trainer
from telcorec.ncf.model import WEIGHTS, NCFRecommender, load_weights
from telcorec.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("telcorec", "jobs", "benchmarks")


# ---- test 14: model loading ---------------------------------------------------------------

class Payload:
    """Unpickling this creates `marker`: the proof that a loader executed the file's code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _rewrite_checksum(directory: Path, payload: str, key: str) -> None:
    """What an attacker who can write the model directory can do too: make the checksum match."""
    meta = json.loads((directory / artifacts.META).read_text())
    meta[key] = artifacts._sha256(directory / payload)
    (directory / artifacts.META).write_text(json.dumps(meta))


def _npz_with_pickled_member(path: Path, marker: Path) -> None:
    """A real .npz (zip of .npy) whose member is an object array holding the payload."""
    member = io.BytesIO()
    np.save(member, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("user_embeddings.npy", member.getvalue())


def test_the_payload_is_live_so_the_refusals_below_mean_something(tmp_path):
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()  # an unsafe loader would have run it
    marker.unlink()
    _npz_with_pickled_member(tmp_path / "a.npz", marker)
    np.load(tmp_path / "a.npz", allow_pickle=True)["user_embeddings"]
    assert marker.exists()


@pytest.mark.parametrize("attack", ["raw_pickle", "npz_pickled_member", "wrong_checksum",
                                    "truncated_npz", "bare_npy"])
def test_a_crafted_lightfm_artifact_is_refused_and_nothing_runs(tmp_path, attack):
    model_dir, marker = tmp_path / "shard=0000", tmp_path / "ran"
    artifacts.save(model_dir, {"user_embeddings": np.ones((3, 2), np.float32)}, {"k": 1})
    target = model_dir / artifacts.ARRAYS
    if attack == "raw_pickle":
        target.write_bytes(pickle.dumps(Payload(marker)))
        expected = "holds a pickle or object arrays"
    elif attack == "npz_pickled_member":
        _npz_with_pickled_member(target, marker)
        expected = "holds a pickle or object arrays"
    elif attack == "wrong_checksum":  # the payload swapped in, metadata.json left as trained
        _npz_with_pickled_member(target, marker)
        expected = "does not match the checksum"
    elif attack == "truncated_npz":
        target.write_bytes(target.read_bytes()[:40])
        expected = "not a readable .npz"
    else:
        with target.open("wb") as handle:
            np.save(handle, np.ones(3))
        expected = "not an .npz archive"
    if attack != "wrong_checksum":
        _rewrite_checksum(model_dir, artifacts.ARRAYS, "arrays_sha256")
    with pytest.raises(ModelError, match=expected) as refused:
        artifacts.load(model_dir)
    print(f"{attack}: refused with {str(refused.value)[-90:]!r}")
    assert not marker.exists()


def _ncf(tmp_path: Path) -> Path:
    model = NCFRecommender(kind="gmf", n_users=4, n_items=3, embedding_dim=4,
                           mlp_layers=(8, 4), seed=1)
    return model.save(tmp_path / "ncf_gmf", {"model": "ncf_gmf"})


@pytest.mark.parametrize("checksum", ["rewritten", "left_as_trained"])
def test_a_crafted_ncf_model_is_refused_and_nothing_runs(tmp_path, checksum):
    model_dir, marker = _ncf(tmp_path), tmp_path / "ran"
    torch.save({"embedding.weight": Payload(marker)}, model_dir / WEIGHTS)
    if checksum == "rewritten":
        _rewrite_checksum(model_dir, WEIGHTS, "weights_sha256")
    expected = "besides tensors" if checksum == "rewritten" else "checksum"
    with pytest.raises(ModelError, match=expected):
        NCFRecommender.load(model_dir)
    assert not marker.exists()


@pytest.mark.parametrize("name", [trainer.LAST, trainer.BEST])
def test_a_crafted_ncf_checkpoint_is_refused_and_nothing_runs(tmp_path, name):
    """The trainer's own checkpoints (resume from last.pt, NeuMF pretraining from best.pt)
    have no checksum: weights_only=True is what stops them."""
    marker = tmp_path / "ran"
    torch.save({"epoch": 3, "model": Payload(marker)}, tmp_path / name)
    with pytest.raises(ModelError, match="never load it with weights_only=False"):
        if name == trainer.BEST:
            trainer.best_model(tmp_path, {"kind": "gmf", "n_users": 4, "n_items": 3})
        else:
            load_weights(tmp_path / name)
    assert not marker.exists()


def unsafe_loads(source: str, filename: str = "<string>") -> list[str]:
    """Every call in `source` that could unpickle: torch.load without weights_only=True,
    np.load without allow_pickle=False, and the pickle-family loaders (pickle, cPickle, dill,
    joblib, cloudpickle, pandas.read_pickle, numpy.load with allow_pickle=True)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        kwargs = {k.arg: k.value for k in node.keywords}

        def constant(key):
            value = kwargs.get(key)
            return value.value if isinstance(value, ast.Constant) else "<missing or computed>"

        short = name.rsplit(".", 1)[-1]
        owner = name.rsplit(".", 1)[0] if "." in name else ""
        where = f"{filename}:{node.lineno}: {ast.unparse(node)[:100]}"
        if short == "load" and owner == "torch" and constant("weights_only") is not True:
            found.append(where)
        elif short == "load" and owner in ("np", "numpy") and constant("allow_pickle") is not False:
            found.append(where)
        elif short in ("load", "loads", "Unpickler") and owner.split(".")[-1] in (
                "pickle", "cPickle", "_pickle", "dill", "joblib", "cloudpickle"):
            found.append(where)
        elif short in ("read_pickle", "unpickle"):
            found.append(where)
    return found


@pytest.mark.parametrize("planted", [
    "import torch\nstate = torch.load(path)\n",
    "import torch\nstate = torch.load(path, weights_only=False)\n",
    "import torch\nstate = torch.load(path, weights_only=flag)\n",
    "import numpy as np\na = np.load(path)\n",
    "import numpy as np\na = np.load(\n    path,\n    allow_pickle=True)\n",
    "import pickle\nm = pickle.loads(blob)\n",
    "import pickle\nm = pickle.load(open(path, 'rb'))\n",
    "import joblib\nm = joblib.load(path)\n",
    "import cloudpickle\nm = cloudpickle.load(handle)\n",
    "import pandas as pd\nm = pd.read_pickle(path)\n",
])
def test_the_source_check_catches_a_planted_unsafe_load(planted):
    assert len(unsafe_loads(planted)) == 1
    safe = ("torch.load(p, weights_only=True)\nnp.load(p, allow_pickle=False)\n"
            "json.load(handle)\nyaml.safe_load(text)\n")
    assert unsafe_loads(safe) == []


def _sources() -> list[Path]:
    files = [p for d in SOURCE_DIRS for p in sorted((ROOT / d).rglob("*.py"))]
    assert len(files) > 50, "the source tree was not found"
    return files


def test_no_source_file_loads_anything_through_pickle():
    files = _sources()
    found = [hit for p in files for hit in unsafe_loads(p.read_text(), str(p.relative_to(ROOT)))]
    print(f"checked {len(files)} files under {', '.join(SOURCE_DIRS)}: {len(found)} unsafe loads")
    assert found == []
