"""The base of the :class:`~toolkit.store.store.Store`: connection, identity, transactions, paths and lookups.

Each aggregate of the store (users, subjects, allocations, deliveries, photos, measurements, assessments,
safety, corrections, signatures, locks, blinding) lives in a module of its own as a class built on
:class:`StoreBase`; the :class:`~toolkit.store.store.Store` facade combines them. Each public method is one
logical write in one transaction: it either happens completely, with its audit entries, or not at all.

Every read and write acts for an :class:`~toolkit.store.identity.Identity` and is checked against its roles
(:mod:`toolkit.store.roles`) here, in the store, so a notebook, a form and the command line obey the same
rules. A write needs the signing key unlocked (a password login): each committed write appends a signed
anchor of the audit head to ``audit-anchors.jsonl`` outside the database.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Self

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from toolkit.errors import DataError, StoreError
from toolkit.paths import study_data_dir
from toolkit.store import models as m
from toolkit.store.anchors import ANCHOR_FILE, anchor_problems, append_anchor, effective_head, read_anchors
from toolkit.store.audit import ACTOR_KEY, APPENDED_KEY, CHAIN_LOCK, REASON_KEY, sha256_file
from toolkit.store.canonical import canonical_json, plain
from toolkit.store.database import (
    DEFAULT_BUSY_TIMEOUT_S,
    READ_ONLY_OPTION,
    create_store_engine,
    describe_url,
    resolve_url,
    store_errors,
)
from toolkit.store.identity import AuthenticationError, Identity, UserSecrets, key_fingerprint, unlock_key
from toolkit.store.json_lines import complete_part
from toolkit.store.ledger import LEDGER_FILE, read_ledger
from toolkit.store.migrate import current_revision, upgrade
from toolkit.store.roles import AccessDenied, roles_with
from toolkit.store.study_view import StudyInfo
from toolkit.store.values import SHA256_HEX

__all__ = ["PASSWORD_ENV", "PASSWORD_FILE_ENV", "USER_ENV", "StoreBase"]

#: environment variable naming the toolkit user for scripted runs
USER_ENV = "TOOLKIT_USER"
#: environment variable holding that user's password (prefer the file variant on shared machines)
PASSWORD_ENV = "TOOLKIT_PASSWORD"
#: environment variable naming a file (readable by its owner only) whose first line is the password
PASSWORD_FILE_ENV = "TOOLKIT_PASSWORD_FILE"

_SCOPES = ("clinical", "users", "unblind", "lock")
# statements of every write, built once
_LATEST_LOCK = (
    select(m.StudyLockRow.__table__)
    .where(m.StudyLockRow.__table__.c.study_id == bindparam("study_id"))
    .order_by(m.StudyLockRow.__table__.c.id.desc())
    .limit(1)
)
_HASH_AT = select(m.AuditEntry.__table__.c.hash).where(m.AuditEntry.__table__.c.seq == bindparam("seq"))


class StoreBase:
    """What every part of the store shares: the study, the database, the identity, transactions and paths.

    Parameters
    ----------
    study : toolkit.study.Study or str
        The study (its id names the data folder; its arms, visits and endpoints validate what is stored).
        A bare study id opens the records without study-level validation (e.g. for audit checks).
    url : str, optional
        SQLAlchemy URL; default ``$TOOLKIT_DB_URL``, else ``data/<study-id>/study.db``.
    user, password : str, optional
        Log in as this user (default ``$TOOLKIT_USER`` / ``$TOOLKIT_PASSWORD`` or ``$TOOLKIT_PASSWORD_FILE``;
        without them the operating-system login, or on PostgreSQL the database role, identifies a mapped
        user for reading only).
    identity : Identity, optional
        An identity already logged in (e.g. from another store of the same database): no password needed.
    login : bool
        ``False`` opens without anyone logged in (to add the first user, or to verify the audit trail);
        :meth:`login` can follow.
    busy_timeout_s : float
        SQLite: how long to wait for another writer before reporting "database busy".
    create : bool
        Create the study's database when it does not exist yet (default). ``False`` refuses with a message
        saying how a study's records begin, and creates nothing (the command line opens stores this way
        except for adding a study's first user).
    """

    def __init__(
        self,
        study: Any,
        *,
        url: str | None = None,
        user: str | None = None,
        password: str | None = None,
        identity: Identity | None = None,
        login: bool = True,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        actor: str | None = None,
        create: bool = True,
    ) -> None:
        if actor is not None:
            raise StoreError(
                "a free-text actor is not accepted: who acts comes from a login; pass user= and password= "
                "(or identity=), or set $TOOLKIT_USER and $TOOLKIT_PASSWORD"
            )
        self.info = StudyInfo.from_study(study)
        #: the study model object the store was opened with (``None`` for a bare id)
        self.study = self.info.source
        self.study_id = self.info.id
        #: the study's data folder (photos, waveforms, allocation list, analysis outputs)
        self.study_dir = study_data_dir(self.study_id, create=True)
        self.url = resolve_url(self.study_id, url)
        self.busy_timeout_s = busy_timeout_s
        #: the logged-in user (``None`` until one exists and logs in)
        self.identity: Identity | None = None
        self._synced = False
        # ((bytes read, lines read) of the anchor file, its effective head, whether that line's signature verified)
        self._anchor_seen: tuple[tuple[int, int], Any, bool] | None = None
        self._own_anchor: str | None = None
        sqlite_file = self.url.get_backend_name() == "sqlite" and self.url.database not in (None, "", ":memory:")
        if sqlite_file and not Path(self.url.database).exists():
            self._refuse_start_over()
            if not create:
                self._refuse_new()
        self.engine = create_store_engine(self.url, busy_timeout_s=busy_timeout_s)
        self._reader = self.engine.execution_options(**{READ_ONLY_OPTION: True})
        with self._errors():
            if current_revision(self.engine) is None:
                self._refuse_start_over()
                if not create and self.url.database not in (None, "", ":memory:"):
                    self.engine.dispose()
                    self._refuse_new()
            upgrade(self.engine)
            self._load_definition()
            if login:
                self.identity = self._authenticate(user, password, identity)

    # -- identity -----------------------------------------------------------------------------------------
    @property
    def actor(self) -> str | None:
        """The logged-in user's name (recorded as the actor of every audit entry), or ``None``."""
        return self.identity.username if self.identity else None

    def login(self, user: str, password: str) -> Identity:
        """Log in as ``user`` with ``password`` (checks the password and unlocks the signing key)."""
        with self.connect() as conn:
            row = conn.execute(select(m.UserRow).where(m.UserRow.username == str(user))).first()
            secret = conn.execute(select(m.UserSecretRow).where(m.UserSecretRow.username == str(user))).first()
        if row is None or secret is None:
            raise AuthenticationError(f"no user {user!r} in {self.database}; an administrator adds users")
        if row.disabled_at is not None:
            raise AuthenticationError(
                f"user {user} is disabled (since {row.disabled_at:%Y-%m-%d}: {row.disabled_reason}); "
                "ask an administrator"
            )
        if not password:
            raise AuthenticationError(f"user {user}: a password is required")
        key = unlock_key(row.username, password, UserSecrets.from_row(secret, row.public_key))
        if key is None:
            raise AuthenticationError(f"wrong password for user {user} ({self.database})")
        self.identity = _identity(row, "password", key)
        return self.identity

    def _authenticate(self, user: str | None, password: str | None, identity: Identity | None) -> Identity | None:
        if identity is not None:
            return self._recheck(identity)
        user = user or os.environ.get(USER_ENV) or None
        if user:
            return self.login(user, password if password is not None else _env_password() or "")
        with self.connect() as conn:
            if not conn.scalar(select(func.count()).select_from(m.UserRow)):
                return None
            row = None
            login = _os_login()
            if login:
                row = conn.execute(select(m.UserRow).where(m.UserRow.os_login == login)).first()
                how = "os-login"
            if row is None and conn.dialect.name == "postgresql":
                role = conn.scalar(text("SELECT current_user"))
                row = conn.execute(select(m.UserRow).where(m.UserRow.db_role == role)).first()
                how = "database-role"
        if row is None or row.disabled_at is not None:
            return None
        secret = password if password is not None else _env_password()
        if secret:
            return self.login(row.username, secret)
        return _identity(row, how, None)

    def _recheck(self, identity: Identity) -> Identity:
        """An identity from elsewhere is accepted when its user, roles and key are those of this database."""
        with self.connect() as conn:
            row = conn.execute(select(m.UserRow).where(m.UserRow.username == identity.username)).first()
        if row is None or row.disabled_at is not None or row.public_key != identity.public_key.hex():
            raise AuthenticationError(
                f"user {identity.username} is not an active user with the same signing key in {self.database}; "
                "log in with the password"
            )
        return _identity(row, identity.method, identity._key)

    def _require(self, permission: str, what: str, *, any_role: bool = False) -> Identity:
        """The identity, when it may do ``what`` (needs ``permission``); else a refusal naming user and roles."""
        who = self.identity
        if who is None:
            raise AuthenticationError(
                f"to {what} in study {self.study_id}, log in: set ${USER_ENV} and ${PASSWORD_ENV} (or "
                f"${PASSWORD_FILE_ENV}), pass --user on the command line, or open_store(..., user=, password=)"
                + ("" if self._has_users() else "; this database has no users yet: toolkit user add NAME --role "
                   "administrator")
            )
        if not any_role and not who.can(permission):
            raise AccessDenied(
                f"user {who.describe()} may not {what}: that needs the role {' or '.join(roles_with(permission))}"
            )
        return who

    def _has_users(self) -> bool:
        with self.connect() as conn:
            return bool(conn.scalar(select(func.count()).select_from(m.UserRow)))

    def _check_site(self, subject: m.SubjectRow) -> None:
        who = self.identity
        if who is not None and who.site and subject.site and subject.site != who.site:
            raise AccessDenied(
                f"user {who.describe()} works at site {who.site} and may not change records of subject "
                f"{subject.subject_id} of site {subject.site}"
            )

    # -- plumbing -------------------------------------------------------------------------------------------
    @property
    def database(self) -> str:
        """The database as shown to people (SQLite path, or the URL without password)."""
        return describe_url(self.url)

    @property
    def anchor_path(self) -> Path:
        """The file outside the database that anchors the audit trail's head."""
        return self.study_dir / ANCHOR_FILE

    def _errors(self):
        return store_errors(self.url, busy_timeout_s=self.busy_timeout_s)

    @contextmanager
    def session(self, *, reason: str | None = None, scope: str = "clinical") -> Iterator[Session]:
        """A write session in one transaction, committed on success and rolled back on any error.

        Needs a user logged in with the password. Updates and deletes of study rows through this session need
        ``reason``; every change is audited under the user's name and the new audit head is anchored outside
        the database after the commit. ``scope`` says what is written: ``clinical`` data (refused while the
        database is locked), ``users``, ``unblind`` or ``lock``.
        """
        who = self.identity
        if who is None or not who.can_sign:
            self._require("read_records", "write to the study", any_role=True)
            raise AuthenticationError(
                f"user {who.username} was recognised by {who.method}; writing needs the password, which "  # type: ignore[union-attr]
                f"unlocks the signing key (set ${PASSWORD_ENV} or ${PASSWORD_FILE_ENV}, or answer the prompt)"
            )
        with self._write_session(who, reason, scope) as s:
            yield s

    @contextmanager
    def _write_session(
        self, who: Identity, reason: str | None, scope: str, *, anchor: bool = True
    ) -> Iterator[Session]:
        if scope not in _SCOPES:
            raise ValueError(f"unknown write scope {scope!r}")
        head = None
        with self._errors():
            sess = Session(self.engine, expire_on_commit=False, info={ACTOR_KEY: who.username, REASON_KEY: reason})
            try:
                with sess.begin():
                    conn = sess.connection()
                    if conn.dialect.name == "postgresql":
                        # serialise writers before reading the lock state (the chain lock is taken anyway)
                        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK})
                    problem = self._anchor_problem(conn)  # under the write lock: the head cannot move meanwhile
                    if problem:
                        raise StoreError(problem)
                    if scope == "clinical":
                        self._refuse_if_locked(conn)
                    if not self._synced:
                        self._sync_study(sess)
                    yield sess
                    sess.flush()
                    head = sess.info.pop(APPENDED_KEY, None)
            finally:
                sess.close()
        self._synced = True
        if head is not None and anchor:
            line = append_anchor(
                self.anchor_path, study_id=self.study_id, seq=head[0], head_hash=head[1], user=who.username,
                key=key_fingerprint(who.public_key), sign=lambda b: who.sign(b),
            )  # fmt: skip
            self._own_anchor = line.text  # signed here: its signature need not be checked again
            self._saw_own_anchor(line)

    def _saw_own_anchor(self, line: Any) -> None:
        """Count the line just appended as read when nobody appended since the last read (no re-read)."""
        cached = self._anchor_seen
        if cached is None or cached[0][0] != line.offset:
            return
        (_, count), head, ok = cached
        line = replace(line, line=count + 1)
        new_head = effective_head([line], head)
        end = line.offset + len(line.text.encode("utf-8")) + 1
        self._anchor_seen = ((end, count + 1), new_head, ok if new_head is head else True)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only session (never takes the SQLite write lock, so it does not wait for writers)."""
        with self._errors():
            sess = Session(self._reader, expire_on_commit=False, info={ACTOR_KEY: self.actor})
            try:
                with sess.begin():
                    yield sess
                    if sess.new or sess.dirty or sess.deleted:
                        raise StoreError("a read-only session of the store cannot change records")
            finally:
                sess.close()

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A read connection (Core) for queries and exports (never takes the SQLite write lock)."""
        with self._errors(), self._reader.connect() as conn:
            yield conn

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(study={self.study_id!r}, database={self.database!r}, user={self.actor!r})"

    # -- the study row, locks and anchors -------------------------------------------------------------------
    def _load_definition(self) -> None:
        """A store opened on a bare id takes the study's facts from the stored definition."""
        if self.study is not None:
            return
        with self.connect() as conn:
            definition = conn.scalar(select(m.StudyRow.definition).where(m.StudyRow.id == self.study_id))
        if definition:
            self.info = StudyInfo.from_dict(definition)

    def _sync_study(self, s: Session) -> None:
        """Record the study (and the facts of its definition) with the first write; follow definition changes."""
        row = s.get(m.StudyRow, self.study_id)
        bare = self.study is None
        definition = None if bare else plain(self.info.to_dict())
        if row is None:
            s.add(m.StudyRow(id=self.study_id, title=self.info.title, design=self.info.design, definition=definition))
            s.flush()
            return
        if not bare and canonical_json(row.definition) != canonical_json(definition):
            reason = s.info.get(REASON_KEY)
            s.info[REASON_KEY] = "study definition changed (study.yaml edited)"
            row.definition, row.title, row.design = definition, self.info.title, self.info.design
            s.flush()
            s.info[REASON_KEY] = reason

    def _lock_row(self, conn: Connection) -> Any:
        return conn.execute(_LATEST_LOCK, {"study_id": self.study_id}).first()

    def _refuse_if_locked(self, conn: Connection) -> None:
        row = self._lock_row(conn)
        if row is not None and row.action == "lock":
            raise StoreError(
                f"study {self.study_id} is locked (database lock of {row.at:%Y-%m-%d %H:%M} UTC by {row.by}: "
                f"{row.reason}); clinical data cannot change. A data manager may unlock it with a signed reason: "
                "toolkit study unlock --study ... --reason '...'"
            )

    @property
    def is_locked(self) -> bool:
        """True while the study's database is locked."""
        with self.connect() as conn:
            row = self._lock_row(conn)
        return row is not None and row.action == "lock"

    def _anchor_stat(self) -> tuple[int, int] | None:
        try:
            st = self.anchor_path.stat()
        except FileNotFoundError:
            return None
        return st.st_size, st.st_mtime_ns

    def _anchor_problem(self, conn: Connection) -> str | None:
        """Why this database must not be written (it is behind or beside its anchored head), or ``None``.

        Only what was appended to the anchor file since the last look is read; the database is asked every
        time (one small query on ``conn``, usually), so a database swapped under a long-lived store is still
        caught.
        """
        seen = self._anchor_stat()
        if seen is None:
            return None
        cached = self._anchor_seen
        if cached is None or seen[0] < cached[0][0]:  # first look, or the file shrank: read it all
            cached = ((0, 0), None, False)
        (offset, count), head, ok = cached
        if seen[0] > offset:
            part, offset = complete_part(self.anchor_path, offset)
            lines = read_anchors(self.anchor_path, text=part, first_line=count + 1)
            new_head = effective_head(lines, head)
            own = new_head is not None and new_head.text == self._own_anchor
            cached = ((offset, count + part.count("\n")), new_head, own or (ok and new_head is head))
            self._anchor_seen = cached
        _, head, signed_ok = cached
        if head is None:
            return None
        t = m.AuditEntry.__table__
        at_anchor = conn.scalar(_HASH_AT, {"seq": head.seq}) if head.seq else None
        if signed_ok and (not head.seq or at_anchor == head.hash):
            return None  # the usual case: one small query
        latest = conn.scalar(select(func.max(t.c.seq))) or 0
        keys = {r.username: r.public_key for r in conn.execute(select(m.UserRow.username, m.UserRow.public_key))}
        chain = {head.seq: at_anchor} if at_anchor else {}
        if signed_ok:  # the line's signature was checked when the file was read; only the database differs
            problems = anchor_problems(self.anchor_path, [head], chain, latest, keys, linked=False)
        else:
            problems = anchor_problems(self.anchor_path, [head], chain, latest, keys, linked=False)
            if not problems:
                self._anchor_seen = (self._anchor_seen[0], head, True)
        if not problems:
            return None
        return (
            f"{self.database} does not match the audit anchor {self.anchor_path}: {problems[0]}. Nothing is "
            "written to it; run `toolkit audit verify` and restore the right copy (`toolkit data restore`)"
        )

    def _refuse_start_over(self) -> None:
        """Refuse to create an empty database beside a data folder that already holds study data."""
        found = _study_data_found(self.study_dir)
        if not found:
            return
        raise StoreError(
            f"study {self.study_id}: the database {self.database} is missing or empty, but {self.study_dir} "
            f"holds {'; '.join(found)}. The toolkit does not start over silently: restore the database "
            f"(toolkit data restore --study {self.study_id} BACKUP, backups are under {self.study_dir / 'backups'}) "
            f"or point ${'TOOLKIT_DB_URL'} at the right database"
        )

    def _refuse_new(self) -> None:
        """Refuse to create the database of a study that has none yet (an explicit first step creates it)."""
        raise StoreError(
            f"study {self.study_id} has no database yet ({self.database}); nothing was created. A study's records "
            f"begin with its first user, an administrator: toolkit user add NAME --study {self.study_id} "
            "--full-name '...' --role administrator (the demo study: toolkit demo). If the study has records "
            "elsewhere, point $TOOLKIT_DB_URL or $TOOLKIT_DATA_DIR at them"
        )

    # -- paths and shared lookups ---------------------------------------------------------------------------
    def stored_path(self, path: Path) -> str:
        """The text stored for a file: relative to the study folder when inside it, else absolute."""
        path = Path(path).expanduser().resolve()
        try:
            return path.relative_to(self.study_dir.resolve()).as_posix()
        except ValueError:
            return path.as_posix()

    def resolve_path(self, stored: str) -> Path:
        """The file a stored path refers to."""
        path = Path(stored)
        return path if path.is_absolute() else self.study_dir / path

    def _subject(self, s: Session, subject_id: str, *, write: bool = True) -> m.SubjectRow:
        row = s.scalar(
            select(m.SubjectRow).where(
                m.SubjectRow.study_id == self.study_id, m.SubjectRow.subject_id == subject_id
            )
        )
        if row is None:
            raise StoreError(
                f"subject {subject_id!r} is not enrolled in study {self.study_id}; "
                f"enrol first: toolkit subject enroll --subject {subject_id} ..."
            )
        if write:
            self._check_site(row)
        return row

    def _known_site(self, site: str) -> str:
        """``site`` when the database knows it (or knows no sites at all), else a refusal listing them."""
        with self.connect() as conn:
            sites = list(conn.scalars(select(m.SiteRow.id).order_by(m.SiteRow.id)))
        if sites and site not in sites:
            raise DataError(f"site {site!r} is not a site of this database; sites: {', '.join(sites)}")
        return site

    def _visit(self, s: Session, subject: m.SubjectRow, visit_id: str) -> m.VisitRow:
        info = self.info.visit(visit_id)
        if self.info.visits and info is None:
            raise DataError(
                f"visit {visit_id!r} is not a visit of study {self.study_id}; accepted: "
                + ", ".join(v.id for v in self.info.visits)
            )
        row = s.scalar(
            select(m.VisitRow).where(m.VisitRow.subject_pk == subject.id, m.VisitRow.visit_id == visit_id)
        )
        if row is None:
            row = m.VisitRow(
                subject_pk=subject.id, visit_id=visit_id, visit_number=info.number if info else None
            )
            s.add(row)
            s.flush()
        return row

    def _checked_sha(self, path: Path, sha256: str, what: str) -> str:
        digest = str(sha256).strip().lower()
        if not SHA256_HEX.match(digest):
            raise DataError(f"{what} {path}: sha256 {sha256!r} is not 64 hexadecimal characters")
        if not path.is_file():
            raise DataError(f"{what} file {path} does not exist")
        actual = sha256_file(path)
        if actual != digest:
            raise DataError(
                f"{what} file {path}: its SHA-256 is {actual}, not the given {digest} (copy damaged or wrong file)"
            )
        return digest


