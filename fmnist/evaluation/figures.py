"""The figures of evaluate, compare and the studies (saved by :func:`fmnist.utils.plotting.save_figure`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import ticker

from fmnist.utils import plotting  # noqa: F401  (sets the headless backend before pyplot draws)


def confusion_heatmap(cm: np.ndarray, class_names: Sequence[str], title: str) -> plt.Figure:
    """Counts of true (rows) against predicted (columns) classes, each cell labelled."""
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    ax.imshow(cm, cmap="Blues")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    dark = cm.max() / 2
    for (r, c), count in np.ndenumerate(cm):
        ax.text(c, r, str(count), ha="center", va="center", fontsize=8, color="white" if count > dark else "black")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def _show(ax: plt.Axes, image: np.ndarray, low: float, high: float) -> None:
    ax.imshow(image, cmap="gray_r", vmin=low, vmax=high)
    ax.set_xticks([])
    ax.set_yticks([])


def mistakes_gallery(
    images: np.ndarray, y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str], title: str, ncols: int = 6
) -> plt.Figure:
    """Misclassified images, each captioned with its true class, predicted class and probability."""
    nrows = max(1, -(-len(images) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 1.9, nrows * 2.2), squeeze=False)
    low, high = (float(images.min()), float(images.max())) if len(images) else (0.0, 1.0)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(images):
            _show(ax, images[i], low, high)
            ax.set_axis_on()
            pred = int(probs[i].argmax())
            ax.set_title(
                f"true: {class_names[y_true[i]]}\npred: {class_names[pred]} {probs[i, pred]:.0%}",
                fontsize=8,
                color="firebrick",
            )
    fig.suptitle(title if len(images) else f"{title}: none")
    fig.tight_layout()
    return fig


def prediction_bars(
    images: np.ndarray, y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str], title: str, ncols: int = 3
) -> plt.Figure:
    """Each image beside the bars of its predicted probabilities (the TensorFlow tutorial's figure)."""
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, 2 * ncols, figsize=(ncols * 4.6, nrows * 1.9), squeeze=False)
    low, high = float(images.min()), float(images.max())
    ticks = np.arange(len(class_names))
    for ax in axes.flat:
        ax.set_axis_off()
    for i in range(len(images)):
        img_ax, bar_ax = axes.flat[2 * i], axes.flat[2 * i + 1]
        pred, true = int(probs[i].argmax()), int(y_true[i])
        colour = "tab:blue" if pred == true else "firebrick"
        img_ax.set_axis_on()
        _show(img_ax, images[i], low, high)
        img_ax.set_xlabel(f"{class_names[pred]} {probs[i, pred]:.0%}\n(true: {class_names[true]})", color=colour)
        bar_ax.set_axis_on()
        bars = bar_ax.bar(ticks, probs[i], color="lightgrey")
        bars[pred].set_color(colour)
        bars[true].set_color("tab:blue")
        bar_ax.set_ylim(0, 1)
        bar_ax.set_xticks(ticks, [name.split("/")[0] for name in class_names], rotation=90, fontsize=7)
        bar_ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def accuracy_vs_cost(rows: Sequence[dict[str, Any]], references: Sequence[dict[str, Any]]) -> plt.Figure:
    """Test accuracy of each family against its parameter count and its training compute.

    The seeds' reported accuracies are drawn as dashed lines, so a reader sees where we stand.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, key, label in (
        (axes[0], "params", "parameters"),
        (axes[1], "training_flops", "training compute (FLOPs, counted)"),
    ):
        for row in rows:
            ax.scatter(row[key], row["test_accuracy"] * 100, s=40, zorder=3)
            ax.annotate(
                row["family"], (row[key], row["test_accuracy"] * 100), xytext=(5, 4), textcoords="offset points"
            )
        for ref in references:
            ax.axhline(ref["test_accuracy"] * 100, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xscale("log")
        # Label 1-2-5 steps: a range narrower than a decade still gets ticks, and none collide.
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(ticker.EngFormatter())
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    for ref in references:
        axes[1].annotate(
            f"{ref['source']} {ref['model']}",
            (1, ref["test_accuracy"] * 100),
            xycoords=("axes fraction", "data"),
            xytext=(4, 0),
            textcoords="offset points",
            fontsize=7,
            color="grey",
            va="center",
        )
    axes[0].set_ylabel("test accuracy (%)")
    fig.suptitle("Test accuracy against size and training compute (dashed: the seeds' reported accuracies)")
    fig.tight_layout()
    return fig


def learning_curves(curves: pd.DataFrame) -> plt.Figure:
    """Loss and accuracy per epoch of every family (colour) and split (line style), as seed 001 draws them."""
    styles = {"train": "-", "val": "--", "test": ":"}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for colour, (family, per_family) in zip(
        plt.rcParams["axes.prop_cycle"].by_key()["color"], curves.groupby("family", sort=False), strict=False
    ):
        for split, curve in per_family.groupby("split", sort=False):
            for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
                ax.plot(curve["epoch"], curve[metric], styles[split], color=colour, label=f"{family} {split}")
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, ncol=2)
    fig.suptitle("Learning curves: colour = family; solid = train, dashed = validation, dotted = test")
    fig.tight_layout()
    return fig


def study_bars(summary: dict[str, Any]) -> plt.Figure:
    """Mean test accuracy of every configuration of a study, with the standard deviation over repeats."""
    rows = summary["configurations"]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(rows) + 1.4))
    y = np.arange(len(rows))[::-1]
    ax.barh(y, [r["mean"] * 100 for r in rows], xerr=[r["std"] * 100 for r in rows], color="tab:blue", alpha=0.8)
    for yi, r in zip(y, rows, strict=True):
        ax.plot([a * 100 for a in r["runs"]], [yi] * len(r["runs"]), "k.", markersize=4)
    ax.set_yticks(y, [r["config"] for r in rows], fontsize=7)
    low = min(min(r["runs"]) for r in rows) * 100
    ax.set_xlim(max(0.0, low - 2), min(100.0, max(r["mean"] + r["std"] for r in rows) * 100 + 1))
    ax.set_xlabel("test accuracy (%): bar = mean, line = std, dots = runs")
    ax.set_title(f"{summary['study']} ({summary['budget']['described']}, {summary['budget']['repeats']} repeats)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
