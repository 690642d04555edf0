"""The table of emulated SCPI in ``instruments/twin/README.md`` lists every command each twin accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from instruments.twin import TwinBench

README = Path(__file__).resolve().parents[2] / "instruments" / "twin" / "README.md"


def _short(header: str) -> str:
    """Canonical short form: optional nodes and suffixes dropped, each node cut to its upper-case letters
    (``[SOURce#:]FUNCtion:PULSe:WIDTh`` → ``FUNC:PULS:WIDT``)."""
    bare = re.sub(r"\[[^\]]*\]", "", header).replace("#", "").strip(":").rstrip("?")
    return ":".join(re.sub(r"[a-z0-9]", "", node) if node[:1] != "*" else node.upper()
                    for node in bare.split(":"))


def _documented() -> set[str]:
    found: set[str] = set()
    for token in re.findall(r"`([^`]+)`", README.read_text(encoding="utf-8")):
        first = token.split()[0]
        head, _, tail = first.rpartition(":")
        parts = tail.split("/")
        for part in parts:
            found.add(_short(f"{head}:{part}" if head else part))
    return found


def test_short_form_of_a_manual_header() -> None:
    assert _short("[SOURce#:]FUNCtion:PULSe:WIDTh") == "FUNC:PULS:WIDT"
    assert _short("OUTPut#[:STATe]") == "OUTP"
    assert _short("TRIG[:EDGE]:LEV") == "TRIG:LEV"
    assert _short("*IDN?") == "*IDN"


@pytest.mark.parametrize("role", ["stimulator", "scope", "current_source"])
def test_every_emulated_command_is_in_the_table(role: str) -> None:
    documented = _documented()
    with TwinBench(speed=1.0) as twin:
        headers = twin.devices[role].headers
    missing = [h for h in headers if _short(h) not in documented]
    assert headers and not missing, f"{role}: not in {README.name}: {missing}"
