"""Shared fixtures: every test runs with its own data root so nothing touches ./data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_data_root(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("TOOLKIT_DATA_DIR", str(root))
    monkeypatch.delenv("TOOLKIT_DB_URL", raising=False)
    return root


@pytest.fixture
def data_root(_isolated_data_root: Path) -> Path:
    """The data root (``$TOOLKIT_DATA_DIR``) of this test."""
    return _isolated_data_root


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``../shared/reference`` beside the checkout (real data with published results)."""
    path = SHARED / "reference"
    if not path.is_dir():
        pytest.skip(f"reference data not found at {path}")
    return path
