"""Write outputs so that a crash or Ctrl-C never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fmnist.utils.errors import DISK_FULL, DiskFullError, OutputError


@contextlib.contextmanager
def _writable(path: Path) -> Iterator[None]:
    """Turn a failure to create or replace ``path`` into one line that names it."""
    try:
        yield
    except OSError as err:
        if err.errno in DISK_FULL:
            raise DiskFullError(path, err.strerror) from None
        raise OutputError(
            f"cannot write {path}: {err.strerror or err}; make {path.parent} a writable directory"
        ) from None


@contextlib.contextmanager
def _space(path: Path, tmp: Path) -> Iterator[None]:
    """Name ``path`` when writing its temporary copy ``tmp`` finds the disk full: the write itself
    names only the temporary file, or nothing."""
    try:
        yield
    except OSError as err:
        if err.errno in DISK_FULL:
            raise DiskFullError(path, err.strerror) from None
        raise
    except DiskFullError as err:  # a file inside a temporary directory: name it where it was going
        if Path(err.path).is_relative_to(tmp):
            raise DiskFullError(path / Path(err.path).relative_to(tmp), err.strerror) from None
        raise


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    with _writable(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would leak into the final file
    try:
        with _space(path, Path(tmp)):
            yield Path(tmp)
        with _writable(path):
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    with _writable(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        tmp.chmod(0o755)
    try:
        with _space(path, tmp):
            yield tmp
        with _writable(path):
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def live_dir(path: Path) -> Iterator[Path]:
    """Yield ``path`` itself, emptied, for files to be read while they grow (dvclive's curves, epoch
    by epoch, for ``dvc plots show`` and VS Code); if the block fails or is stopped, put back what
    was there before, as ``atomic_dir`` would. Only a finished block leaves its files."""
    path = Path(path)
    with _writable(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        kept = aside / path.name
        if path.exists():
            os.replace(path, kept)
        path.mkdir()
        # DVC's .gitignore beside its outputs is git's, not the run's: a run by hand keeps it.
        if (kept / ".gitignore").is_file():
            shutil.copy2(kept / ".gitignore", path / ".gitignore")
    try:
        with _space(path, path):
            yield path
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        if kept.exists():
            os.replace(kept, path)
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def write_json(path: Path, obj: Any) -> None:
    """Write sorted, indented JSON: stable bytes, readable diffs."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
