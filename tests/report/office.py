"""Open report tables the way a writer does: through LibreOffice (headless) and poppler.

LibreOffice reads our RTF or DOCX and saves what it understood as DOCX, which python-docx then reads back:
the table cells, the page header (title, population) and the page footer (footnotes) as the word processor
holds them. A PDF of the same file gives page counts and the text of every page.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
PDFTOTEXT = shutil.which("pdftotext")


def require_office() -> None:
    """Skip unless LibreOffice and poppler are installed (``.ci/run`` installs them)."""
    if SOFFICE is None:
        pytest.skip("LibreOffice is not installed (apt-get install libreoffice-writer-nogui)")
    if PDFTOTEXT is None:
        pytest.skip("poppler is not installed (apt-get install poppler-utils)")


def convert(files: list[Path], fmt: str, outdir: Path) -> list[Path]:
    """Convert ``files`` with one headless LibreOffice run (own profile, so parallel runs do not collide)."""
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:
        proc = subprocess.run(
            [SOFFICE, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
             "--convert-to", fmt, "--outdir", str(outdir), *map(str, files)],
            capture_output=True, text=True, timeout=180, check=False)
    ext = fmt.split(":")[0]
    out = [outdir / f"{f.stem}.{ext}" for f in files]
    missing = [p.name for p in out if not p.is_file()]
    assert not missing, f"LibreOffice did not convert {missing}: {proc.stdout} {proc.stderr}"
    return out


@dataclass
class Opened:
    """What a word processor shows of one table file."""

    cells: list[list[str]]
    header: list[str]
    footer: list[str]


def open_as_writer(files: list[Path], workdir: Path) -> dict[str, Opened]:
    """Each file as LibreOffice reads it (its saved-as-DOCX copy, read with python-docx), keyed by file name."""
    import docx

    out: dict[str, Opened] = {}
    by_kind: dict[str, list[Path]] = {}
    for f in files:
        by_kind.setdefault(f.suffix.lower(), []).append(f)
    for suffix, group in by_kind.items():  # stems repeat across kinds: one output folder per kind
        converted = convert(group, "docx:MS Word 2007 XML", workdir / f"from-{suffix.lstrip('.')}")
        for src, path in zip(group, converted, strict=True):
            d = docx.Document(str(path))
            cells = [[c.text for c in row.cells] for t in d.tables for row in t.rows]
            section = d.sections[0]
            header = [p.text for p in section.header.paragraphs if p.text.strip()]
            footer = [p.text for p in section.footer.paragraphs if p.text.strip()]
            out[src.name] = Opened(cells=cells, header=header, footer=footer)
    return out


def pdf_pages(pdf: Path) -> list[str]:
    """Text of each page of ``pdf`` (poppler's pdftotext, layout kept)."""
    text = subprocess.run([PDFTOTEXT, "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    return [p for p in text.split("\f") if p.strip()]
