"""Read ``params.yaml`` and check all of it against the schema before a stage touches anything.

A typo added by ``dvc exp run -S`` fails loudly with a did-you-mean instead of being ignored, and a
missing key is named instead of being filled in silently. ``python -m fmnist.config.params``
prints the parameter reference (``docs/parameters.md``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import YAMLError

from fmnist.config.schema import DOWNLOAD, EVALUATE, PREPROCESS, TRAIN, Param
from fmnist.models.families import FAMILIES
from fmnist.utils.errors import ParamsError

PARAMS_FILE = Path("params.yaml")
# The values a fresh clone runs with: the reference's defaults, and the base of tests and studies.
SHIPPED = Path(__file__).resolve().parents[2] / "params.yaml"
SECTIONS: dict[str, dict[str, Any]] = {"download": DOWNLOAD, "preprocess": PREPROCESS, "train": TRAIN}


def family_config(params: dict[str, Any], family: str) -> dict[str, Any]:
    """The settings one family trains with: ``train``, then the family's own block over it."""
    if family not in params["families"]:
        raise ParamsError(
            f"{PARAMS_FILE}: no family '{family}' under 'families'; it has {', '.join(params['families'])}"
        )
    return {**params["train"], **params["families"][family]}


def evaluate_config(params: dict[str, Any], family: str) -> dict[str, Any]:
    """The settings one family is evaluated with: ``evaluate``, then the family's block in it over it."""
    shared = {key: value for key, value in params["evaluate"].items() if key in EVALUATE}
    return {**shared, **params["evaluate"].get(family, {})}


def _check(spec: Param, value: Any, name: str) -> Any:
    try:
        return spec.check(value)
    except (ValueError, TypeError):
        raise ParamsError(f"{PARAMS_FILE}: {name} = {value!r} is not allowed; expected {spec.allowed()}") from None


