"""A larger seeded fault campaign against the digital twin; prints the outcome table.

Usage: ``.venv/bin/python benchmarks/fault_campaign.py [RUNS] [SEED]`` (default 500 runs, seed 1). Uses a
temporary data folder; exits 1 if any invariant was violated.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TOOLKIT_DATA_DIR"] = tmp
        os.environ.pop("TOOLKIT_DB_URL", None)
        from toolkit.delivery.campaign import run_fault_campaign
        from toolkit.store import open_store
        from toolkit.study import load_study

        study = load_study(Path(__file__).resolve().parent.parent / "studies" / "epmc-demo")
        from benchmark_users import bench_login

        bench_login(study)
        with open_store(study) as store:
            result = run_fault_campaign(store, runs, seed=seed)
        print(result.table())
        return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
