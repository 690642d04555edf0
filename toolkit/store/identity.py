"""Who is acting: password-derived secrets, per-user Ed25519 signing keys, and the authenticated identity.

A password is never stored. One Argon2id derivation (argon2-cffi, the RFC 9106 low-memory profile:
3 passes over 64 MiB, 4 lanes) turns it into 64 bytes: the first half is kept as the verifier, the second
half is the key that encrypts (AES-256-GCM) the user's Ed25519 private key. Logging in therefore both
proves the password and unlocks the signing key, at the cost of one derivation (≈ 0.1–0.2 s). The public
key sits in the audited ``users`` table, so replacing a user's secrets cannot forge their signatures without
leaving a trace in the audit trail.

An :class:`Identity` is what the store acts for; it is made by :func:`authenticate` (user and password) or,
for reading only, by an operating-system login or a PostgreSQL role mapped to a user.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from dataclasses import dataclass, field
from typing import Any

from toolkit.errors import StoreError

__all__ = [
    "KDF_PROFILE",
    "AuthenticationError",
    "Identity",
    "UserSecrets",
    "key_fingerprint",
    "new_secrets",
    "unlock_key",
    "verify_signature",
]


class AuthenticationError(StoreError):
    """A wrong password, an unknown or disabled user, or a missing credential."""


def _profile() -> Any:
    from argon2.profiles import RFC_9106_LOW_MEMORY

    return RFC_9106_LOW_MEMORY


#: the Argon2id parameters new secrets are made with (argon2-cffi's RFC 9106 low-memory profile)
KDF_PROFILE = "argon2id RFC 9106 low-memory (t=3, m=64 MiB, p=4)"


@dataclass(frozen=True)
class UserSecrets:
    """What the store keeps to check a password and unlock the signing key (never the password itself)."""

    salt: bytes
    time_cost: int
    memory_cost_kib: int
    parallelism: int
    #: first half of the Argon2id output
    verifier: bytes
    #: AES-256-GCM nonce and ciphertext of the 32-byte Ed25519 private key (associated data: the user name)
    key_nonce: bytes
    key_ciphertext: bytes
    #: raw 32-byte Ed25519 public key
    public_key: bytes

    def to_row(self) -> dict[str, Any]:
        """Column values of the ``user_secrets`` table."""
        return {
            "kdf": "argon2id",
            "salt": self.salt.hex(),
            "time_cost": self.time_cost,
            "memory_cost_kib": self.memory_cost_kib,
            "parallelism": self.parallelism,
            "verifier": self.verifier.hex(),
            "key_nonce": self.key_nonce.hex(),
            "key_ciphertext": self.key_ciphertext.hex(),
        }

    @classmethod
    def from_row(cls, row: Any, public_key_hex: str) -> UserSecrets:
        """The secrets read back from a ``user_secrets`` row and the user's public key."""
        return cls(
            salt=bytes.fromhex(row.salt),
            time_cost=int(row.time_cost),
            memory_cost_kib=int(row.memory_cost_kib),
            parallelism=int(row.parallelism),
            verifier=bytes.fromhex(row.verifier),
            key_nonce=bytes.fromhex(row.key_nonce),
            key_ciphertext=bytes.fromhex(row.key_ciphertext),
            public_key=bytes.fromhex(public_key_hex),
        )


def _derive(password: str, salt: bytes, t: int, m: int, p: int) -> bytes:
    from argon2.low_level import Type, hash_secret_raw

    return hash_secret_raw(
        password.encode("utf-8"), salt, time_cost=t, memory_cost=m, parallelism=p, hash_len=64, type=Type.ID
    )


def _check_password_text(password: str) -> None:
    if not isinstance(password, str) or len(password) < 10:
        raise StoreError("a password needs at least 10 characters")


