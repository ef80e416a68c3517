"""Read ``params.yaml`` as DVC reads it, every way it can fail turned into one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import YAMLError

from fmnist.utils.errors import ParamsError


class _DuplicateKeyError(YAMLError):
    def __init__(self, key: Any, first: int, second: int) -> None:
        super().__init__(f"key '{key}' is written twice, at lines {first} and {second}")


class _Constructor(SafeConstructor):
    """ruamel.yaml's safe constructor, naming both lines of a key written twice.

    A key written twice is an error (plain YAML would keep the last silently, so a second ``train:``
    block would drop every key of the first); ruamel.yaml refuses it too, but names only the second.
    """

    def check_mapping_key(self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any) -> bool:
        if key in mapping:
            first = next((k for k, _ in node.value if (k.tag, k.value) == (key_node.tag, key_node.value)), node)
            raise _DuplicateKeyError(key, first.start_mark.line + 1, key_node.start_mark.line + 1)
        return True


def parse_yaml(text: str) -> Any:
    """Parse YAML text as DVC does (ruamel.yaml's safe loader, YAML 1.2), so that the stages, ``dvc
    params diff`` and ``dvc exp run -S`` read the same values: ``yes`` is text and ``5e-4`` a number,
    where PyYAML's YAML 1.1 reads the first as true and the second as text."""
    yaml = YAML(typ="safe", pure=True)  # builds plain data only; pure: the constructor below is used
    yaml.Constructor = _Constructor
    return yaml.load(text)


def read_yaml(path: Path) -> Any:
    """Parse ``path``, turning every way it can fail into one line."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ParamsError(f"cannot read {path}: {err.strerror}; run from the project root") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ParamsError(
            f"{path} is not UTF-8 text: byte 0x{data[err.start]:02x} at line {line} cannot be read; "
            "save the file as UTF-8"
        ) from None
    try:
        raw = parse_yaml(text)
    except _DuplicateKeyError as err:
        raise ParamsError(f"{path}: {err}; keep one (YAML would silently keep only the last)") from None
    except YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParamsError(f"{path} is not valid YAML{at}: {getattr(err, 'problem', None) or err}") from None
    if raw is None:
        raise ParamsError(f"{path} is empty; restore it with 'git checkout {path}'")
    return raw
