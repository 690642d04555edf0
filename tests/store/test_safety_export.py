"""ADAE and ADEX from the store: coding against the study dictionary, emergence, onset day and session."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from toolkit.store import open_store
from toolkit.store.export import build_datasets

from .conftest import enrol_eligible

FIRST = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)


@pytest.fixture
def sets(demo_study, randomized):
    randomized(demo_study, 3)
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        arm = store.allocate("S-001").arm_id
        for k in (1, 2, 3):
            did = store.start_delivery("S-001", session_number=k, arm_id=arm, side=None, prescription={},
                                       bench={}, instruments={}, settings={}, started_at=FIRST + timedelta(days=7 * (k - 1)))
            store.finish_delivery(did, outcome="completed", reason=None, verification=[], waveforms=[],
                                  dose={"charge_C": 0.002, "energy_J": 0.5, "rms_current_A": 0.004,
                                        "pulse_count": 3000, "on_time_s": 600, "duration_s": 1200},
                                  ended_at=FIRST + timedelta(days=7 * (k - 1), minutes=20))
        for term, onset, relation in (("Redness at electrode site", date(2026, 1, 12), "related"),
                                      ("felt warm around the jaw", date(2026, 1, 20), "possible"),
                                      ("Headache", date(2026, 1, 8), "unlikely")):
            store.add_adverse_event("S-001", term=term, soc="General disorders and administration site conditions",
                                    severity="mild", serious=False, relation=relation, onset=onset,
                                    resolved=onset + timedelta(days=2) if term != "Headache" else None)
        store.lock(reason="test")
        store.unblind(reason="test")
        yield {d.name: d.frame for d in build_datasets(store)}


def test_adae_codes_flags_and_times_each_event(sets) -> None:
    adae = sets["ADAE"].set_index("AETERM")
    red = adae.loc["Redness at electrode site"]
    assert (red["AEDECOD"], red["LSRFL"], red["UNCODFL"]) == ("Application site erythema", "Y", "N")
    assert (red["TRTEMFL"], red["ASTDY"], red["ASESSN"], red["RELFL"]) == ("Y", 1, 1, "Y")
    assert red["AEOUT"] == "RECOVERED/RESOLVED"
    warm = adae.loc["felt warm around the jaw"]  # not in the dictionary: verbatim, flagged, never guessed
    assert (warm["AEBODSYS"], warm["UNCODFL"]) == ("UNCODED", "Y") and pd.isna(warm["AEDECOD"])
    assert (warm["ASTDY"], warm["ASESSN"]) == (9, 2)  # day 9 after session 2 (day 8)
    head = adae.loc["Headache"]  # before the first session: not treatment-emergent, day -4 (no day 0)
    assert (head["TRTEMFL"], head["ASTDY"], head["AEOUT"]) == ("N", -4, "NOT RECOVERED/NOT RESOLVED")
    ae = sets["AE"].set_index("AETERM")
    assert ae.loc["Redness at electrode site", "AEDECOD"] == "Application site erythema"


def test_adex_has_one_record_per_session_and_parameter(sets) -> None:
    adex = sets["ADEX"]
    assert len(adex) == 3 * 6
    charge = adex[adex["PARAMCD"] == "CHARGE"]
    assert charge["AVAL"].tolist() == pytest.approx([2.0, 2.0, 2.0]) and set(charge["AVALU"]) == {"mC"}
    assert charge["ASESSN"].tolist() == [1, 2, 3]
