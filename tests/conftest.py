"""Shared fixtures. Real-data tests find ../shared/data (or $CONVKIT_SHARED_DATA) and skip without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent


def _shared_data() -> Path | None:
    env = os.environ.get("CONVKIT_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(_HERE.parent.parent / "shared" / "data")
    for c in candidates:
        if (c / "SOURCES.md").is_file():
            return c
    return None


SHARED_DATA = _shared_data()
REQUIRE_EXT = os.environ.get("CONVKIT_REQUIRE_EXT", "") not in ("", "0")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder; tests using it are skipped, with the reason, when it is absent."""
    if SHARED_DATA is None:
        pytest.skip(
            "real data not found: set CONVKIT_SHARED_DATA or place shared/data beside the repo"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def llama_tokenizer(shared_data: Path) -> Path:
    return shared_data / "tokenizers" / "llama" / "tokenizer.json"


@pytest.fixture(scope="session")
def gpt2_tokenizer(shared_data: Path) -> Path:
    return shared_data / "tokenizers" / "gpt2" / "tokenizer.json"


@pytest.fixture(scope="session")
def _fast():
    """The compiled HTML engine's module; skips when it is off here, or fails under
    ``CONVKIT_REQUIRE_EXT=1`` (set in CI)."""
    from convkit.markdown import fast

    if not fast.AVAILABLE:
        message = f"fast engine unavailable: {fast.UNAVAILABLE_REASON}"
        if REQUIRE_EXT:
            pytest.fail(message + " (CONVKIT_REQUIRE_EXT=1)")
        pytest.skip(message)
    from convkit.markdown import _fast

    return _fast
