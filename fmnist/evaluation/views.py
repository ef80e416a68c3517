"""Test-time augmentation: the views of a test image a model may be shown, averaged over.

Only the table: the parameter schema names the choices from it without importing TensorFlow, and
:func:`fmnist.evaluation.inference.view` makes each view, for evaluate and the served model alike.
"""

from __future__ import annotations

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
