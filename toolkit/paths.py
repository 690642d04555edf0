"""Where study data lives at run time.

``data/<study-id>/`` below the data root. The root is ``$TOOLKIT_DATA_DIR`` when set, else ``./data`` in the
current working directory (the project checkout when run from there).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: environment variable that moves the data root (tests point it at a temporary folder)
DATA_DIR_ENV = "TOOLKIT_DATA_DIR"
#: environment variable with a SQLAlchemy URL that replaces the per-study SQLite file
DB_URL_ENV = "TOOLKIT_DB_URL"


def data_root() -> Path:
    """Return the data root folder (not created)."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser().resolve() if env else (Path.cwd() / "data").resolve()


def study_data_dir(study_id: str, *, create: bool = False) -> Path:
    """Return ``<data root>/<study_id>``, creating it when ``create`` is true."""
    path = data_root() / study_id
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def project_root() -> Path | None:
    """The source checkout this package runs from, or ``None`` when installed elsewhere."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").is_file() and (here / "studies").is_dir() else None


_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_path_part(text: object) -> str:
    """``text`` made safe as one file or folder name: runs of other characters become ``_``."""
    return _UNSAFE_IN_NAME.sub("_", str(text)).strip("._") or "_"
