"""Test-time augmentation: the views of a test image a model may be shown, averaged over.

Plain NumPy, so that the parameter schema can name the choices without importing TensorFlow.
"""

from __future__ import annotations

import numpy as np

# Each named set of views is a list of (rows down, columns right, mirrored). The model sees every
# view of an image and its probabilities are averaged: a view costs one more forward pass. The
# shifts are the training augmentation's kind, by one whole pixel.
VIEWS: dict[str, tuple[tuple[int, int, bool], ...]] = {
    "none": ((0, 0, False),),
    "flip": ((0, 0, False), (0, 0, True)),
    "flip_shifts": tuple(
        (down, right, mirrored)
        for mirrored in (False, True)
        for down, right in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))
    ),
}

ALL_VIEWS = "flip_shifts"  # holds every view of the others


def view(x: np.ndarray, down: int, right: int, mirrored: bool) -> np.ndarray:
    """``x`` (N, H, W, C) mirrored left-right if asked, then moved ``down`` rows and ``right``
    columns, zeros shifted in."""
    out = x[:, :, ::-1] if mirrored else x
    if down or right:
        height, width = x.shape[1:3]
        pad = max(abs(down), abs(right))
        padded = np.pad(out, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        out = padded[:, pad - down : pad - down + height, pad - right : pad - right + width]
    return np.ascontiguousarray(out)
