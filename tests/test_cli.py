"""The command line: help everywhere, a version, and no traceback for user errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main

from toolkit.cli import app


def _all_command_paths() -> list[list[str]]:
    click_app = typer.main.get_command(app)
    paths: list[list[str]] = [[]]

    def walk(cmd, prefix):
        for name, sub in getattr(cmd, "commands", {}).items():
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(click_app, [])
    return paths


@pytest.mark.parametrize("path", _all_command_paths(), ids=lambda p: " ".join(p) or "toolkit")
def test_help_everywhere(path: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit", *path, "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout


def test_unknown_command_is_a_usage_error_without_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit", "no-such-command"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
