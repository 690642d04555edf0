"""Fixtures of the instruments tests: a running twin bench on free loopback ports, and replay drivers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from instruments.bench import ConnectedBench, connect_bench
from instruments.twin import TwinBench


@pytest.fixture
def twin() -> Iterator[TwinBench]:
    """A twin bench on free ports (clock ×1, seed 7), stopped after the test."""
    with TwinBench(speed=1.0, seed=7) as tb:
        yield tb


@pytest.fixture
def connected(twin: TwinBench) -> Iterator[ConnectedBench]:
    """The twin bench connected through pyvisa-py (outputs off and read back off at the end)."""
    with connect_bench(twin.bench, timeout_s=2.0) as cb:
        yield cb
    assert not twin.any_output_on()
