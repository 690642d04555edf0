"""The users a benchmark acts as: an administrator, then one user with every role that sees the allocation.

Benchmarks log in like a scripted run does ($TOOLKIT_USER / $TOOLKIT_PASSWORD), so the costs they measure
include the identity checks, signatures and audit anchors of real use.
"""

from __future__ import annotations

import os

PASSWORD = "benchmark password"
USER = "bench"


def bench_login(study, url: str | None = None) -> None:
    """Create the benchmark users in the study's (new) database and log every later store in as ``bench``."""
    from toolkit.store import open_store

    with open_store(study, url=url, login=False) as store:
        if not store.users():
            store.add_user("bench-admin", full_name="Benchmark Administrator", roles=["administrator"],
                           password=PASSWORD)
            store.add_user(USER, full_name="Benchmark User", password=PASSWORD,
                           roles=["investigator", "operator", "data_manager", "unblinded_statistician"])
    os.environ["TOOLKIT_USER"] = USER
    os.environ["TOOLKIT_PASSWORD"] = PASSWORD
