"""A photo whose analysis failed QC gives no endpoint value, does not count as a measured photo, and its findings
are reported as not done, with the reason."""

from __future__ import annotations

import pandas as pd

from toolkit.store import open_store
from toolkit.store.adam import _photo_visits, endpoint_values
from toolkit.store.datasets import StudyRecords
from toolkit.store.sdtm import xf_domain

from .conftest import enrol_eligible

FOLD = pd.DataFrame({"region": ["nasolabial_l", "nasolabial_r"], "metric": ["wrinkle_length_mm"] * 2,
                     "value": [40.0, 44.0]})
PASSED = {"passed": True, "codes": [], "reasons": []}
#: as the analysis stores it for a follow-up of another person: its numbers were computed, the photo failed
FAILED = {"passed": False, "codes": ["baseline_mismatch"],
          "reasons": ["the baseline shows another face (face-shape distance 0.031 inter-ocular distances)"]}


def test_a_photo_that_failed_qc_gives_no_endpoint_value(demo_study, randomized, photo_file) -> None:
    randomized(demo_study, 3)
    with open_store(demo_study) as store:
        ids = {}
        for sid in ("S-001", "S-002"):
            enrol_eligible(store, sid)
            store.allocate(sid)
            for visit in ("BASELINE", "S12"):
                path, sha = photo_file(f"{sid}-{visit}")
                ids[sid, visit] = store.add_photo(sid, visit_id=visit, path=path, sha256=sha)
        store.add_measurement_runs([(pid, FOLD, FAILED if key == ("S-001", "S12") else PASSED)
                                    for key, pid in ids.items()], algorithm_version="t")
        rec = StudyRecords(store)
        assert rec.failed_photos == {ids["S-001", "S12"]: "baseline_mismatch"}
        # the findings keep what was measured on it ...
        assert set(rec.measurements["photo_id"]) == set(ids.values())
        # ... but the endpoint has no value at that visit, and the visit has no measured photo
        nlflen = next(ep for ep in rec.info.endpoints if ep.code == "NLFLEN")
        values = endpoint_values(rec, nlflen)
        got = set(zip(values["subject_id"], values["visit_id"], strict=True))
        assert got == {("S-001", "BASELINE"), ("S-002", "BASELINE"), ("S-002", "S12")}
        assert values["AVAL"].notna().all()
        assert _photo_visits(rec) == got
        # the findings: not done on that photo, with the reason; measured on the others
        xf = xf_domain(rec).frame
        mine = xf["XFREFID"].str.startswith(f"PHOTO {ids['S-001', 'S12']} ")
        assert mine.sum() == 2 and (~mine).sum() == 6
        assert (xf.loc[mine, "XFSTAT"] == "NOT DONE").all() and xf.loc[mine, "XFSTRESN"].isna().all()
        assert (xf.loc[mine, "XFREASND"] == "PHOTO FAILED QC: BASELINE_MISMATCH").all()
        assert xf.loc[~mine, "XFSTRESN"].notna().all() and xf.loc[~mine, "XFSTAT"].isna().all()
        assert xf.loc[~mine, "XFREASND"].isna().all()
