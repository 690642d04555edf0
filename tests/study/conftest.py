"""Fixtures of the study tests: the shipped studies and a way to write variants of them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "studies" / "epmc-demo"
SPLITFACE = REPO / "studies" / "epmc-splitface"


@pytest.fixture(scope="session")
def demo_text() -> str:
    """The shipped three-arm study file as text."""
    return (DEMO / "study.yaml").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def splitface_text() -> str:
    """The shipped split-face study file as text."""
    return (SPLITFACE / "study.yaml").read_text(encoding="utf-8")


def replace_once(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced exactly once (fails loudly when the anchor is gone)."""
    if text.count(old) != 1:
        raise AssertionError(f"anchor {old!r} occurs {text.count(old)} times in the study file")
    return text.replace(old, new)


@pytest.fixture
def write_study(tmp_path: Path) -> Callable[..., Path]:
    """Write a study file into ``<tmp>/<folder>/study.yaml`` and return the folder."""

    def write(text: str, folder: str = "epmc-demo") -> Path:
        path = tmp_path / folder
        path.mkdir(parents=True, exist_ok=True)
        (path / "study.yaml").write_text(text, encoding="utf-8")
        return path

    return write
