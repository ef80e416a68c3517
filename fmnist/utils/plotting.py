"""Matplotlib for stages: headless, PNG files with stable bytes, and the grid of sample images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # stages run headless
import matplotlib.pyplot as plt
import numpy as np

from fmnist.utils.atomic import atomic_path


def save_figure(fig: plt.Figure, path: Path) -> None:
    """Save ``fig`` as PNG without the software-version metadata that would change its bytes."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


def image_grid(rows: Sequence[np.ndarray], row_titles: Sequence[str], title: str) -> plt.Figure:
    """One row of 28x28 grey images per entry of ``rows``, each row titled on its left."""
    ncols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(ncols * 0.9 + 1.2, len(rows) * 0.95), squeeze=False)
    for r, (images, name) in enumerate(zip(rows, row_titles, strict=True)):
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_frame_on(False)
            if c < len(images):
                ax.imshow(images[c], cmap="gray_r", vmin=0, vmax=255)
        axes[r][0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
