"""Fixtures of the delivery tests: the shipped studies, a running twin, eligible subjects in a real store."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_study(repo_root: Path):
    from toolkit.study import load_study

    return load_study(repo_root / "studies" / "epmc-demo")


@pytest.fixture(scope="session")
def splitface_study(repo_root: Path):
    from toolkit.study import load_study

    return load_study(repo_root / "studies" / "epmc-splitface")


@pytest.fixture(scope="session")
def waveforms_study(repo_root: Path):
    """The example study of every waveform: carrier EP, generator microcurrent, galvanic, DC + AC."""
    from toolkit.study import load_study

    return load_study(repo_root / "studies" / "epmc-waveforms")


@pytest.fixture
def twin():
    from instruments.twin import TwinBench

    with TwinBench(speed=1.0, seed=7) as bench:
        bench.model.max_simulated_pulses = 1
        yield bench


@pytest.fixture(autouse=True)
def _test_users(provision, demo_study, splitface_study) -> None:
    """The test users exist in the default database of both shipped studies (sessions run as the tester)."""
    provision(demo_study)
    provision(splitface_study)


@pytest.fixture
def demo_store(demo_study):
    from toolkit.store import open_store

    with open_store(demo_study) as store:
        yield store


@pytest.fixture
def split_store(splitface_study):
    from toolkit.store import open_store

    with open_store(splitface_study) as store:
        yield store


@pytest.fixture
def wf_store(waveforms_study, provision):
    from toolkit.store import open_store

    provision(waveforms_study)
    with open_store(waveforms_study) as store:
        yield store
