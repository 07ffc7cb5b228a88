"""Which packing backend ``convkit.split`` selects, in a fresh interpreter each time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import convkit

try:
    from convkit import _fastsplit
except ImportError:
    _fastsplit = None


def _backend_in_subprocess(cwd: Path, **env: str) -> str:
    # The child must import the same convkit as this process (the installed copy in CI, the
    # checkout in development): run it away from the checkout, with that copy on its path.
    here = str(Path(convkit.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    out = subprocess.run(
        [sys.executable, "-c", "import convkit.split as s; print(s.BACKEND)"],
        env={**os.environ, "PYTHONPATH": path, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_purepython_switch_selects_the_twin(tmp_path: Path) -> None:
    assert _backend_in_subprocess(tmp_path, CONVKIT_PUREPYTHON="1") == "python"


@pytest.mark.parametrize("value", ["", "0"])
def test_compiled_core_is_selected_when_built(tmp_path: Path, value: str) -> None:
    expected = "cython" if _fastsplit is not None else "python"
    assert _backend_in_subprocess(tmp_path, CONVKIT_PUREPYTHON=value) == expected


def test_split_exposes_the_selected_plan() -> None:
    from convkit import _fastsplit_py, split

    expected = _fastsplit_py.plan if split.BACKEND == "python" else _fastsplit.plan
    assert split.plan is expected
