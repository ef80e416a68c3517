"""The page ``dvc plots show`` fills, with vega, vega-lite and vega-embed inside it: no network needed.

dvc-render's own page loads the three scripts from a CDN, so offline (this project's machines,
behind a firewall, on a plane) its charts take no space at all. This writes
``.dvc/plots/offline.html``: ``.dvc/plots/html/page.html`` with the scripts of the npm packages
pinned in ``.dvc/plots/html/package-lock.json`` (at the versions dvc-render's page names) inlined,
and no ``{scripts}`` placeholder, so DVC adds no CDN tag. ``make`` runs it after ``npm ci`` and
points DVC's ``plots.html_template`` at it (``.dvc/config.local``): ``python -m fmnist.utils.plots_page``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from fmnist.utils.atomic import atomic_path
from fmnist.utils.errors import DataError, run_stage

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / ".dvc/plots/html"
PAGE = ROOT / ".dvc/plots/offline.html"
MARKER = re.compile(r"^ *<!-- vega, vega-lite and vega-embed: .* -->\n", re.MULTILINE)
PACKAGES = ("vega", "vega-lite", "vega-embed")  # in the order the page must load them


def cdn_versions() -> dict[str, str]:
    """The version of each package that dvc-render's own page loads from its CDN."""
    from dvc_render.vega import VegaRenderer

    return dict(re.findall(r"/npm/([\w-]+)@([\d.]+)", VegaRenderer.SCRIPTS))


def script(package: str, modules: Path) -> str:
    """One package's browser build, from its ``jsdelivr`` entry (the file the CDN serves), as an inline tag."""
    meta = json.loads((modules / package / "package.json").read_text())
    code = (modules / package / meta["jsdelivr"]).read_text()
    if "</script" in code.lower():  # it would end the tag early
        raise DataError(f"{package}'s {meta['jsdelivr']} holds '</script', which cannot be inlined")
    return f'<script data-package="{package}@{meta["version"]}">\n{code}\n</script>\n'


def page(source: Path = SOURCE) -> str:
    """The template, its marker replaced by the three scripts."""
    modules = source / "node_modules"
    if not all((modules / package).is_dir() for package in PACKAGES):
        raise DataError(f"{modules} lacks {', '.join(PACKAGES)}; run 'npm ci --prefix {source}' (make does)")
    template = (source / "page.html").read_text()
    if not MARKER.search(template) or "{plot_divs}" not in template:
        raise DataError(f"{source / 'page.html'} lacks the scripts' marker or {{plot_divs}}")
    return MARKER.sub(lambda _: "".join(script(package, modules) for package in PACKAGES), template, count=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fmnist.utils.plots_page", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    with atomic_path(PAGE) as tmp:
        tmp.write_text(page())
    print(f"wrote {PAGE.relative_to(ROOT)}: {', '.join(PACKAGES)} inlined")


if __name__ == "__main__":
    sys.exit(run_stage(main))
