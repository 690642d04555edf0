"""Reference values computed by R, the outside oracle of the statistics tests.

Each script in ``tests/stats/r/`` writes its input data and R's results as CSV files into the folder given
on its command line. :func:`r_reference` runs the script when ``Rscript`` (with the packages the script
loads) is installed, so the comparison is made against R live, and otherwise reads the same files saved in
``tests/stats/r/fixtures/`` (written by the same scripts). ``test_r_fixtures_are_current`` checks, where R
runs, that the saved files still equal what R computes.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

R_DIR = Path(__file__).resolve().parent / "r"
FIXTURES = R_DIR / "fixtures"


def rscript() -> str | None:
    """Path of ``Rscript`` or None."""
    return shutil.which("Rscript")


@functools.cache
def run_live(name: str) -> dict[str, pd.DataFrame] | None:
    """Run ``r/<name>.R`` in a temporary folder; None when R or one of the script's packages is missing."""
    exe = rscript()
    if exe is None:
        return None
    out = Path(tempfile.mkdtemp(prefix=f"rref-{name}-"))
    proc = subprocess.run(
        [exe, str(R_DIR / f"{name}.R"), str(out)], capture_output=True, text=True, timeout=600, check=False
    )
    if proc.returncode != 0:
        if "there is no package" in proc.stderr:
            return None
        raise RuntimeError(f"Rscript {name}.R failed:\n{proc.stderr[-2000:]}")
    frames = _read(out, name)
    shutil.rmtree(out, ignore_errors=True)
    return frames


def saved(name: str) -> dict[str, pd.DataFrame]:
    """The saved outputs of ``r/<name>.R``."""
    return _read(FIXTURES, name)


def r_reference(name: str) -> tuple[dict[str, pd.DataFrame], str]:
    """Outputs of ``r/<name>.R`` by file stem (``data``, ``results`` ...) and where they came from."""
    live = run_live(name)
    if live is not None:
        return live, "R (live)"
    return saved(name), "saved R output"


def _read(folder: Path, name: str) -> dict[str, pd.DataFrame]:
    frames = {}
    for path in sorted(folder.glob(f"{name}_*.csv")):
        frames[path.stem[len(name) + 1 :]] = pd.read_csv(path)
    if not frames:
        raise FileNotFoundError(f"no outputs of {name}.R in {folder}")
    return frames
