"""CI tests the installed package (with its compiled core), not the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import convkit
from convkit import split

CHECKOUT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(
    not os.environ.get("CONVKIT_REQUIRE_INSTALLED"),
    reason="set CONVKIT_REQUIRE_INSTALLED=1 to require the installed package (CI does)",
)
def test_the_package_under_test_is_installed_not_the_checkout():
    here = Path(convkit.__file__).resolve()
    assert CHECKOUT not in here.parents, f"convkit was imported from the checkout: {here}"
    assert "site-packages" in here.parts


@pytest.mark.skipif(
    not os.environ.get("CONVKIT_REQUIRE_EXT"),
    reason="set CONVKIT_REQUIRE_EXT=1 to require the compiled extension (CI does)",
)
def test_the_compiled_splitter_is_in_use():
    assert split.BACKEND == "cython"


@pytest.mark.skipif(
    not os.environ.get("CONVKIT_REQUIRE_EXT"),
    reason="set CONVKIT_REQUIRE_EXT=1 to require the compiled extension (CI does)",
)
def test_the_compiled_scans_and_word_table_are_in_use():
    from convkit import _words, scan

    assert scan.BACKEND == "cython"
    assert _words.WordCounts.__module__ == "convkit._words"
