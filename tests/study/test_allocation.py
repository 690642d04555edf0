"""Randomization: stratified permuted blocks of varying size, written once with seed and checksum."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from toolkit.errors import ConfigurationError, DataError
from toolkit.study import (
    AllocationExistsError,
    allocate,
    load_study,
    randomize,
    read_allocation,
    write_allocation,
)

from .conftest import DEMO, SPLITFACE, replace_once


@pytest.fixture(scope="module")
def demo():
    return load_study(DEMO)


@pytest.fixture(scope="module")
def splitface():
    return load_study(SPLITFACE)


def test_columns_and_strata(demo) -> None:
    frame = randomize(demo, 60)
    assert list(frame.columns) == ["rand_no", "stratum", "age_group", "block", "block_size", "arm"]
    assert frame["rand_no"].is_unique
    # every stratum gets its own list, and a stratum's rows carry that stratum's levels only
    assert set(frame["age_group"]) == {"lt45", "ge45"}
    for _stratum, rows in frame.groupby("stratum"):
        assert rows["age_group"].nunique() == 1
        assert len(rows) >= 30  # 60 subjects over 2 strata, rounded up to whole blocks
    # blocks never straddle strata
    assert (frame.groupby("block")["stratum"].nunique() == 1).all()


def test_every_block_is_balanced_and_complete(demo) -> None:
    frame = randomize(demo, 300)
    for _block, rows in frame.groupby("block"):
        size = rows["block_size"].iloc[0]
        assert len(rows) == size
        counts = rows["arm"].value_counts()
        assert set(counts.index) == {"EP", "MC", "SHAM"}
        assert (counts == size // 3).all()


def test_block_sizes_vary_and_come_from_the_plan(demo) -> None:
    frame = randomize(demo, 300)
    sizes = frame.drop_duplicates("block")["block_size"]
    assert set(sizes) == {3, 6}
    # drawn at random: both sizes are common, and the sequence is not a simple alternation
    assert 0.25 < (sizes == 3).mean() < 0.75
    assert not (np.diff((sizes == 3).to_numpy().astype(int)) != 0).all()


def test_unequal_ratio(write_study, demo) -> None:
    text = (DEMO / "study.yaml").read_text()
    text = replace_once(text, "  - id: EP\n    name: Electroporation\n    ratio: 1", "  - id: EP\n    name: Electroporation\n    ratio: 2")
    text = replace_once(text, "  block_sizes: [3, 6]", "  block_sizes: [4, 8]")
    frame = randomize(load_study(write_study(text)), 400)
    for _block, rows in frame.groupby("block"):
        counts = rows["arm"].value_counts()
        assert counts["EP"] == 2 * counts["MC"] == 2 * counts["SHAM"]


def test_reproducible_from_seed_and_prefix_stable(demo) -> None:
    first = randomize(demo, 60)
    again = randomize(demo, 60)
    pd.testing.assert_frame_equal(first, again)
    other = randomize(demo, 60, seed=demo.randomization.seed + 1)
    assert not first["arm"].equals(other["arm"])
    # a longer list starts with the shorter one, stratum by stratum
    longer = randomize(demo, 120)
    for stratum, rows in first.groupby("stratum"):
        head = longer[longer["stratum"] == stratum].head(len(rows))
        assert rows["arm"].tolist() == head["arm"].tolist()


def test_per_stratum_length(demo) -> None:
    frame = randomize(demo, 12, per_stratum=True)
    assert (frame.groupby("stratum").size() >= 12).all()
    assert (frame.groupby("stratum").size() < 12 + 6).all()


def test_splitface_assigns_sides(splitface) -> None:
    frame = randomize(splitface, 200)
    assert {"side_EP", "side_MC"} <= set(frame.columns)
    assert (frame["side_EP"] != frame["side_MC"]).all()
    assert set(frame["side_EP"]) == {"left", "right"}
    assert ((frame["arm"] == "EP") == (frame["side_EP"] == "left")).all()
    for _block, rows in frame.groupby("block"):
        assert (rows["side_EP"] == "left").sum() == len(rows) // 2


def test_blinding_codes_are_stable_and_complete(demo) -> None:
    codes = randomize(demo, 30).attrs["allocation"]["blinding_codes"]
    assert sorted(codes) == ["EP", "MC", "SHAM"] and sorted(codes.values()) == ["A", "B", "C"]
    assert randomize(demo, 90).attrs["allocation"]["blinding_codes"] == codes


def test_needs_a_number_of_subjects(write_study) -> None:
    text = replace_once((DEMO / "study.yaml").read_text(), "  subjects: 60\n", "")
    study = load_study(write_study(text))
    with pytest.raises(ConfigurationError, match="how many subjects"):
        randomize(study)
    with pytest.raises(ConfigurationError, match="how many subjects"):
        randomize(study, 0)


def test_write_records_versions_and_checksum(demo, data_root: Path) -> None:
    frame = randomize(demo)
    csv_path = write_allocation(demo, frame)
    assert csv_path == data_root / "epmc-demo" / "allocation.csv"
    record = json.loads(csv_path.with_name("allocation.json").read_text())
    assert record["csv_sha256"] == hashlib.sha256(csv_path.read_bytes()).hexdigest()
    assert record["seed"] == demo.randomization.seed
    assert record["numpy_version"] == np.__version__
    assert record["bit_generator"] == "PCG64" and "permuted blocks" in record["algorithm"]
    assert {"python_version", "toolkit_version", "blinding_codes", "study_file_sha256"} <= set(record)
    assert record["study_file_sha256"] == hashlib.sha256((DEMO / "study.yaml").read_bytes()).hexdigest()
    assert not stat.S_IMODE(os.stat(csv_path).st_mode) & 0o222  # written read-only
    back = read_allocation(demo)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert back.attrs["allocation"]["blinding_codes"] == frame.attrs["allocation"]["blinding_codes"]
    assert sorted(p.name for p in csv_path.parent.iterdir()) == ["allocation.csv", "allocation.json"]


def test_never_overwrites(demo, tmp_path: Path) -> None:
    frame = randomize(demo)
    write_allocation(demo, frame, tmp_path)
    before = (tmp_path / "allocation.csv").read_bytes()
    with pytest.raises(AllocationExistsError, match="never overwritten"):
        write_allocation(demo, randomize(demo, seed=1), tmp_path)
    assert (tmp_path / "allocation.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["allocation.csv", "allocation.json"]
    # a stray JSON alone also blocks, and nothing is half-written
    lone = tmp_path / "other"
    lone.mkdir()
    (lone / "allocation.json").write_text("{}")
    with pytest.raises(AllocationExistsError):
        write_allocation(demo, frame, lone)
    assert sorted(p.name for p in lone.iterdir()) == ["allocation.json"]


def test_tampering_is_detected(demo, tmp_path: Path) -> None:
    write_allocation(demo, randomize(demo), tmp_path)
    csv_path = tmp_path / "allocation.csv"
    os.chmod(csv_path, 0o644)
    csv_path.write_text(csv_path.read_text().replace(",EP", ",MC", 1))
    with pytest.raises(DataError, match="does not match the SHA-256"):
        read_allocation(tmp_path)


def test_refuses_a_frame_of_another_study(demo, splitface, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="made for 'epmc-splitface'"):
        write_allocation(demo, randomize(splitface), tmp_path)
    with pytest.raises(DataError, match="columns"):
        write_allocation(demo, pd.DataFrame({"arm": ["EP"]}), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_allocate_writes_the_same_bytes_as_randomize_then_write(demo, splitface, tmp_path: Path) -> None:
    for study in (demo, splitface):
        a = allocate(study, 40, folder=tmp_path / study.id / "a")
        b = write_allocation(study, randomize(study, 40), tmp_path / study.id / "b")
        assert a.read_bytes() == b.read_bytes()


def test_unwritable_destination_is_a_clear_error(demo, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match="cannot create the folder"):
        allocate(demo, 10, folder=blocker / "sub")
    assert blocker.read_text() == "not a folder"


def test_file_systems_without_hard_links_still_never_overwrite(demo, tmp_path: Path, monkeypatch) -> None:
    import errno

    def no_links(src, dst):
        raise OSError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    csv_path = allocate(demo, 10, folder=tmp_path)
    record = json.loads(csv_path.with_name("allocation.json").read_text())
    assert record["csv_sha256"] == hashlib.sha256(csv_path.read_bytes()).hexdigest()
    with pytest.raises(AllocationExistsError):
        allocate(demo, 10, folder=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["allocation.csv", "allocation.json"]
