"""Roles and what each may do: the permission table the store enforces on every read and write.

Roles follow the people of a blinded trial (ICH E6(R3)): an **investigator** enrols subjects, records
consent, patch tests and adverse events and assesses causality; an **operator** delivers sessions and takes
photos; a **blinded rater** scores photos and never sees an allocation, a dose or a session; a **data
manager** imports, corrects (with a reason) and locks the database; a **statistician** analyses blinded data;
only an **unblinded statistician** unblinds; a **monitor** reads and verifies; an **administrator** manages
users. A person may hold several roles, but never a blinded role together with one that sees allocations.
"""

from __future__ import annotations

from collections.abc import Iterable

from toolkit.errors import DataError, StoreError

__all__ = [
    "AccessDenied",
    "BLINDED_ROLES",
    "PERMISSIONS",
    "ROLES",
    "ROLE_PERMISSIONS",
    "check_roles",
    "permitted",
    "roles_with",
]

#: the roles a user may hold
ROLES = (
    "investigator",
    "operator",
    "blinded_rater",
    "data_manager",
    "statistician",
    "unblinded_statistician",
    "monitor",
    "administrator",
)

#: every permission, with what it allows (shown in refusals and in ``toolkit user roles``)
PERMISSIONS = {
    "read_records": "read subject records, photos, assessments and safety data",
    "read_allocation": "see allocations, arms, doses, delivered waveforms and device settings",
    "enroll": "enrol subjects, record consent and patch tests",
    "allocate": "randomise a subject",
    "deliver": "start, finish and close treatment sessions",
    "add_photos": "register photos",
    "measure": "store photo measurements",
    "assess": "score clinician scales",
    "record_safety": "record adverse events and protocol deviations",
    "assess_causality": "assess and sign the causality of an adverse event",
    "import": "import records from CSV",
    "correct": "correct or delete stored records (with a reason)",
    "lock": "lock and unlock the database",
    "unblind": "unblind the study",
    "export": "export datasets and build reports",
    "verify": "verify the audit trail",
    "manage_users": "add, disable and change users",
    "backup": "back up the study's database",
    "restore": "restore the study's database from a backup",
}

_EVERYONE = {"read_records", "verify"}

#: role -> permissions
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "investigator": frozenset(_EVERYONE | {
        "read_allocation", "enroll", "allocate", "add_photos", "assess", "record_safety", "assess_causality",
        "deliver",
    }),
    "operator": frozenset(_EVERYONE | {"read_allocation", "deliver", "add_photos", "measure"}),
    "blinded_rater": frozenset(_EVERYONE | {"assess"}),
    "data_manager": frozenset(_EVERYONE | {
        "read_allocation", "enroll", "record_safety", "import", "correct", "lock", "measure", "export", "backup",
        "restore",
    }),
    "statistician": frozenset(_EVERYONE | {"export", "measure"}),
    "unblinded_statistician": frozenset(_EVERYONE | {"read_allocation", "export", "unblind"}),
    "monitor": frozenset(_EVERYONE | {"read_allocation", "export"}),
    "administrator": frozenset({"verify", "manage_users", "backup", "restore"}),
}  # fmt: skip

#: roles that must stay blind to the allocation (never combined with a role that reads it)
BLINDED_ROLES = frozenset({"blinded_rater", "statistician"})


def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """The roles, validated: known names, at least one, no blinded role beside an unblinded one."""
    given = [str(r).strip().lower().replace(" ", "_").replace("-", "_") for r in roles]
    if not given:
        raise DataError(f"a user needs at least one role; roles: {', '.join(ROLES)}")
    unknown = [r for r in given if r not in ROLES]
    if unknown:
        raise DataError(f"unknown role {', '.join(map(repr, unknown))}; roles: {', '.join(ROLES)}")
    blind = sorted(set(given) & BLINDED_ROLES)
    seeing = sorted(r for r in set(given) if "read_allocation" in ROLE_PERMISSIONS[r])
    if blind and seeing:
        raise DataError(
            f"role {blind[0]} must stay blind to the allocation and cannot be combined with "
            f"{', '.join(seeing)}; give that person two separate accounts only if the protocol allows it"
        )
    return tuple(dict.fromkeys(given))


def permitted(roles: Iterable[str], permission: str) -> bool:
    """True when any of ``roles`` grants ``permission``."""
    if permission not in PERMISSIONS:  # a typo in the code must not silently deny or allow
        raise KeyError(f"unknown permission {permission!r}")
    return any(permission in ROLE_PERMISSIONS.get(r, ()) for r in roles)


def roles_with(permission: str) -> list[str]:
    """The roles that grant ``permission`` (for messages)."""
    return [r for r in ROLES if permission in ROLE_PERMISSIONS[r]]


class AccessDenied(StoreError):
    """The logged-in user's roles (or site) do not allow what was asked."""