def new_secrets(username: str, password: str, *, private_key: Any = None) -> tuple[UserSecrets, Any]:
    """Derive the secrets of a new password and a new (or the given) Ed25519 key; return them and the key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    _check_password_text(password)
    prof = _profile()
    salt = os.urandom(16)
    derived = _derive(password, salt, prof.time_cost, prof.memory_cost, prof.parallelism)
    key = private_key or Ed25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    nonce = os.urandom(12)
    ciphertext = AESGCM(derived[32:]).encrypt(nonce, raw, username.encode("utf-8"))
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    secrets = UserSecrets(
        salt, prof.time_cost, prof.memory_cost, prof.parallelism, derived[:32], nonce, ciphertext, public
    )
    return secrets, key


#: keys unlocked in this process, by a digest of the secrets and the password (see :func:`unlock_key`)
_UNLOCKED: dict[bytes, Any] = {}


def unlock_key(username: str, password: str, secrets: UserSecrets) -> Any | None:
    """The user's Ed25519 private key when ``password`` is right, else ``None``.

    A process that logs in again with the same password against the same stored secrets (a notebook
    re-opening the store, a batch of commands in one interpreter) reuses the key it unlocked instead of
    paying for a second Argon2id derivation; any change of the stored secrets misses this cache.
    """
    memo = hashlib.sha256(
        b"\0".join([username.encode(), secrets.salt, secrets.verifier, secrets.key_ciphertext, password.encode()])
    ).digest()
    if memo in _UNLOCKED:
        return _UNLOCKED[memo]
    key = _unlock(username, password, secrets)
    if key is not None:
        _UNLOCKED[memo] = key
    return key


def _unlock(username: str, password: str, secrets: UserSecrets) -> Any | None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    derived = _derive(password, secrets.salt, secrets.time_cost, secrets.memory_cost_kib, secrets.parallelism)
    if not hmac.compare_digest(derived[:32], secrets.verifier):
        return None
    try:
        raw = AESGCM(derived[32:]).decrypt(secrets.key_nonce, secrets.key_ciphertext, username.encode("utf-8"))
    except InvalidTag:
        return None
    key = Ed25519PrivateKey.from_private_bytes(raw)
    if key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) != secrets.public_key:
        return None
    return key


def key_fingerprint(public_key: bytes) -> str:
    """A short name of a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def verify_signature(public_key_hex: str, signature_hex: str, message: bytes) -> bool:
    """True when ``signature_hex`` is a valid Ed25519 signature of ``message`` by ``public_key_hex``."""
    from cryptography.exceptions import InvalidSignature

    try:
        _public_key(public_key_hex).verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=256)
def _public_key(public_key_hex: str) -> Any:
    """The Ed25519 public key object of a hex key (loaded once: a trail checks many lines by few users)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))


@dataclass(frozen=True, eq=False)
class Identity:
    """An authenticated user of a study database.

    Made by :meth:`toolkit.store.Store.login` / :func:`toolkit.store.open_store` (never by hand: the store
    checks the user, the roles and the key against its ``users`` table). An identity whose key is unlocked
    (logged in with the password) may write and sign; one established by an operating-system login or a
    PostgreSQL role alone may only read.
    """

    #: the user name (recorded as the actor of every audit entry)
    username: str
    #: printed name (shown with every electronic signature)
    full_name: str
    roles: tuple[str, ...]
    #: the site the user works at (``None``: every site)
    site: str | None
    #: raw Ed25519 public key
    public_key: bytes
    #: how the user was recognised: ``password``, ``os-login`` or ``database-role``
    method: str
    _key: Any = field(default=None, repr=False)

    @property
    def can_sign(self) -> bool:
        """True when the signing key is unlocked (logged in with the password)."""
        return self._key is not None

    def can(self, permission: str) -> bool:
        """True when one of the user's roles grants ``permission`` (see :mod:`toolkit.store.roles`)."""
        from toolkit.store.roles import permitted

        return permitted(self.roles, permission)

    def sign(self, message: bytes) -> str:
        """Ed25519 signature (hex) of ``message`` with the user's key."""
        if self._key is None:
            raise AuthenticationError(
                f"user {self.username} was recognised by {self.method} but has not given the password, which "
                "unlocks the signing key; log in with the password (toolkit: $TOOLKIT_PASSWORD or the prompt)"
            )
        return self._key.sign(message).hex()

    def describe(self) -> str:
        """``name (roles, site)`` for messages."""
        where = f", site {self.site}" if self.site else ""
        return f"{self.username} ({', '.join(self.roles)}{where})"
