"""Training input: ``tf.data`` batches, cached, shuffled with a seed, augmented per batch, prefetched."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from fmnist.data.idx import CLASS_NAMES


def _shift_matrices(offsets: tf.Tensor, size: int) -> tf.Tensor:
    """Per offset, the (size, size) matrix that moves a row or column by that many pixels: bilinear,
    with zeros shifted in (``out = matrix @ line``)."""
    positions = tf.range(size, dtype=tf.float32)
    source = positions[None, :, None] - offsets[:, None, None]
    return tf.nn.relu(1.0 - tf.abs(source - positions[None, None, :]))


def shift_and_flip(images: tf.Tensor, shifts: tf.Tensor | None, flip: tf.Tensor) -> tf.Tensor:
    """Shift each image by its (down, right) pixels in ``shifts`` (bilinear, zeros shifted in), then
    mirror it horizontally where ``flip``; without ``shifts``, only mirror.

    The function of Keras' RandomTranslation + RandomFlip, as two batched 28x28 matmuls with the flip
    folded into the column matrix: one op per batch instead of per-image resampling (the cost of
    each is in benchmarks/README.md).
    """
    if shifts is None:
        return tf.where(flip[:, None, None, None], tf.reverse(images, [2]), images)
    rows = _shift_matrices(shifts[:, 0], images.shape[1])
    cols = _shift_matrices(shifts[:, 1], images.shape[2])
    cols = tf.where(flip[:, None, None], tf.reverse(cols, [1]), cols)
    return tf.matmul(tf.matmul(rows, images[..., 0]), cols, transpose_b=True)[..., tf.newaxis]


def dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool,
    augment: bool,
    seed: int,
    max_shift: int = 2,
    whole_pixels: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of (image, one-hot label); cached, shuffled per epoch, augmented per batch, prefetched.

    Augmentation shifts each image by up to ``max_shift`` pixels each way (none if 0), by any
    fraction of a pixel or, with ``whole_pixels``, by whole pixels only, then flips it horizontally
    or not, at random.
    """
    ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    # Batch first, so one-hot encoding and augmentation run once per batch, vectorised.
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if augment:
        generator = tf.random.Generator.from_seed(seed)

        def random_shift_and_flip(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            n = tf.shape(images)[0]
            if not max_shift:
                shifts = None
            elif whole_pixels:
                # Whole pixels keep the image sharp, as the test images and test-time views are.
                shifts = tf.cast(generator.uniform([n, 2], -max_shift, max_shift + 1, dtype=tf.int32), tf.float32)
            else:
                shifts = generator.uniform([n, 2], -max_shift, max_shift)
            return shift_and_flip(images, shifts, generator.uniform([n]) < 0.5), labels

        ds = ds.map(random_shift_and_flip)
    ds = ds.map(lambda im, lab: (im, tf.one_hot(tf.cast(lab, tf.int32), len(CLASS_NAMES))))
    # tf.data's autotuner thread can block iterator teardown for a long time at each epoch's end
    # (benchmarks/README.md); with it off, throughput is the same and steady.
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def training_batches(
    x: np.ndarray, y: np.ndarray, cfg: dict, batch_size: int, *, drop_remainder: bool = False
) -> tf.data.Dataset:
    """The training batches a family's config asks for: shuffled and augmented with its seed."""
    return dataset(
        x,
        y,
        batch_size,
        shuffle=True,
        augment=cfg["augment"],
        seed=cfg["seed"],
        max_shift=cfg["augment_shift"],
        whole_pixels=cfg["augment_whole_pixels"],
        drop_remainder=drop_remainder,
    )
