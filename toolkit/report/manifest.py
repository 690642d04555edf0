"""The report manifest: SHA-256 of every file in the bundle and the versions of the software that made it."""

from __future__ import annotations

import hashlib
import json
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["MANIFEST_NAME", "file_sha256", "software_versions", "verify_manifest", "write_manifest"]

MANIFEST_NAME = "manifest.json"

#: distribution name for each component recorded in the manifest
_DISTRIBUTIONS = {
    "numpy": "numpy",
    "pandas": "pandas",
    "scipy": "scipy",
    "statsmodels": "statsmodels",
    "plotly": "plotly",
    "kaleido": "kaleido",
    "opencv": "opencv-python-headless",
    "python-docx": "python-docx",
    "pyreadstat": "pyreadstat",
    "toolkit": "epmc-toolkit",
}


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def software_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape the report (``"not installed"`` when absent)."""
    out = {"python": platform.python_version()}
    for name, dist in _DISTRIBUTIONS.items():
        try:
            out[name] = version(dist)
        except PackageNotFoundError:
            if name == "opencv":
                try:
                    import cv2

                    out[name] = cv2.__version__
                    continue
                except ImportError:
                    pass
            if name == "toolkit":
                import toolkit

                out[name] = toolkit.__version__
                continue
            out[name] = "not installed"
    return out


def write_manifest(root: str | Path, extra: dict | None = None) -> Path:
    """Write ``<root>/manifest.json`` listing every other file under ``root`` with its size and SHA-256.

    Parameters
    ----------
    root : str or Path
        The report folder.
    extra : dict, optional
        Further top-level entries (study id, creation time, static export status …).

    Returns
    -------
    Path
    """
    root = Path(root)
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST_NAME):
        files.append({"path": path.relative_to(root).as_posix(), "bytes": path.stat().st_size,
                      "sha256": file_sha256(path)})
    doc = {**(extra or {}), "software": software_versions(), "files": files}
    target = root / MANIFEST_NAME
    tmp = root / (MANIFEST_NAME + ".part")
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target


def verify_manifest(root: str | Path) -> list[str]:
    """Compare the files under ``root`` with its manifest.

    Returns
    -------
    list of str
        One line per problem (changed, missing or unlisted file); empty when the bundle is intact.
    """
    root = Path(root)
    doc = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    problems = []
    listed = set()
    for entry in doc.get("files", []):
        path = root / entry["path"]
        listed.add(entry["path"])
        if not path.is_file():
            problems.append(f"missing: {entry['path']}")
        elif file_sha256(path) != entry["sha256"]:
            problems.append(f"changed: {entry['path']}")
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and path.name != MANIFEST_NAME and rel not in listed:
            problems.append(f"not in manifest: {rel}")
    return problems
