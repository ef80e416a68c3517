"""A trained model as a TensorFlow SavedModel for serving: raw images in, probabilities out.

The serving signature takes what a client has, uint8 images of 28x28 pixels (light object on a
dark background, as Fashion-MNIST), applies the training split's normalisation inside and averages
over the test-time views the family's evaluation uses, so no client can get either wrong.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from tensorflow.core.protobuf import fingerprint_pb2

from fmnist.evaluation.inference import view

# TensorFlow Serving loads numbered versions under a model's base path.
VERSION = "1"


class Serving(tf.Module):
    """The model behind one endpoint. A plain ``tf.Module``, not ``keras.export.ExportArchive``: the
    archive lists variables in an order that changes from process to process, and so its bytes."""

    def __init__(
        self, model: keras.Model, normalization: dict[str, Any], views: tuple[tuple[int, int, bool], ...]
    ) -> None:
        super().__init__()
        self.model, self.views = model, views
        # The same float32 arithmetic as data.splits.load_split, so served and evaluated inputs agree.
        self.scale = tf.constant(1.0 / (255.0 * normalization["std"]), tf.float32)
        self.shift = tf.constant(normalization["mean"] / normalization["std"], tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28], tf.uint8, name="images")])
    def serve(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        x = (tf.cast(images, tf.float32) * self.scale - self.shift)[..., tf.newaxis]
        total = None
        for down, right, mirrored in self.views:  # summed in order, as inference.average does
            probs = self.model(view(x, down, right, mirrored), training=False)
            total = probs if total is None else total + probs
        return {"probabilities": total / float(len(self.views))}


def export(
    model: keras.Model, normalization: dict[str, Any], views: tuple[tuple[int, int, bool], ...], out_dir: Path
) -> None:
    """Write ``model`` to ``out_dir/VERSION`` with one signature, ``serving_default``, that averages
    the model's probabilities over ``views`` (a set from :data:`fmnist.evaluation.views.VIEWS`)."""
    module = Serving(model, normalization, views)
    path = Path(out_dir) / VERSION
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    _pin_fingerprint_uuid(path)


def _pin_fingerprint_uuid(path: Path) -> None:
    """Replace the random ``uuid`` TensorFlow writes into ``fingerprint.pb`` by one drawn from the
    fingerprint's own content hashes: the same model then exports to the same bytes, which DVC
    and the fresh-clone check need, and two different models still get different ids."""
    fingerprint = fingerprint_pb2.FingerprintDef()
    fingerprint.ParseFromString((path / "fingerprint.pb").read_bytes())
    fingerprint.uuid = ""
    digest = hashlib.sha256(fingerprint.SerializeToString(deterministic=True)).digest()
    fingerprint.uuid = str(int.from_bytes(digest[:16], "big"))
    (path / "fingerprint.pb").write_bytes(fingerprint.SerializeToString(deterministic=True))
