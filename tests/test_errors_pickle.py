"""Errors raised in a worker process reach the parent whole: same class, message, details and attributes."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from instruments.errors import InstrumentReportedError, OutOfRange
from toolkit.errors import CheckFailed, DataError
from toolkit.imaging.photo_io import PhotoRejected
from toolkit.study.loader import StudyIssue, StudyValidationError


def _study_error() -> StudyValidationError:
    issue = StudyIssue(Path("studies/x/study.yaml"), 12, 3, "arms[0].prescription.current_uA",
                       "5000 µA is above the envelope's 400 µA")
    return StudyValidationError(Path("studies/x/study.yaml"), [issue])


ERRORS = [
    _study_error(),
    PhotoRejected("photo.jpg: truncated JPEG", reason="corrupt"),
    DataError("import.csv: 2 problem(s)", details=["line 3: score: 'x' is not a number", "line 4: ..."]),
    CheckFailed("session refused"),
    InstrumentReportedError("SYST:ERR? held errors", resource="TCPIP0::127.0.0.1::5025::SOCKET",
                            errors=['-222,"Data out of range"']),
    OutOfRange("amplitude 900 V above 500 V", resource="bench.yaml", details=["arms[0]"]),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_error_pickles_with_its_state(error: Exception) -> None:
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert str(again) == str(error)
    assert again.args == error.args
    assert again.__dict__.keys() == error.__dict__.keys()
    if isinstance(error, StudyValidationError):
        assert again.issues == error.issues and again.issues[0].field == "arms[0].prescription.current_uA"


def _raise_study_error() -> None:
    raise _study_error()


def test_study_error_crosses_a_process_boundary() -> None:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        future = pool.submit(_raise_study_error)
        with pytest.raises(StudyValidationError) as info:
            future.result(timeout=60)
    assert info.value.issues[0].line == 12
    assert "5000 µA" in str(info.value)
