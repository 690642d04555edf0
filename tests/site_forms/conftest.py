"""Fixtures of the site tests: the shipped studies and their users, allocation lists and photo files."""

from __future__ import annotations

from store.conftest import (  # noqa: F401
    _test_users,
    demo_study,
    photo_file,
    randomized,
    splitface_study,
)