def _identity(row: Any, method: str, key: Any) -> Identity:
    return Identity(
        username=row.username, full_name=row.full_name, roles=tuple(row.roles or ()), site=row.site,
        public_key=bytes.fromhex(row.public_key), method=method, _key=key,
    )  # fmt: skip


def _env_password() -> str | None:
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    path = os.environ.get(PASSWORD_FILE_ENV)
    if path:
        try:
            return Path(path).expanduser().read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError) as exc:
            raise AuthenticationError(f"${PASSWORD_FILE_ENV}: cannot read a password from {path} ({exc})") from None
    return None


def _os_login() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return None


def _study_data_found(folder: Path) -> list[str]:
    """What in a study's data folder shows that records were kept (the allocation list alone does not)."""
    found = []
    ledger = read_ledger(folder / LEDGER_FILE)
    if ledger:
        found.append(f"an allocation ledger with {len(ledger)} randomisation number(s) handed out ({LEDGER_FILE})")
    anchors = read_anchors(folder / ANCHOR_FILE) if (folder / ANCHOR_FILE).is_file() else []
    if anchors:
        found.append(f"audit anchors up to entry #{max(a.seq for a in anchors)} ({ANCHOR_FILE})")
    for sub, what in (("photos", "photo"), ("waveforms", "waveform")):
        n = sum(1 for p in (folder / sub).rglob("*") if p.is_file()) if (folder / sub).is_dir() else 0
        if n:
            found.append(f"{n} {what} file(s) under {sub}/")
    return found
