"""Sites: where subjects are enrolled, benches stand and users work (registered by an administrator)."""

from __future__ import annotations

import re

from sqlalchemy import select

from toolkit.errors import DataError, StoreError
from toolkit.store import models as m
from toolkit.store.base import StoreBase

__all__ = ["Sites"]

_SITE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")


class Sites(StoreBase):
    """The database's sites."""

    def add_site(self, site_id: str, *, name: str) -> None:
        """Register a site; once any site is registered, subjects and users must belong to one of them."""
        site_id = str(site_id or "").strip()
        if not _SITE_ID.match(site_id):
            raise DataError(f"site id {site_id!r} is not accepted; use letters, digits, '-' or '_' (e.g. PAR)")
        if not str(name or "").strip():
            raise DataError("a site needs a name")
        self._require("manage_users", "register sites")
        with self.session(scope="users") as s:
            if s.get(m.SiteRow, site_id) is not None:
                raise StoreError(f"site {site_id} is already registered")
            s.add(m.SiteRow(id=site_id, name=str(name).strip()))

    def sites(self) -> list[tuple[str, str]]:
        """The registered sites as (id, name), by id."""
        with self.connect() as conn:
            return [(r.id, r.name) for r in conn.execute(select(m.SiteRow.id, m.SiteRow.name).order_by(m.SiteRow.id))]
