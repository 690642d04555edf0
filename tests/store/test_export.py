"""Exports: BDS values against hand-computed truth, blinding, XPT limits and round trips, metadata."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyreadstat
import pytest

from toolkit.errors import DataError
from toolkit.store import open_store
from toolkit.store.export import analysis_dataset, export_datasets, subject_level_dataset
from toolkit.store.xpt import write_xpt

from .conftest import DEMO, enrol_eligible, run_cli

# nasolabial (L, R) wrinkle length and jawline (L, R) lift per photo: two photos per visit
PHOTOS = {
    ("S-001", "BASELINE"): [((10.0, 12.0), (1.0, 2.0)), ((11.0, 13.0), (3.0, 4.0))],
    ("S-001", "S12"): [((8.0, 9.0), (2.0, 2.0)), ((7.0, 10.0), (4.0, 4.0))],
    ("S-002", "BASELINE"): [
        ((20.0, 20.0), (0.0, 1.0)),
        ((22.0, None), (1.0, 0.0)),
    ],  # 2nd photo lacks NL right
    ("S-002", "S12"): [((15.0, 15.0), (0.5, 0.5)), ((16.0, 16.0), (1.5, 1.5))],
}


def _populate(store, photo_file, *, treat: bool = True):
    for sid, age in (("S-001", 50), ("S-002", 40)):
        enrol_eligible(store, sid, age=age)
        alloc = store.allocate(sid)
        # S-001 reaches the visit after session 12 (its scores need it); session 1 is enough for S-002
        for session in ((1, 12) if sid == "S-001" else (1,)) if treat else ():
            did = store.start_delivery(
                sid, session_number=session, arm_id=alloc.arm_id, side=None, prescription={}, bench={},
                instruments={}, settings={},
            )  # fmt: skip
            store.finish_delivery(
                did, outcome="completed", reason=None, dose={"charge_C": 0.0012, "energy_J": 0.3, "duration_s": 1200},
                verification=[], waveforms=[],
            )  # fmt: skip
    for (sid, visit), photos in PHOTOS.items():
        for k, (nl, jaw) in enumerate(photos):
            path, sha = photo_file(f"{sid}-{visit}-{k}")
            pid = store.add_photo(sid, visit_id=visit, path=path, sha256=sha)
            rows = [("nasolabial_l", "wrinkle_length_mm", nl[0]), ("jawline_l", "lift_mm", jaw[0])]
            rows += [("jawline_r", "lift_mm", jaw[1])]
            if nl[1] is not None:
                rows.append(("nasolabial_r", "wrinkle_length_mm", nl[1]))
            frame = pd.DataFrame(rows, columns=["region", "metric", "value"])
            store.add_measurements(pid, frame, algorithm_version="wrinkles 1.0", qc={})
    for sid, visit, scores in (
        ("S-001", "BASELINE", (3, 4)),
        ("S-001", "S12", (2, 2)),
        ("S-002", "BASELINE", (4, 4)),
    ):
        if visit == "S12" and not treat:
            continue  # not reached without sessions
        # baselines the day after consent; the visit after session 12 the day of the session (today)
        day = date(2026, 1, 6) if visit == "BASELINE" else date.today()
        for who, score in zip(("Dr A", "Dr B"), scores, strict=True):
            store.add_assessment(sid, visit_id=visit, scale="WSRS", score=score, assessor=who, assessed_on=day)
    enrol_eligible(store, "S-003", age=33)  # enrolled, not randomised


def test_bds_values_match_hand_computed_truth(demo_study, randomized, photo_file):
    frame = randomized(demo_study, 3)
    codes = frame.attrs["allocation"]["blinding_codes"]
    with open_store(demo_study) as store:
        _populate(store, photo_file)
        bds = analysis_dataset(store)
    v = bds.set_index(["USUBJID", "PARAMCD", "AVISIT"])
    # NLFLEN = sum of both folds per photo, mean over the visit's photos; a photo missing a fold is left out
    assert v.loc[("epmc-demo-S-001", "NLFLEN", "Baseline"), "AVAL"] == pytest.approx((22 + 24) / 2)
    assert v.loc[("epmc-demo-S-001", "NLFLEN", "After session 12"), "AVAL"] == pytest.approx(17.0)
    assert v.loc[("epmc-demo-S-002", "NLFLEN", "Baseline"), "AVAL"] == pytest.approx(40.0)
    s1 = v.loc[("epmc-demo-S-001", "NLFLEN", "After session 12")]
    assert s1["BASE"] == pytest.approx(23.0)
    assert s1["CHG"] == pytest.approx(-6.0)
    assert s1["PCHG"] == pytest.approx(-600 / 23)
    # LIFTJAW = mean of both sides per photo, then mean over photos
    assert v.loc[("epmc-demo-S-001", "LIFTJAW", "Baseline"), "AVAL"] == pytest.approx((1.5 + 3.5) / 2)
    # WSRS: mean of the two assessors
    assert v.loc[("epmc-demo-S-001", "WSRS", "Baseline"), "AVAL"] == pytest.approx(3.5)
    assert v.loc[("epmc-demo-S-001", "WSRS", "After session 12"), "CHG"] == pytest.approx(-1.5)
    base = bds[bds["ABLFL"] == "Y"]
    assert set(base["AVISIT"]) == {"Baseline"} and base["CHG"].isna().all()
    assert set(bds["PARAMCD"]) == {"NLFLEN", "LIFTJAW", "WSRS"}
    # blinded: treatments are codes from allocation.json; stratum and populations are carried
    arms = {r.USUBJID: r.TRTP for r in bds.itertuples()}
    with open_store(demo_study) as store:
        expected = {f"epmc-demo-{s.subject_id}": codes[s.allocation.arm_id] for s in store.subjects()[:2]}
    assert arms == expected
    assert set(bds["AGEGROUP"]) == {"ge45", "lt45"}
    assert set(bds["ITTFL"]) == {"Y"} and set(bds["SAFFL"]) == {"Y"}
    assert set(bds["PPROTFL"]) == {"N"}  # one session each; the study's PP rule asks for 10
    assert bds.attrs["blinded"] is True
    for col in (
        "USUBJID",
        "TRTP",
        "TRTA",
        "PARAMCD",
        "PARAM",
        "AVISIT",
        "AVISITN",
        "AVAL",
        "BASE",
        "CHG",
        "PCHG",
    ):
        assert col in bds.columns


def test_population_flags(demo_study, randomized, photo_file):
    randomized(demo_study, 3)
    with open_store(demo_study) as store:
        _populate(store, photo_file, treat=False)
        store.add_deviation("S-001", description="wrong serum", category="major")
        adsl = subject_level_dataset(store).set_index("USUBJID")
    assert adsl.loc["epmc-demo-S-003", "ITTFL"] == "N"
    assert adsl.loc["epmc-demo-S-001", "ITTFL"] == "Y"
    assert adsl.loc["epmc-demo-S-001", "SAFFL"] == "N"  # never treated
    assert set(adsl["PPROTFL"]) == {"N"}
    assert adsl.loc["epmc-demo-S-002", "NSESS"] == 0


def test_unblinding_via_cli_switches_exports_to_arm_names(demo_study, randomized, photo_file, capsys):
    randomized(demo_study, 3)
    with open_store(demo_study) as store:
        _populate(store, photo_file)
        out = export_datasets(store, formats=("csv",))
        assert out["adeff.csv"].parent == store.study_dir / "analysis"
        blinded = pd.read_csv(out["adeff.csv"])
        assert set(blinded["TRTP"]) <= {"A", "B", "C"}
        assert set(pd.read_csv(out["ex.csv"])["EXTRT"]) <= {"Arm A", "Arm B", "Arm C"}
        ex = pd.read_csv(out["ex.csv"])
        assert ex["EXDOSE"].isna().all()  # dose would reveal the modality
    code, _, err = run_cli(["study", "unblind", str(DEMO)], capsys)
    assert code == 2 and "--reason" in err
    code, _, err = run_cli(["study", "unblind", str(DEMO), "--reason", "final analysis"], capsys)
    assert code == 2 and "cannot be unblinded before its database is locked" in err
    code, stdout, err = run_cli(["study", "lock", "--study", str(DEMO), "--reason", "all data entered"], capsys)
    assert code == 0 and "locked by tester (signed)" in stdout, err
    code, stdout, _ = run_cli(["study", "unblind", str(DEMO), "--reason", "final analysis"], capsys)
    assert code == 0 and "unblinded by Test Tester (signed)" in stdout
    code, stdout, _ = run_cli(["data", "export", "--study", str(DEMO), "--format", "csv,xpt"], capsys)
    assert code == 0 and "(unblinded)" in stdout
    with open_store(demo_study) as store:
        assert store.is_unblinded
        from toolkit.store.audit import audit_trail

        (entry,) = audit_trail(store, table="unblindings")
        assert entry["actor"] == "tester" and entry["reason"] == "final analysis"
        assert [(s.table, s.meaning, s.signer) for s in store.signatures() if s.table != "deliveries"] == [
            ("study_locks", "locked", "tester"), ("unblindings", "unblinded", "tester")
        ]
        names = {s.subject_id: s.allocation.arm_id for s in store.subjects() if s.allocation}
    adeff = pd.read_csv(store.study_dir / "analysis" / "adeff.csv")
    # unblinded: TRTP is the arm id the analysis plan names (EP vs SHAM), EXTRT the arm's name
    got = {u.split("-", 2)[2]: t for u, t in zip(adeff["USUBJID"], adeff["TRTP"], strict=True)}
    assert got == names
    arm_names = {a.id: a.name for a in demo_study.arms}
    ex = pd.read_csv(store.study_dir / "analysis" / "ex.csv")
    assert set(ex["EXTRT"]) == {arm_names[names[s]] for s in ("S-001", "S-002")}
    assert ex["EXDOSE"].tolist() == pytest.approx([1.2] * 3)  # 0.0012 C in mC (S-001: sessions 1 and 12)


def test_xpt_round_trip_keeps_names_labels_and_values(demo_study, randomized, photo_file):
    randomized(demo_study, 3)
    with open_store(demo_study) as store:
        _populate(store, photo_file)
        out = export_datasets(store)
    define = pd.read_csv(out["define.csv"])
    assert set(define["dataset"]) == {"DM", "DS", "EX", "AE", "DV", "XF", "ADSL", "ADEFF", "ADAE", "ADEX"}
    for ds in ("dm", "ex", "ae", "xf", "adsl", "adeff"):
        frame, meta = pyreadstat.read_xport(str(out[f"{ds}.xpt"]))
        spec = define[define["dataset"] == ds.upper()].sort_values("order")
        assert meta.table_name == ds.upper()
        assert list(frame.columns) == list(spec["variable"])
        assert [meta.column_names_to_labels[c] for c in frame.columns] == list(spec["label"])
        csv = pd.read_csv(out[f"{ds}.csv"], dtype=str, keep_default_na=False)
        parquet = pd.read_parquet(out[f"{ds}.parquet"])
        assert len(frame) == len(csv) == len(parquet)
        for col, kind in zip(spec["variable"], spec["type"], strict=True):
            if kind == "Num":
                numbers = pd.to_numeric(csv[col].replace("", None)).astype(float)
                pd.testing.assert_series_equal(
                    frame[col].astype(float), numbers, check_names=False, rtol=1e-12
                )
            else:
                assert frame[col].tolist() == csv[col].tolist()
                assert max([0, *(len(str(x).encode()) for x in frame[col])]) <= int(
                    spec.loc[spec.variable == col, "length"].iloc[0]
                )
    adeff = pd.read_parquet(out["adeff.parquet"])
    assert adeff["AVAL"].notna().all()


@pytest.mark.parametrize(
    ("frame", "labels", "problem"),
    [
        (pd.DataFrame({"LONGNAME9": [1.0]}), {}, "variable 'LONGNAME9': name must be 1–8"),
        (pd.DataFrame({"AVAL": [1.0]}), {"AVAL": "x" * 41}, "variable AVAL: label is 41 characters"),
        (pd.DataFrame({"AETERM": ["y" * 201]}), {}, "variable AETERM: value in row 0 is 201 bytes"),
        (pd.DataFrame({"AETERM": ["é" * 101]}), {}, "variable AETERM: value in row 0 is 202 bytes"),
    ],
)
def test_xpt_limits_are_checked_before_writing(tmp_path, frame, labels, problem):
    path = tmp_path / "bad.xpt"
    with pytest.raises(DataError) as info:
        write_xpt(frame, path, name="BAD", label="Bad", labels=labels)
    assert any(d.startswith(problem) for d in info.value.details), info.value.details
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_xpt_limits_at_the_boundary_are_accepted(tmp_path):
    frame = pd.DataFrame({"NAME8CHR": ["z" * 200], "N": [1.5]})
    labels = {"NAME8CHR": "l" * 40, "N": "n"}
    path = write_xpt(frame, tmp_path / "ok.xpt", name="OKDATA", label="d" * 40, labels=labels)
    back, meta = pyreadstat.read_xport(str(path))
    assert back["NAME8CHR"].iloc[0] == "z" * 200 and meta.column_names_to_labels == labels


def test_an_overlong_value_continues_in_supp_and_numbered_variables(demo_study, randomized, data_root):
    randomized(demo_study, 3)
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        store.add_adverse_event(
            "S-001", term="réaction-" * 25, soc="Skin", severity="mild", serious=False, relation="possible",
            onset=date(2026, 1, 9),
        )  # fmt: skip
        written = export_datasets(store)  # SDTM AE continues in SUPPAE, ADaM ADAE in AETERM1
    ae, _, _ = read_xpt_frame(written["ae.xpt"])
    supp, _, _ = read_xpt_frame(written["suppae.xpt"])
    assert ae["AETERM"].iloc[0] + supp["QVAL"].iloc[0] == "réaction-" * 25
    adae, labels, _ = read_xpt_frame(written["adae.xpt"])
    assert adae["AETERM"].iloc[0] + adae["AETERM1"].iloc[0] == "réaction-" * 25
    assert labels["AETERM1"].endswith("(continued 1)")


def test_split_face_bds_has_one_record_per_side(splitface_study, randomized, photo_file):
    randomized(splitface_study, 2)
    with open_store(splitface_study) as store:
        level = splitface_study.randomization.factors[0].levels[0]
        enrol_eligible(store, "S-001", strata={"fitzpatrick_group": level}, fitzpatrick="II")
        alloc = store.allocate("S-001")
        for visit, (left, right) in (("BASELINE", (10.0, 20.0)), ("S12", (8.0, 19.0))):
            path, sha = photo_file(visit)
            pid = store.add_photo("S-001", visit_id=visit, path=path, sha256=sha)
            store.add_measurements(
                pid,
                pd.DataFrame(
                    {"region": ["nasolabial_l", "nasolabial_r"], "wrinkle_length_mm": [left, right]}
                ),
                algorithm_version="v1",
                qc={},
            )
        store.lock(reason="all data entered")
        store.unblind(reason="test of unblinded labels")
        bds = analysis_dataset(store)
    nl = bds[bds["PARAMCD"] == "NLFLEN"].set_index(["SIDE", "AVISIT"])
    assert nl.loc[("LEFT", "After session 12"), "CHG"] == pytest.approx(-2.0)
    assert nl.loc[("RIGHT", "After session 12"), "CHG"] == pytest.approx(-1.0)
    assert nl.loc[("LEFT", "Baseline"), "TRTP"] == alloc.side_map["left"]
    assert nl.loc[("RIGHT", "Baseline"), "TRTP"] == alloc.side_map["right"]


def test_bad_format_is_refused(demo_study):
    with (
        open_store(demo_study) as store,
        pytest.raises(DataError, match="accepted: csv, parquet, xpt"),
    ):
        export_datasets(store, formats="csv,sas7bdat")


def test_text_over_200_bytes_continues_in_supp_instead_of_failing_the_export(demo_study, randomized, tmp_path):
    randomized(demo_study, 3)
    reason = ("Operator stopped the session: the subject reported a sharp, burning sensation under the cheek "
              "electrode at minute 7; impedance fell from 12 kΩ to 1.8 kΩ within two bursts, which the guard "
              "flagged; electrodes were removed, skin inspected (erythema 2 × 3 cm, no blister) and the site "
              "physician informed. Résumé of actions logged; the subject chose to continue at the next visit "
              "after the reaction had settled, and the study physician agreed.")
    assert len(reason.encode("utf-8")) > 400
    with open_store(demo_study) as store:
        enrol_eligible(store, "S-001")
        arm = store.allocate("S-001").arm_id
        did = store.start_delivery("S-001", session_number=1, arm_id=arm, side=None, prescription={}, bench={},
                                   instruments={}, settings={})
        store.finish_delivery(did, outcome="aborted", reason=reason, dose={}, verification=[], waveforms=[])
        written = export_datasets(store, tmp_path / "out")
    assert "suppex.xpt" in written and "ex.xpt" in written
    ex, _, _ = read_xpt_frame(written["ex.xpt"])
    supp, _, name = read_xpt_frame(written["suppex.xpt"])
    assert name == "SUPPEX"
    first = ex.loc[0, "EXADJ"]
    assert len(first.encode("utf-8")) <= 200 and supp["QVAL"].iloc[0].startswith(" ")  # cut between words
    assert supp["QNAM"].tolist() == [f"EXADJ{k}" for k in range(1, len(supp) + 1)]
    assert (supp["IDVAR"] == "EXSEQ").all() and (supp["IDVARVAL"] == "1").all()
    assert all(len(v.encode("utf-8")) <= 200 for v in supp["QVAL"])
    assert first + "".join(supp["QVAL"]) == reason  # nothing lost


def read_xpt_frame(path):
    from toolkit.store.xpt import read_xpt

    return read_xpt(path)
