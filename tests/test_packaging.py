"""The project installs as declared, and its two environment descriptions agree."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent

# PyPI name -> conda-forge name where they differ
CONDA_NAMES = {
    "kaleido": "python-kaleido",
    "opencv-python-headless": "py-opencv",
    "dask[distributed]": "dask",
}


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^([A-Za-z0-9_.\-\[\]]+)\s*(.*)$", req.strip())
    assert m, req
    return m.group(1).lower(), m.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            name, spec = _split(dep)
            conda[name] = spec
    assert any(isinstance(d, dict) and "-e .[dev]" in d.get("pip", []) for d in env["dependencies"])
    for req in project["dependencies"]:
        name, spec = _split(req)
        conda_name = CONDA_NAMES.get(name, name)
        assert conda_name in conda, f"{name} from pyproject.toml is missing in environment.yml"
        assert conda[conda_name] == spec, f"{name}: pyproject {spec!r} vs environment.yml {conda[conda_name]!r}"
    # and nothing in environment.yml that pyproject does not know (besides python, pip, distributed)
    known = {CONDA_NAMES.get(_split(r)[0], _split(r)[0]) for r in project["dependencies"]}
    extra = set(conda) - known - {"python", "pip", "distributed"}
    assert not extra, f"environment.yml lists {sorted(extra)} that pyproject.toml does not"


def test_every_dependency_has_a_lower_bound() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"]:
        assert ">=" in req, f"dependency without a pinned lower bound: {req}"


def test_console_script_and_module_entry_agree() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "toolkit", "--version"], capture_output=True, text=True, check=True
    ).stdout
    import toolkit

    assert out.strip() == f"toolkit {toolkit.__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", toolkit.__version__)
