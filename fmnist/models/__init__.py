"""The models: one module per family (``families/``), the layers they share, saving and cost."""

from pathlib import Path

# Where train writes each family's model and evaluate, export and predict read it.
MODELS_DIR = Path("models")


def model_path(family: str) -> Path:
    """Where ``family``'s trained model is: ``models/FAMILY.keras``."""
    return MODELS_DIR / f"{family}.keras"