def _mapping(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        what = f"'{where[:-1]}'" if where else "the file"
        raise ParamsError(f"{PARAMS_FILE}: {what} must be a mapping of keys to values, got {raw!r}")
    return raw


def _refuse_unknown(raw: dict[str, Any], known: list[str], where: str, allowed: str) -> None:
    for key in raw:
        if key not in known:
            hint = difflib.get_close_matches(str(key), known, n=1)
            did_you_mean = f" (did you mean '{where}{hint[0]}'?)" if hint else ""
            raise ParamsError(f"{PARAMS_FILE}: unknown key '{where}{key}'{did_you_mean}; allowed here: {allowed}")


def validate(
    raw: Any, schema: dict[str, Any], where: str = "", optional: dict[str, Param] | None = None
) -> dict[str, Any]:
    """Check one mapping against ``schema``: every key present and allowed, nothing unknown.

    Keys of ``optional`` (a family's overrides of ``train`` or ``evaluate`` keys) are checked when present.
    """
    optional = optional or {}
    raw = _mapping(raw, where)
    # A block of overrides only (an evaluate block of a family) lists the keys it may override.
    allowed = ", ".join(schema) + (", or any train key" if optional else "") if schema else ", ".join(optional)
    _refuse_unknown(raw, [*schema, *optional], where, allowed)
    out: dict[str, Any] = {}
    for key, spec in schema.items():
        if key not in raw:
            what = "a mapping" if isinstance(spec, dict) else spec.allowed()
            raise ParamsError(
                f"{PARAMS_FILE}: missing key '{where}{key}' ({what}); add it, or restore the shipped file "
                f"with 'git checkout {PARAMS_FILE}'"
            )
        if isinstance(spec, dict):
            out[key] = validate(raw[key], spec, f"{where}{key}.")
        else:
            out[key] = _check(spec, raw[key], where + key)
    for key in raw:
        if key in optional and key not in schema:
            out[key] = _check(optional[key], raw[key], where + key)
    return out


def validate_all(raw: Any) -> dict[str, Any]:
    """Check a whole parsed ``params.yaml``; return it with numbers widened to float where asked."""
    raw = _mapping(raw, "")
    top = [*SECTIONS, "families", "evaluate"]
    _refuse_unknown(raw, top, "", ", ".join(top))
    for key in top:
        if key not in raw:
            raise ParamsError(
                f"{PARAMS_FILE}: missing section '{key}'; add it, or restore the shipped file with "
                f"'git checkout {PARAMS_FILE}'"
            )
    out = {name: validate(raw[name], schema, f"{name}.") for name, schema in SECTIONS.items()}
    families = _mapping(raw["families"], "families.")
    if not families:
        raise ParamsError(f"{PARAMS_FILE}: 'families' names no family; known: {', '.join(FAMILIES)}")
    _refuse_unknown(
        families, list(FAMILIES), "families.", f"{', '.join(FAMILIES)} (one module each in fmnist/models/families/)"
    )
    out["families"] = {
        name: validate(block, FAMILIES[name].KEYS, f"families.{name}.", optional=TRAIN)
        for name, block in families.items()
    }
    # A block named after a family sets evaluate keys for that family only, as families: does for train.
    evaluate = _mapping(raw["evaluate"], "evaluate.")
    own = {name: block for name, block in evaluate.items() if name in out["families"]}
    shared = {key: value for key, value in evaluate.items() if key not in own}
    _refuse_unknown(
        shared, [*EVALUATE, *out["families"]], "evaluate.", f"{', '.join(EVALUATE)}, or a family's block of these"
    )
    out["evaluate"] = validate(shared, EVALUATE, "evaluate.")
    for name, block in own.items():
        out["evaluate"][name] = validate(block, {}, f"evaluate.{name}.", optional=EVALUATE)
    return out


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


def load_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    """Read and validate the whole params file; raise :class:`ParamsError` on any problem."""
    return validate_all(read_yaml(path))


def shipped_params() -> dict[str, Any]:
    """The committed ``params.yaml`` of this project, validated."""
    return load_params(SHIPPED)


def _yaml(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _row(name: str, spec: Param, value: Any) -> str:
    if isinstance(value, str) and len(value) > 20:
        value = value[:12] + "…"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = f"{len(value)} entries"
    return f"| `{name}` | `{_yaml(value)}` | {spec.allowed()} | {spec.help} |"


def _rows(schema: dict[str, Any], values: dict[str, Any], where: str) -> list[str]:
    rows = []
    for key, spec in schema.items():
        if isinstance(spec, dict):
            rows += _rows(spec, values[key], f"{where}{key}.")
        else:
            rows.append(_row(where + key, spec, values[key]))
    return rows


def leaves(schema: dict[str, Any] | None = None, where: str = "") -> Iterator[tuple[str, Param]]:
    """Every key of the schema as (dotted name, spec), each family's own keys included."""
    if schema is None:
        for name, section in SECTIONS.items():
            yield from leaves(section, f"{name}.")
        for name, family in FAMILIES.items():
            yield from leaves(family.KEYS, f"families.{name}.")
        yield from leaves(EVALUATE, "evaluate.")
        return
    for key, spec in schema.items():
        if isinstance(spec, dict):
            yield from leaves(spec, f"{where}{key}.")
        else:
            yield where + key, spec


def reference_markdown(values: dict[str, Any] | None = None) -> str:
    """The parameter reference: every key, its shipped value, what it allows and what it means."""
    values = values or shipped_params()
    rows = ["| key | shipped value | allowed | meaning |", "| --- | --- | --- | --- |"]
    for name, schema in SECTIONS.items():
        rows += _rows(schema, values[name], f"{name}.")
    for name, block in values["families"].items():
        family = FAMILIES[name]
        overrides = ", ".join(f"`{k}: {_yaml(v)}`" for k, v in block.items() if k in TRAIN) or "nothing"
        rows.append(f"| `families.{name}` | | | {family.HELP} Overrides: {overrides}. |")
        rows += _rows(family.KEYS, block, f"families.{name}.")
        rows.append(f"| `families.{name}.<key>` | | as `train.<key>` | Any train key, for {name} only. |")
    rows += _rows(EVALUATE, values["evaluate"], "evaluate.")
    for name in values["families"]:
        if name in values["evaluate"]:
            own = ", ".join(f"`{k}: {_yaml(v)}`" for k, v in values["evaluate"][name].items())
            rows.append(f"| `evaluate.{name}` | | | Evaluate keys for {name} only: {own}. |")
    rows.append("| `evaluate.<family>.<key>` | | as `evaluate.<key>` | Any evaluate key, for that family only. |")
    return "\n".join(rows)


def reference_page() -> str:
    """``docs/parameters.md``, generated so that it cannot drift from the schema or params.yaml."""
    return (
        "# Parameters\n\n"
        "Generated by `python -m fmnist.config.params > docs/parameters.md` from the schema\n"
        "(`fmnist/config/schema.py`, and each family's own keys in `fmnist/models/families/`) and the\n"
        "shipped `params.yaml`; a test keeps this page in step. Every stage checks the whole file\n"
        "before it touches anything: an unknown key gets a did-you-mean, a missing key or a bad value\n"
        "one line naming it and what is allowed, exit 2.\n\n"
        "Keys under `train:` are shared; a family block may set any of them for itself only.\n\n"
        f"{reference_markdown()}\n"
    )


if __name__ == "__main__":
    print(reference_page(), end="")
