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


# -- identities -------------------------------------------------------------------------------------------
#: password of every test user
TEST_PASSWORD = "test password 2026"
#: the user most tests act as (through $TOOLKIT_USER): every role that sees the allocation, and administrator
TESTER = "tester"
TESTER_ROLES = ("administrator", "investigator", "operator", "data_manager", "unblinded_statistician")
#: one user per role, for the permission tests
ROLE_USERS = {
    "investigator": ("investigator",),
    "operator": ("operator",),
    "rater": ("blinded_rater",),
    "datamanager": ("data_manager",),
    "statistician": ("statistician",),
    "unblinder": ("unblinded_statistician",),
    "monitor": ("monitor",),
}


@pytest.fixture(autouse=True)
def _tester_login(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every store a test opens logs in as the tester, the way a scripted run does ($TOOLKIT_USER/PASSWORD)."""
    monkeypatch.setenv("TOOLKIT_USER", TESTER)
    monkeypatch.setenv("TOOLKIT_PASSWORD", TEST_PASSWORD)
    monkeypatch.delenv("TOOLKIT_PASSWORD_FILE", raising=False)


@pytest.fixture(scope="session")
def user_secrets():
    """Derived secrets of every test user, made once per test session (one Argon2id derivation each)."""
    from toolkit.store.identity import new_secrets

    return {name: new_secrets(name, TEST_PASSWORD)[0] for name in (TESTER, *ROLE_USERS)}


def add_test_users(study, url=None, *, secrets, users=None, site=None) -> None:
    """Add the tester (first, as administrator) and the role users to the study's database."""
    from toolkit.store import open_store

    wanted = {TESTER: TESTER_ROLES, **ROLE_USERS} if users is None else users
    with open_store(study, url=url, login=False) as store:
        existing = {u.username for u in store.users()}
        for name, roles in wanted.items():
            if name in existing:
                continue
            if store.identity is None and existing:
                store.login(TESTER, TEST_PASSWORD)
            store.add_user(name, full_name=f"Test {name.title()}", roles=roles, secrets=secrets[name],
                           site=None if name == TESTER else site)
            existing.add(name)


@pytest.fixture
def provision(user_secrets):
    """``provision(study, url=None, site=None)``: add the test users to the study's database."""

    def make(study, url=None, *, users=None, site=None):
        add_test_users(study, url, secrets=user_secrets, users=users, site=site)

    return make
