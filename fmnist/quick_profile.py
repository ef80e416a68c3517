"""The quick profile: the whole pipeline in minutes, the README's first experiment.

The pipeline on a 6000-image subset, 2 epochs per family (a family block that sets its own epochs
wins over ``train.epochs``, so it is set there too), and 600 validation images: evaluate scores
every choice of views on validation, which on 6000 images was a third of the profile's time
(docs/performance.md). The benchmark times it; the docs show its command, which
``python -m fmnist.quick_profile`` prints.
"""

from __future__ import annotations

from fmnist.all_params import shipped_params

QUICK_PROFILE = [
    "-S",
    "preprocess.train_limit=6000",
    "-S",
    "preprocess.val_fraction=0.01",
    "-S",
    "train.epochs=2",
    *[
        arg
        for name, block in shipped_params()["families"].items()
        if "epochs" in block
        for arg in ("-S", f"families.{name}.epochs=2")
    ],
]


def quick_profile_command() -> str:
    """The command on two lines, the families' epochs on the second: a family added lengthens only
    that one, by one ``-S``, and the README's lines stay within 200 characters."""
    settings = [f"-S {key}" for key in QUICK_PROFILE[1::2]]
    per_family = [arg for arg in settings if arg.startswith("-S families.")]
    shared = [arg for arg in settings if arg not in per_family]
    # A family block without epochs of its own takes train.epochs: named, so none looks forgotten.
    set_here = {key.split(".")[1] for key in QUICK_PROFILE[1::2] if key.startswith("families.")}
    plain = [name for name in shipped_params()["families"] if name not in set_here]
    named = f"  # {', '.join(plain)}: train.epochs" if plain else ""
    return "dvc exp run " + " ".join(shared) + " \\\n  " + " ".join(per_family) + named


if __name__ == "__main__":
    print(quick_profile_command())
