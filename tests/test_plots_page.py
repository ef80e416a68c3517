"""The chart page's template: the scripts DVC's own page would fetch, inside it, at the same versions."""

import json

import pytest

from fmnist.utils import plots_page
from fmnist.utils.errors import DataError
from tests.conftest import ROOT


def test_the_pinned_packages_are_the_versions_dvcs_own_page_loads():
    pinned = json.loads((plots_page.SOURCE / "package.json").read_text())["dependencies"]
    assert pinned == plots_page.cdn_versions()
    lock = json.loads((plots_page.SOURCE / "package-lock.json").read_text())["packages"]
    assert {name: lock[f"node_modules/{name}"]["version"] for name in pinned} == pinned


# make installs the npm packages and builds the page before any test (its test and test-fast
# targets); a bare pytest in a clone that never ran make has neither.
BUILT_BY_MAKE = pytest.mark.skipif(
    not (plots_page.SOURCE / "node_modules").is_dir(), reason="the chart page's npm packages: make installs them"
)


@BUILT_BY_MAKE
def test_the_page_holds_the_three_scripts_in_order_and_no_placeholder_for_cdn_tags():
    page = plots_page.page()
    tags = [page.index(f'<script data-package="{name}@') for name in plots_page.PACKAGES]
    assert tags == sorted(tags)  # vega, then vega-lite, then vega-embed, as each needs the one before
    assert "{plot_divs}" in page
    assert "{scripts}" not in page
    assert "<script src=" not in page


def test_without_the_npm_packages_the_page_is_refused_in_one_line(tmp_path):
    (tmp_path / "page.html").write_text((plots_page.SOURCE / "page.html").read_text())
    with pytest.raises(DataError, match=r"lacks vega, vega-lite, vega-embed; run 'npm ci --prefix"):
        plots_page.page(tmp_path)


@BUILT_BY_MAKE
def test_make_pointed_dvc_at_the_page_it_built():
    assert "html_template = plots/offline.html" in (ROOT / ".dvc/config.local").read_text()
    assert plots_page.PAGE.read_text() == plots_page.page()
