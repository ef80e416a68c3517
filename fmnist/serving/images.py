"""A picture a user brings, prepared the way Fashion-MNIST's were made.

Zalando made each image from a product photo on a light background: trimmed to the object, its
longest side resized to 28 pixels, centred on 28x28, negated (light object on black) and stored as
8-bit grey. Any picture Pillow reads, of any size, colour or grey, with or without alpha, goes
through the same steps here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fmnist.utils.errors import DataError, one_line

SIZE = 28
# Grey levels above the background that count as the object when trimming: above JPEG's ripple.
OBJECT_LEVEL = 10


class NotAnImageError(DataError):
    """A file Pillow does not recognise as any image format (a note, a PDF): skipped inside a folder."""


def read(path: Path) -> Image.Image:
    """Decode ``path`` fully, upright (EXIF orientation), or raise :class:`DataError` naming it.

    Of an animation (GIF, APNG, WebP), the first frame; ``info["frames"]`` says how many it has.
    """
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; both are refused here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()  # a truncated file fails here, not later; an animation's first frame
                frames = getattr(image, "n_frames", 1)
                upright = ImageOps.exif_transpose(image)
                upright.info["frames"] = frames  # so that the answer can say which frame it is of
                return upright
    except UnidentifiedImageError:
        raise NotAnImageError(f"{path} is not an image Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(
            f"{path} has more pixels than Pillow's decompression-bomb limit ({Image.MAX_IMAGE_PIXELS}); "
            "scale it down first"
        ) from None
    except (OSError, SyntaxError, ValueError) as err:  # Pillow's ways of saying the data is broken
        raise DataError(f"{path} cannot be decoded: {one_line(err)}") from None


def grey(image: Image.Image) -> np.ndarray:
    """The image as float grey levels 0-255; transparent parts become white, as a product photo's
    background."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return np.asarray(image.convert("L"), dtype=np.float32)


def prepare(image: Image.Image) -> np.ndarray | None:
    """A 28x28 uint8 image, light object on a black background, the object's longest side 28 pixels;
    None if nothing in the picture stands out from its background (no grey level more than
    ``OBJECT_LEVEL`` from it: a blank page, a black frame, a single pixel), which no class fits.

    A picture of 28x28 already is only negated and its background set to black: a Fashion-MNIST
    image comes through unchanged, and so gets the class ``evaluate`` gave it.
    """
    g = grey(image)
    h, w = g.shape
    frame = max(1, min(h, w) // 20)
    border = np.concatenate([g[:frame].ravel(), g[-frame:].ravel(), g[:, :frame].ravel(), g[:, -frame:].ravel()])
    # The border's median is the background even where the object touches the border (its long
    # side spans the image); it is lighter than the picture as a whole exactly when the object is
    # darker than its background, however small or sparse (a sandal's straps) the object is.
    background = float(np.median(border))
    if background > g.mean():  # a dark object on a light background: negate, as Zalando did
        g, background = 255.0 - g, 255.0 - background
    g = np.clip(g - background, 0, 255)  # the background at 0, as in the dataset
    rows, cols = np.nonzero(g > OBJECT_LEVEL)
    if not len(rows):
        return None
    if g.shape == (SIZE, SIZE):  # already the dataset's size: trimming and resizing could only blur it
        return np.rint(g).astype(np.uint8)
    g = g[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]  # trim to the object
    h, w = g.shape
    trimmed = Image.fromarray(np.rint(g).astype(np.uint8))
    if max(h, w) != SIZE:
        scale = SIZE / max(h, w)
        trimmed = trimmed.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    canvas = Image.new("L", (SIZE, SIZE), 0)
    canvas.paste(trimmed, ((SIZE - trimmed.width) // 2, (SIZE - trimmed.height) // 2))
    return np.asarray(canvas, dtype=np.uint8)


def image_files(paths: list[Path]) -> list[Path]:
    """The files named, and the files directly inside each folder named (sorted, hidden ones skipped)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not inside:
                raise DataError(f"{path} is an empty folder; name image files or a folder that holds some")
            files += inside
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"{path} does not exist")
    return files
