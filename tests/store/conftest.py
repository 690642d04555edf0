"""Fixtures of the store tests: the shipped studies, allocation lists, and a real PostgreSQL server.

The PostgreSQL server is started once per test session on a free loopback port in a temporary folder
(``initdb`` + ``pg_ctl``, trust authentication, run as the ``postgres`` user when the tests run as root);
each test that asks for :func:`postgres_url` gets a fresh database. Without PostgreSQL binaries those
tests are skipped with the reason. Other test folders can reuse the fixtures with
``from store.conftest import postgres_server, postgres_url  # noqa: F401`` in their ``conftest.py``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "studies" / "epmc-demo"
SPLITFACE = REPO / "studies" / "epmc-splitface"


# -- PostgreSQL ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PostgresServer:
    """A running throw-away PostgreSQL server."""

    host: str
    port: int
    user: str

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of a database on this server (psycopg 3)."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as(user: str | None, argv: list[str]) -> subprocess.CompletedProcess:
    cmd = ["runuser", "-u", user, "--", *argv] if user else argv
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server on loopback for the whole test session (skips when PostgreSQL is absent)."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; install the 'postgresql' package")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg 3 is not installed (pip install 'psycopg[binary]')")
    as_user = None
    if os.geteuid() == 0:
        # initdb refuses to run as root
        as_user = "postgres"
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as the postgres user")
    folder = Path(tempfile.mkdtemp(prefix="toolkit-pg-"))
    if as_user:
        shutil.chown(folder, user=as_user)
    data, log = folder / "db", folder / "log"
    init = _run_as(
        as_user, [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "toolkit", "--no-sync"]
    )
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"initdb failed: {init.stderr.strip()[:300]}")
    port = _free_port()
    opts = (
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off"
    )
    start = _run_as(
        as_user, [str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(log), "-o", opts, "start"]
    )
    if start.returncode != 0:
        text = log.read_text() if log.exists() else start.stderr
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {text.strip()[-300:]}")
    try:
        yield PostgresServer("127.0.0.1", port, "toolkit")
    finally:
        _run_as(as_user, [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """URL of a fresh, empty PostgreSQL database for this test."""
    return postgres_server.create_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, provision, demo_study, splitface_study) -> str | None:
    """Each store test runs on the default SQLite file (``None``) and on a fresh PostgreSQL database.

    The test users (:data:`conftest.TESTER` and one per role) are added first, as an administrator would.
    """
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    provision(demo_study, url)
    provision(splitface_study, url)
    return url


@pytest.fixture(autouse=True)
def _test_users(request: pytest.FixtureRequest, provision, demo_study, splitface_study) -> None:
    """The test users exist in the default (SQLite) database of both shipped studies.

    Tests that bring their own database (a PostgreSQL server, a damaged file, none at all) add them where they
    need them; ``@pytest.mark.no_users`` leaves the data folder empty.
    """
    callspec = getattr(request.node, "callspec", None)
    on_postgres = callspec is not None and callspec.params.get("db_url") == "postgresql"
    if request.node.get_closest_marker("no_users") or on_postgres or "postgres_server" in request.fixturenames:
        return
    provision(demo_study)
    provision(splitface_study)


# -- studies -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def demo_study():
    """The shipped three-arm parallel study (EP, MC, SHAM; stratified by age_group)."""
    from toolkit.study.loader import load_study

    return load_study(DEMO)


@pytest.fixture(scope="session")
def splitface_study():
    """The shipped split-face study (EP vs MC on randomised sides)."""
    from toolkit.study.loader import load_study

    return load_study(SPLITFACE)


@pytest.fixture
def randomized(data_root: Path) -> Callable:
    """Write the allocation list of a study (as ``toolkit study randomize`` does) and return it."""

    def make(study, n_subjects: int = 12):
        from toolkit.study.allocation import randomize, write_allocation

        frame = randomize(study, n_subjects, per_stratum=True)
        write_allocation(study, frame)
        return frame

    return make


def age_group(age: int) -> str:
    """The demo study's age_group level of an age."""
    return "lt45" if age < 45 else "ge45"


def enrol_eligible(store, subject_id: str, *, age: int = 50, fitzpatrick: str = "III", strata=None) -> None:
    """Enrol, consent and pass the patch test of a subject of the demo study."""
    store.enroll_subject(
        subject_id, age=age, sex="F", fitzpatrick=fitzpatrick, strata=strata or {"age_group": age_group(age)}
    )
    store.record_consent(subject_id, signed_on=date(2026, 1, 5))
    store.record_checklist(subject_id, store.info.eligibility.all_met(), checked_on=date(2026, 1, 5))
    store.record_patch_test(subject_id, passed=True, read_on=date(2026, 1, 7))


def baseline_photos(store, photo_file, n: int, subject_id: str = "S-001", tag: str = "b") -> list[int]:
    """Enrol ``subject_id`` (eligible) and store ``n`` distinct baseline photos of it; return their ids."""
    enrol_eligible(store, subject_id)
    ids = []
    for k in range(n):
        path, sha = photo_file(f"{tag}{k}")
        ids.append(store.add_photo(subject_id, visit_id="BASELINE", path=path, sha256=sha))
    return ids


@pytest.fixture
def photo_file(tmp_path: Path) -> Callable[[str], tuple[Path, str]]:
    """Make a distinct photo file from a real portrait shipped with matplotlib; return (path, sha256)."""
    import hashlib

    import matplotlib

    source = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    base = source.read_bytes()

    def make(name: str) -> tuple[Path, str]:
        path = tmp_path / "photos" / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        # a JPEG comment segment after SOI keeps the image valid and makes each file unique
        tag = name.encode()
        payload = base[:2] + b"\xff\xfe" + (len(tag) + 2).to_bytes(2, "big") + tag + base[2:]
        path.write_bytes(payload)
        return path, hashlib.sha256(payload).hexdigest()

    return make


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Run the ``toolkit`` command line in this process; return (exit code, stdout, stderr)."""
    from toolkit.cli import main

    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err
