"""Model artifacts without pickle: arrays in .npz (loaded with allow_pickle=False) + JSON.

The JSON records the sha256 of the .npz; loading refuses a file whose checksum differs, so a
swapped or truncated artifact is an error instead of silently wrong offers.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from telcorec.core.exceptions import ModelError

ARRAYS = "arrays.npz"
META = "metadata.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_metadata(directory: Path, payload: str, checksum_key: str, metadata: dict) -> dict:
    """metadata.json beside an already written `payload` file, recording its sha256."""
    meta = {**metadata, checksum_key: _sha256(directory / payload)}
    (directory / META).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
    return meta


def read_metadata(directory: Path, payload: str, checksum_key: str, what: str,
                  stage: str) -> dict:
    """metadata.json of `directory`, after checking that `payload` is there and unchanged."""
    meta_path, payload_path = directory / META, directory / payload
    if not meta_path.is_file() or not payload_path.is_file():
        raise ModelError(f"no {what} in {directory}: run the {stage} stage first")
    meta = json.loads(meta_path.read_text())
    if _sha256(payload_path) != meta.get(checksum_key):
        raise ModelError(f"{payload_path} does not match the checksum in {META}; the artifact "
                         "was changed after training. Retrain instead of loading it.")
    return meta


def save(directory: Path, arrays: dict[str, np.ndarray], metadata: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / ARRAYS, **arrays)
    write_metadata(directory, ARRAYS, "arrays_sha256", metadata)
    return directory


def load(directory: Path) -> tuple[dict[str, np.ndarray], dict]:
    meta = read_metadata(directory, ARRAYS, "arrays_sha256", "model artifact", "train")
    arrays_path = directory / ARRAYS
    try:
        loaded = np.load(arrays_path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a bare .npy array is not an artifact
            raise ModelError(f"{arrays_path} is not an .npz archive of named arrays; retrain")
        with loaded as data:
            arrays = {name: data[name] for name in data.files}
    except ValueError as exc:
        # numpy refuses both a pickle file and an .npz member of dtype object here, before
        # unpickling anything
        raise ModelError(f"{arrays_path} holds a pickle or object arrays, which are refused "
                         "(loading them could run code); retrain instead of loading it") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{arrays_path} is not a readable .npz archive "
                         f"({type(exc).__name__}); retrain") from exc
    return arrays, meta


MANIFEST = "manifest.json"

# The run that trained a model, in its manifest (LightFM: MANIFEST beside the shard models; NCF:
# its own META): {"run_id", "attempt_id", "job"}. Scoring stamps the run id on every offer.
TRAINED_BY = "trained_by"


def record_training_run(manifest: Path, lineage: dict) -> None:
    """Add the training run to a written manifest (replaced atomically: a reader sees the
    manifest without it or with it, never half of it)."""
    data = json.loads(manifest.read_text())
    data[TRAINED_BY] = lineage
    tmp = manifest.with_name(f".{manifest.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(manifest)


def training_run(model_dir: Path) -> str | None:
    """The run id that trained the model in `model_dir`; None for a model trained before its
    manifest recorded it."""
    for name in (MANIFEST, META):
        if (model_dir / name).is_file():
            trained = json.loads((model_dir / name).read_text()).get(TRAINED_BY) or {}
            return trained.get("run_id")
    return None

TUNED_BEST = "best.json"  # the tune stage's best configuration, in Warehouse.tuning_dir

ENSEMBLE_WEIGHTS = "ensemble_weights.json"  # tuned ensemble weights, beside the models
