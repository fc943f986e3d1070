"""The docs stay true to the program: the CLI reference is regenerated and compared, and
the pages a user reads link only to files that exist and carry no lab history."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = "tools/gen_cli_docs.py"
# The user's pages: the README, the changelog and docs/, not the research shelf.
PRODUCT_PAGES = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\[[^\]]*\]\(([^)\s#]+)(?:#[^)]*)?\)")


def test_the_cli_reference_is_current():
    # A new flag, a changed default or help text: the page must be regenerated.
    env = {k: v for k, v in os.environ.items() if k != "VIDSTYLE_COMPILE"}
    page = subprocess.run([sys.executable, GENERATOR, "--stdout"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True).stdout
    assert "## vidstyle apply" in page and "`temporal_strength`" in page
    current = (ROOT / "docs" / "cli.md").read_text()
    assert current == page, f"docs/cli.md is stale: run `python {GENERATOR}`"


@pytest.mark.parametrize("page", PRODUCT_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_product_pages_link_only_to_files_that_exist(page):
    missing = [target for target in LINK.findall(page.read_text())
               if "://" not in target and not (page.parent / target).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


@pytest.mark.parametrize("page", PRODUCT_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_product_pages_tell_no_lab_history(page):
    # How the figures came about belongs in docs/research/, dated; a user's page says
    # what is true of the code as it is.
    found = re.findall(r"[^\n]*\bround \d+[^\n]*", page.read_text(), flags=re.IGNORECASE)
    assert not found, f"{page.relative_to(ROOT)}: {found[:3]}"
