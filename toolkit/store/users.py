"""Users of a study database: who they are, their roles and site, and their signing key.

The first user of a new database is created without logging in and must be an administrator; after that
only an administrator adds or disables users. A user is never deleted (their name stays on audit entries
and signatures); a disabled user can no longer log in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from toolkit.errors import DataError, StoreError
from toolkit.store import models as m
from toolkit.store.base import StoreBase
from toolkit.store.identity import Identity, UserSecrets, key_fingerprint, new_secrets
from toolkit.store.roles import check_roles

__all__ = ["UserRecord", "Users"]

_USERNAME = re.compile(r"^[a-z][a-z0-9_.\-]{1,63}$")


@dataclass(frozen=True)
class UserRecord:
    """A user as listed (no secrets)."""

    username: str
    full_name: str
    roles: tuple[str, ...]
    site: str | None
    os_login: str | None
    db_role: str | None
    #: first 16 hex digits of the SHA-256 of the public signing key
    key_fingerprint: str
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None

    @property
    def active(self) -> bool:
        """True unless the user was disabled."""
        return self.disabled_at is None


def _record(row: m.UserRow) -> UserRecord:
    return UserRecord(
        row.username, row.full_name, tuple(row.roles or ()), row.site, row.os_login, row.db_role,
        key_fingerprint(bytes.fromhex(row.public_key)), row.created_at, row.disabled_at, row.disabled_reason,
    )  # fmt: skip


class Users(StoreBase):
    """Adding, listing and disabling users."""

    def add_user(
        self,
        username: str,
        *,
        full_name: str,
        roles: list[str] | tuple[str, ...],
        password: str | None = None,
        site: str | None = None,
        os_login: str | None = None,
        db_role: str | None = None,
        secrets: UserSecrets | None = None,
    ) -> UserRecord:
        """Add a user with roles, a password (it also protects their new Ed25519 signing key) and a site.

        Parameters
        ----------
        username : str
            Lower-case letters, digits, ``._-`` (2–64 characters), e.g. ``"jdoe"``.
        full_name : str
            Printed name shown with the user's electronic signatures.
        roles : list of str
            See :data:`toolkit.store.roles.ROLES`.
        password : str
            At least 10 characters.
        site : str, optional
            The site the user works at; the user may then change records of that site's subjects only.
        os_login : str, optional
            Operating-system login that identifies the user (reading without typing a name).
        db_role : str, optional
            PostgreSQL role that identifies the user.
        secrets : UserSecrets, optional
            Instead of ``password``: secrets derived once by :func:`toolkit.store.identity.new_secrets` (the
            same person added to several databases keeps one password and one signing key).
        """
        name = str(username or "").strip()
        if not _USERNAME.match(name):
            raise DataError(
                f"user name {username!r} is not accepted; use 2–64 lower-case letters, digits, '.', '_' or '-', "
                "starting with a letter (e.g. jdoe)"
            )
        if not str(full_name or "").strip():
            raise DataError("a user needs a full name (printed with their electronic signatures)")
        role_list = check_roles(roles)
        first = self._user_count() == 0
        if first:
            if "administrator" not in role_list:
                raise StoreError(
                    "this database has no users yet: the first user must be an administrator "
                    "(toolkit user add NAME --role administrator ...)"
                )
        else:
            self._require("manage_users", "add users")
        if site is not None:
            site = self._known_site(str(site).strip())
        if secrets is None:
            if password is None:
                raise DataError(f"user {name}: give a password (at least 10 characters)")
            secrets, key = new_secrets(name, password)
        else:
            key = None
        if first:
            # the first administrator acts for themself; they are logged in afterwards when their key is known
            who = Identity(name, str(full_name).strip(), role_list, site, secrets.public_key, "password", key)
            scope = self._write_session(who, None, "users") if key is not None else self._unsigned_bootstrap(who)
        else:
            scope = self.session(scope="users")
        with scope as s:
            if s.get(m.UserRow, name) is not None:
                raise StoreError(f"user {name!r} already exists in {self.database}")
            for column, value in (("os_login", os_login), ("db_role", db_role)):
                if value and s.scalar(select(m.UserRow.username).where(getattr(m.UserRow, column) == value)):
                    raise StoreError(f"{column} {value!r} is already mapped to another user")
            row = m.UserRow(
                username=name, full_name=str(full_name).strip(), roles=list(role_list), site=site,
                os_login=os_login or None, db_role=db_role or None, public_key=secrets.public_key.hex(),
            )  # fmt: skip
            s.add(row)
            s.flush()
            s.add(m.UserSecretRow(username=name, **secrets.to_row()))
            s.flush()
            record = _record(row)
        if first and key is not None:
            self.identity = who
        return record

    def users(self) -> list[UserRecord]:
        """Every user of the database (active and disabled), by name."""
        with self.reading() as s:
            return [_record(r) for r in s.scalars(select(m.UserRow).order_by(m.UserRow.username))]

    def disable_user(self, username: str, *, reason: str) -> None:
        """Disable a user (they can no longer log in; their past entries and signatures stay theirs)."""
        if not str(reason or "").strip():
            raise DataError("disabling a user needs a reason")
        self._require("manage_users", "disable users")
        if self.identity is not None and self.identity.username == username:
            raise StoreError("you cannot disable yourself; ask another administrator")
        with self.session(reason=reason, scope="users") as s:
            row = s.get(m.UserRow, str(username))
            if row is None:
                raise StoreError(f"no user {username!r} in {self.database}")
            if row.disabled_at is not None:
                raise StoreError(f"user {username} is already disabled (since {row.disabled_at:%Y-%m-%d})")
            row.disabled_at = datetime.now(UTC)
            row.disabled_reason = str(reason).strip()

    def change_password(self, old_password: str, new_password: str) -> None:
        """Change the logged-in user's password (the signing key stays the same and is re-encrypted)."""
        from toolkit.store.identity import AuthenticationError, UserSecrets, unlock_key

        who = self._require("read_records", "change a password", any_role=True)
        with self.session(reason="password changed", scope="users") as s:
            row = s.get(m.UserSecretRow, who.username)
            user = s.get(m.UserRow, who.username)
            key = unlock_key(who.username, old_password, UserSecrets.from_row(row, user.public_key))
            if key is None:
                raise AuthenticationError(f"wrong password for user {who.username}; the password was not changed")
            secrets, _ = new_secrets(who.username, new_password, private_key=key)
            for k, v in secrets.to_row().items():
                setattr(row, k, v)

    def _unsigned_bootstrap(self, who: Identity):
        """The first user's write when their secrets came derived (no key at hand): anchored on next login."""
        from contextlib import contextmanager

        @contextmanager
        def scope():
            with self._write_session(who, None, "users", anchor=False) as s:
                yield s

        return scope()

    def _user_count(self) -> int:
        with self.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(m.UserRow)) or 0)
