"""Read a file another stage made: a missing or damaged one is one line naming it and its remedy.

A file cut short, edited by hand or overwritten ends in a parser's traceback otherwise, which
names neither the file nor the stage that makes it again. The remedy is ``dvc repro STAGE``: DVC
sees that the output differs from ``dvc.lock`` and remakes it (or restores it from its cache).
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fmnist.utils.errors import DataError, one_line


def remake(path: Path) -> str:
    """The command that makes ``path`` again, from the stage that writes it (``dvc.yaml``'s outs)."""
    path = Path(path)
    with contextlib.suppress(ValueError):
        path = path.absolute().relative_to(Path.cwd())  # stages run from the project's root
    parts = path.parts
    if parts[:2] == ("data", "processed"):
        return "dvc repro preprocess"
    if parts[0] == "models" and len(parts) == 2:
        return f"dvc repro train@{path.stem}"
    if parts[0] == "metrics" and len(parts) > 2 and parts[1] in ("train", "evaluate"):
        return f"dvc repro {parts[1]}@{parts[2]}"
    if parts[:2] == ("metrics", "compare"):
        return "dvc repro compare"
    return "dvc repro"


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn any failure to read or parse ``path`` inside the block into one line naming it.

    A parser's ``KeyError`` counts too: a file that parses but lacks what its stage always writes
    is damaged just the same.
    """
    try:
        yield
    except FileNotFoundError:
        raise DataError(f"{path} is missing; make it with '{remake(path)}' (or fetch it with 'dvc pull')") from None
    except (PermissionError, IsADirectoryError) as err:
        raise DataError(f"cannot read {path}: {err.strerror}; make it a readable file") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
        why = f"{type(err).__name__}: " + (f"it has no {err}" if isinstance(err, KeyError) else one_line(err))
        raise DataError(f"{path} is damaged ({why}); make it again with '{remake(path)}'") from None


def read_json(path: Path) -> Any:
    """The parsed JSON of ``path``, a file a stage wrote."""
    with reading(path):
        return json.loads(Path(path).read_bytes())
