"""How a command learns who runs it: ``--user`` / ``$TOOLKIT_USER``, a password from the environment, a
password file or the prompt, or an operating-system login mapped to a toolkit user (enough for reading).

Every command that opens a study's store goes through :func:`open_study_store`, so the same rules hold on
the command line as in a notebook (which calls :func:`toolkit.store.open_store` itself).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolkit.store import Store

__all__ = ["open_study_store", "prompt_new_password"]


def _interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def open_study_store(study: Any, *, write: bool = True, login: bool = True, create: bool = False) -> Store:
    """Open the study's store as the user running the command.

    Parameters
    ----------
    study : Study, str or path
        What :func:`toolkit.store.open_store` accepts.
    write : bool
        The command writes: without a password in the environment the user is asked for it (on a terminal),
        since writing needs the signing key it unlocks.
    login : bool
        ``False`` opens without logging in (adding the first user, verifying the audit trail).
    create : bool
        Create the study's database if it has none yet: only for adding a study's first user. Any other
        command on a study without a database refuses and says how to begin, creating nothing.
    """
    from getpass import getpass

    from toolkit.store import open_store
    from toolkit.store.identity import AuthenticationError

    store = open_store(study, login=login, create=create)
    if not login:
        return store
    try:
        who = store.identity
        if who is None and store._has_users() and _interactive():
            name = input("toolkit user: ").strip()
            store.login(name, getpass(f"password of {name}: "))
        elif who is not None and write and not who.can_sign and _interactive():
            store.login(who.username, getpass(f"password of {who.username} (unlocks the signing key): "))
    except (AuthenticationError, EOFError, KeyboardInterrupt):
        store.close()
        raise
    return store


def prompt_new_password(username: str, password_file: str | None) -> str:
    """A new user's password: the first line of ``password_file`` (``-``: standard input), else asked twice."""
    from getpass import getpass
    from pathlib import Path

    from toolkit.errors import DataError

    if password_file == "-":
        text = sys.stdin.readline().rstrip("\n")
    elif password_file:
        try:
            text = Path(password_file).expanduser().read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError) as exc:
            raise DataError(f"--password-file {password_file}: cannot read a password ({exc})") from None
    elif _interactive():
        text = getpass(f"new password of {username} (at least 10 characters): ")
        if getpass("again: ") != text:
            raise DataError("the two passwords differ; nothing was changed")
    else:
        raise DataError(
            "no password: give --password-file FILE (or --password-file - to read it from standard input)"
        )
    return text
