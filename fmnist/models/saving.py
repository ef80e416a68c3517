"""Save and load ``.keras`` files: byte-stable saves, safe loads."""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import keras

from fmnist.models.fused_batch_norm import FusedBatchNormalization
from fmnist.utils.atomic import atomic_path
from fmnist.utils.reading import reading

_EPOCH = (1980, 1, 1, 0, 0, 0)


def save_model(model: keras.Model, path: Path) -> None:
    """Save ``model`` so that equal weights give equal bytes, and so DVC's cache holds.

    A ``.keras`` file is a zip whose ``metadata.json`` records the save date, whose
    ``config.json`` numbers shared objects by their memory address, and whose entries carry
    timestamps; all three are pinned here.
    """
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "model.keras"
        model.save(raw)
        with zipfile.ZipFile(raw) as src, atomic_path(path) as out, zipfile.ZipFile(out, "w") as dst:
            for info in sorted(src.infolist(), key=lambda i: i.filename):
                data = src.read(info)
                if info.filename == "metadata.json":
                    meta = json.loads(data)
                    meta.pop("date_saved", None)
                    data = json.dumps(meta, sort_keys=True).encode()
                elif info.filename == "config.json":
                    data = json.dumps(_renumber_shared(json.loads(data), {})).encode()
                pinned = zipfile.ZipInfo(info.filename, date_time=_EPOCH)
                pinned.compress_type = zipfile.ZIP_DEFLATED
                dst.writestr(pinned, data)


def _renumber_shared(node: Any, ids: dict[int, int]) -> Any:
    """Replace ``shared_object_id`` (an ``id()``) by its order of first appearance; sharing is kept."""
    if isinstance(node, dict):
        return {
            k: ids.setdefault(v, len(ids)) if k == "shared_object_id" else _renumber_shared(v, ids)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_renumber_shared(v, ids) for v in node]
    return node


def load_model(path: Path) -> keras.Model:
    """Load a ``.keras`` file without running any code it carries (``safe_mode``); a missing or
    damaged one is one line naming it and the stage that makes it."""
    with reading(path):
        if not Path(path).is_file():  # Keras says "File not found" as a ValueError, read as damage
            raise FileNotFoundError(path)
        return keras.saving.load_model(
            path,
            custom_objects={"FusedBatchNormalization": FusedBatchNormalization},
            safe_mode=True,
            compile=False,
        )
