"""The :class:`Store`: the study's system of record, one facade over its aggregates.

Each aggregate lives in its own module: :mod:`~toolkit.store.subjects` (enrolment, consent, patch tests),
:mod:`~toolkit.store.allocations`, :mod:`~toolkit.store.deliveries`, :mod:`~toolkit.store.photos`,
:mod:`~toolkit.store.measurements`, :mod:`~toolkit.store.assessments`, :mod:`~toolkit.store.ratings` (the
blinded rater's photo sets), :mod:`~toolkit.store.safety` (adverse
events, deviations), :mod:`~toolkit.store.corrections` and :mod:`~toolkit.store.blinding`, all built on
:class:`~toolkit.store.base.StoreBase` (connection, transactions, paths).

Each public method is one logical write in one transaction: it either happens completely, with its audit
entries, or not at all. Inserts need no reason; corrections (:meth:`Store.update_record`,
:meth:`Store.delete_record`) do, and so does every update made through :meth:`Store.session`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from toolkit.errors import StoreError
from toolkit.store.allocations import Allocations
from toolkit.store.assessments import Assessments
from toolkit.store.blinding import Blinding
from toolkit.store.corrections import Corrections
from toolkit.store.database import DEFAULT_BUSY_TIMEOUT_S
from toolkit.store.deliveries import (
    DELIVERY_OUTCOMES,
    INTERRUPTED_GRACE_MIN,
    Deliveries,
    interrupted_close_from,
)
from toolkit.store.identity import Identity
from toolkit.store.measurements import Measurements
from toolkit.store.photos import Photos
from toolkit.store.ratings import Ratings
from toolkit.store.safety import AE_RELATIONS, AE_SEVERITIES, DEVIATION_CATEGORIES, Safety
from toolkit.store.sites import Sites
from toolkit.store.users import Users
from toolkit.store.values import FITZPATRICK_TYPES, SEXES

__all__ = [
    "AE_RELATIONS",
    "AE_SEVERITIES",
    "DELIVERY_OUTCOMES",
    "DEVIATION_CATEGORIES",
    "FITZPATRICK_TYPES",
    "INTERRUPTED_GRACE_MIN",
    "SEXES",
    "Store",
    "interrupted_close_from",
    "open_store",
]


class Store(
    Users, Sites, Allocations, Deliveries, Photos, Measurements, Assessments, Ratings, Safety, Corrections, Blinding
):
    """The system of record of one study: every aggregate behind one object.

    Opened with the parameters of :class:`~toolkit.store.base.StoreBase` (study, database URL, login, busy
    timeout); :func:`open_store` is the usual way in.
    """


def open_store(
    study: Any,
    url: str | None = None,
    *,
    user: str | None = None,
    password: str | None = None,
    identity: Identity | None = None,
    login: bool = True,
    busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    actor: str | None = None,
    create: bool = True,
) -> Store:
    """Open (creating and migrating if needed) the store of ``study`` as a logged-in user; a context manager.

    Parameters
    ----------
    study : toolkit.study.Study, str or path
        The study model, a study id, or the path of a ``study.yaml`` / study folder.
    url : str, optional
        SQLAlchemy URL (default ``$TOOLKIT_DB_URL``, else ``data/<study-id>/study.db``).
    user, password : str, optional
        Who acts (default ``$TOOLKIT_USER`` with ``$TOOLKIT_PASSWORD`` or ``$TOOLKIT_PASSWORD_FILE``; without
        them an operating-system login mapped to a user may read). Writing needs the password.
    identity : Identity, optional
        An identity logged in on another store of the same database (no second password prompt).
    login : bool
        ``False``: open without logging in (to add the first user or verify the audit trail).
    busy_timeout_s : float
        SQLite busy timeout in seconds.
    create : bool
        Create the database if the study has none yet (default); ``False`` refuses instead, creating nothing.

    Examples
    --------
    >>> with open_store(study, user="jdoe", password=getpass()) as store:  # doctest: +SKIP
    ...     store.enroll_subject("S-001", age=45, sex="F", fitzpatrick="III")
    """
    if isinstance(study, Path) or (
        isinstance(study, str) and (os.sep in study or study.endswith((".yaml", ".yml")))
    ):
        from toolkit.store.study_view import load_study_from

        study = load_study_from(study)
    try:
        return Store(
            study, url=url, user=user, password=password, identity=identity, login=login,
            busy_timeout_s=busy_timeout_s, actor=actor, create=create,
        )  # fmt: skip
    except IntegrityError as exc:  # pragma: no cover - translated inside, kept for safety
        raise StoreError(str(exc.orig)) from None
