"""The end-to-end demo on a small cohort: every room works together, and the truth is recovered."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from toolkit.demo import run_demo
from toolkit.errors import DataError

#: the module builds a whole demo study in its first test (several minutes on a busy 2-core machine); the
#: suite-wide 600 s per test would cut it off there
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("demo-data")
    old = os.environ.get("TOOLKIT_DATA_DIR")
    os.environ["TOOLKIT_DATA_DIR"] = str(root)
    try:
        # the size `make demo` runs: with 12 subjects (4 per arm) sampling scatter adds to the bias
        # described in test_truth_and_closed_loop_check
        result = run_demo(subjects=24, workers=2, static=False, console=None)
    finally:
        if old is None:
            os.environ.pop("TOOLKIT_DATA_DIR", None)
        else:
            os.environ["TOOLKIT_DATA_DIR"] = old
    return root, result


def test_every_scheduled_session_is_delivered_and_recorded(demo_run) -> None:
    root, result = demo_run
    ex = pd.read_csv(result.data_dir / "analysis" / "ex.csv")
    # one subject drops out after half of the course; everyone else gets all 12 sessions
    assert result.sessions_not_completed == 0
    assert result.sessions_completed == 23 * 12 + 6
    assert len(ex) >= result.sessions_completed
    # the EX domain carries the delivered dose (the demo is unblinded): charge, energy, r.m.s. current, pulses
    ep = ex[ex["EXTRT"] == "Electroporation"]
    assert len(ep) and (ep[["EXDOSE", "EXENRGJ", "EXIRMS", "EXNPULS"]] > 0).all().all()
    # the dose obeys physics: rectangular 70 V pulses deliver E = V·Q (EXDOSE in mC) within 3 %
    ratio = ep["EXENRGJ"] / (70.0 * ep["EXDOSE"] * 1e-3)
    assert ratio.between(0.97, 1.03).all(), ratio.describe()
    sham = ex[ex["EXTRT"] == "Sham"]
    assert len(sham) and (sham["EXDOSE"] == 0).all()
    waveforms = list((result.data_dir / "waveforms").rglob("*.npz"))
    assert waveforms, "raw scope captures are stored"


def test_photos_are_analysed_and_traceable(demo_run) -> None:
    _, result = demo_run
    assert result.photos == 23 * 5 + 2  # the dropout (6 sessions) misses S8, S12 and the follow-up
    assert result.photos_failed_qc == 1  # the photo filed under the wrong subject
    raw = list((result.data_dir / "photos" / "raw").rglob("*.jpg"))
    assert len(raw) == result.photos
    assert all(not os.access(p, os.W_OK) or os.geteuid() == 0 for p in raw)
    assert all((p.stat().st_mode & 0o222) == 0 for p in raw), "raw photos are stored read-only"
    # every analysed photo keeps its wrinkle overlay, every follow-up its displacement field too
    derived = result.data_dir / "photos" / "derived"
    wrinkles = list(derived.rglob("*_wrinkles.jpg"))
    displacement = list(derived.rglob("*_displacement.jpg"))
    assert len(wrinkles) == result.photos
    assert len(displacement) == result.photos - result.subjects  # all but the baselines


def test_truth_and_closed_loop_check(demo_run) -> None:
    _, result = demo_run
    truth = json.loads((result.data_dir / "truth.json").read_text())
    assert {e["endpoint"] for e in truth["effects"]} == {"NLFLEN", "NLFDEPTH", "LIFTJAW"}
    # each true effect is matched with an estimate from the analysis plan's results
    assert len(result.closed_loop) == len(truth["effects"])
    assert all(row["estimate"] == row["estimate"] for row in result.closed_loop)  # not NaN
    covered = {(row["endpoint"], row["contrast"]): row["covered"] for row in result.closed_loop}
    # The treatments make the folds shorter and shallower and lift the lower face. Measured at 24 subjects,
    # one seed: LIFTJAW 0.56 (0.34, 0.79) against 0.60 and 1.18 (0.97, 1.39) against 1.20; NLFDEPTH −473
    # (−577, −369) against −450 and −240 (−338, −143) against −245; NLFLEN −7.5 (−10.1, −4.8) against −7.0
    # and −2.4 (−4.9, 0.1) against −3.5 (the folds are drawn on skin free of the subject's own lines, so
    # their change is their own; the per-photo slope of the measured against the drawn change is 0.95).
    assert all(c is True for c in covered.values()), result.closed_loop
    nlflen_ep = next(r for r in result.closed_loop if r["endpoint"] == "NLFLEN" and r["contrast"] == "EP - SHAM")
    assert nlflen_ep["ci_high"] < 0  # the larger effect is detected


def test_measurement_validation_against_the_photos_known_truth(demo_run) -> None:
    import pandas as pd

    _, result = demo_run
    table = pd.read_csv(Path(result.report_dir) / "tables" / "measurement_validation.csv").set_index("PARAMCD")
    assert set(table.index) == {"NLFLEN", "NLFDEPTH", "LIFTJAW"}
    # lift, fold depth and fold length follow the truth in proportion (per photo, against its own truth)
    assert 0.95 <= table.at["LIFTJAW", "slope"] <= 1.05 and abs(table.at["LIFTJAW", "bias"]) < 0.05
    assert 0.9 <= table.at["NLFDEPTH", "slope"] <= 1.1
    assert 0.85 <= table.at["NLFLEN", "slope"] <= 1.15
    assert (table["n"] >= 80).all()
    # the bias with its interval (a subject's follow-ups share one baseline: clustered by subject)
    assert (table["bias_ci_low"] < table["bias"]).all() and (table["bias"] < table["bias_ci_high"]).all()
    index = (Path(result.report_dir) / "index.html").read_text(encoding="utf-8")
    assert "Measurement validation: photo endpoints against simulated truth" in index
    # each row reads e.g. "+23.3 (+3.2, +43.5)": one number of decimals for the bias and its interval
    row = re.search(r"<td>NLFDEPTH</td><td>\d+</td><td>[^<]+</td><td>([^<]+)</td><td>([^<]+)</td>", index)
    assert row, index[index.find("Measurement validation"):][:2000]
    assert re.fullmatch(r"[+-]\d+\.\d \([+-]\d+\.\d, [+-]\d+\.\d\)", row.group(1)), row.group(1)
    assert re.fullmatch(r"[+-]\d+\.\d % \([+-]\d+\.\d, [+-]\d+\.\d\)", row.group(2)), row.group(2)


def test_the_demo_photos_pass_qc_without_a_capture_fault(demo_run) -> None:
    import sqlite3

    _, result = demo_run
    runs = []
    with sqlite3.connect(result.data_dir / "study.db") as con:
        runs = [json.loads(q) for (q,) in con.execute("select qc from measurement_runs")]
    assert len(runs) >= 100
    # one photo is another person's, filed under a subject by mistake: it fails as not the subject's face
    failed = [r for r in runs if not r["passed"]]
    assert len(failed) == 1 and "baseline_mismatch" in failed[0]["codes"], [r["reasons"] for r in failed][:3]
    runs = [r for r in runs if r["passed"]]
    # the astronaut smiles a little at every visit; nothing else (orientation, mirroring, colour, texture,
    # sharpness, compression) is raised on the simulated re-captures, but for the one photo on which the demo
    # draws red dots after a session
    assert {c for r in runs for c in r["flag_codes"]} <= {"smile", "new_spots"}
    spotted = [r for r in runs if "new_spots" in r["flag_codes"]]
    assert len(spotted) == 1, [r["metrics"].get("spots") for r in spotted]
    assert spotted[0]["metrics"]["spots"] >= spotted[0]["metrics"]["spots_at_baseline"] + 10
    follow_ups = [r["metrics"] for r in runs if "skin_texture_ratio" in r["metrics"]]
    assert len(follow_ups) >= 80
    assert all(m["baseline_match"] > m["baseline_match_mirrored"] + 0.3 for m in follow_ups)


def test_the_mixed_up_photo_is_left_out_of_the_endpoints_and_listed_in_the_report(demo_run) -> None:
    _, result = demo_run
    analysis = result.data_dir / "analysis"
    xf = pd.read_csv(analysis / "xf.csv")
    failed = xf[xf["XFREASND"].fillna("").str.startswith("PHOTO FAILED QC")]
    assert failed["XFREFID"].nunique() == 1 and failed["XFSTRESN"].isna().all()
    assert (failed["XFSTAT"] == "NOT DONE").all()
    subject, visit = failed["USUBJID"].iloc[0], failed["VISIT"].iloc[0]
    assert visit == "After session 8"  # an interim visit: the primary visit's per-protocol photo is not touched
    adeff = pd.read_csv(analysis / "adeff.csv")
    mine = adeff[adeff["USUBJID"] == subject]
    assert not mine.empty and "After session 8" not in set(mine["AVISIT"]), mine[["PARAMCD", "AVISIT"]]
    adsl = pd.read_csv(analysis / "adsl.csv").set_index("USUBJID")
    assert adsl.at[subject, "PPROTFL"] == "Y"
    # the run's summary says it was made on purpose, and where to read why
    assert any("shows another person" in n and subject.endswith(n.split()[4]) for n in result.notes), result.notes
    # the report lists it, with the failed checks in words, and counts the photos analysed
    report = Path(result.report_dir)
    index = (report / "index.html").read_text(encoding="utf-8")
    title = "Listing of photographs excluded from the photo endpoints (failed quality control)"
    assert title in index
    number = re.search(r"Listing (16\.2\.\d+) " + re.escape(title), index).group(1)
    rows = pd.read_csv(report / "tables" / f"listing_{number.replace('.', '_')}.csv")
    assert rows["Subject"].tolist() == [subject] and rows["Visit"].tolist() == [visit]
    assert "baseline mismatch" in rows.at[0, "Failed check(s)"]
    photos = xf.loc[xf["XFCAT"] == "PHOTO METRIC", "XFREFID"].nunique()
    assert f"1 of {photos} analysed photograph(s) failed quality control" in index


def test_the_summary_explains_the_smile_warnings_by_the_count_in_suppxf(demo_run) -> None:
    _, result = demo_run
    note = next(n for n in result.notes if "`smile`" in n)
    smiles, photos = (int(x) for x in re.search(r"(\d+) of (\d+) photos carry", note).groups())
    # the counts are those of the records: SUPPXF's warnings, the XF photos
    analysis = result.data_dir / "analysis"
    supp = pd.read_csv(analysis / "suppxf.csv")
    warned = supp[(supp["QNAM"] == "PHQCWARN") & supp["QVAL"].str.contains("SMILE")]
    assert smiles == warned["IDVARVAL"].nunique() >= photos / 2
    assert photos == result.photos
    assert "neutral expression" in note and "fail_on_flags" in note


def test_red_dots_after_a_session_are_flagged_and_left_out_of_the_wrinkles(demo_run) -> None:
    _, result = demo_run
    note = next(n for n in result.notes if "red dots" in n)
    subject, visit = re.search(r"the photo of (\S+) at (.+?) shows red dots", note).groups()
    assert "new_spots" in note
    analysis = result.data_dir / "analysis"
    # the photo passes QC and gives its endpoint values, read without the dots
    adeff = pd.read_csv(analysis / "adeff.csv")
    mine = adeff[(adeff["USUBJID"].astype(str).str.endswith(subject)) & (adeff["AVISIT"] == visit)]
    assert not mine.empty and mine["AVAL"].notna().all(), mine[["PARAMCD", "AVISIT", "AVAL"]]
    # SUPPXF carries its warnings, and the report lists it among the photos measured with warnings, with the
    # advice to look at it and record any adverse event
    supp = pd.read_csv(analysis / "suppxf.csv")
    warned = supp[(supp["QNAM"] == "PHQCWARN") & supp["QVAL"].str.contains("NEW_SPOTS")]
    assert len(warned) == 1 and warned["USUBJID"].iloc[0].endswith(subject), warned
    index = (Path(result.report_dir) / "index.html").read_text(encoding="utf-8")
    title = "Listing of photographs measured with quality-control warnings"
    number = re.search(r"Listing (16\.2\.\d+) " + re.escape(title), index).group(1)
    rows = pd.read_csv(Path(result.report_dir) / "tables" / f"listing_{number.replace('.', '_')}.csv")
    spots = rows[rows["Warning(s)"].str.contains("new spots")]
    assert len(spots) == 1 and spots["Subject"].iloc[0].endswith(subject) and spots["Visit"].iloc[0] == visit
    assert "record any adverse event" in index
    # and again beside the subject's adverse events that day, as the demo's AE domain has them
    title = "Listing of photographs with new spots on the skin (possible skin reactions) and adverse events"
    number = re.search(r"Listing (16\.2\.\d+) " + re.escape(title), index).group(1)
    rows = pd.read_csv(Path(result.report_dir) / "tables" / f"listing_{number.replace('.', '_')}.csv")
    ae = pd.read_csv(analysis / "ae.csv")
    day = pd.Timestamp(str(spots["Captured"].iloc[0])[:10])
    ongoing = ae[ae["USUBJID"].str.endswith(subject) & (pd.to_datetime(ae["AESTDTC"]) <= day)
                 & ~(pd.to_datetime(ae["AEENDTC"]) < day)]
    assert rows["Visit"].tolist() == [visit]
    assert rows["Adverse events ongoing that day"].iloc[0] == ("; ".join(
        f"{t} (from {d})" for t, d in zip(ongoing["AEDECOD"], ongoing["AESTDTC"], strict=True)) or "none recorded")


def test_report_bundle_is_complete(demo_run) -> None:
    _, result = demo_run
    report = Path(result.report_dir)
    assert (report / "index.html").is_file()
    manifest = json.loads((report / "manifest.json").read_text())
    assert manifest["files"]
    index = (report / "index.html").read_text(encoding="utf-8")
    assert "Closed-loop" in index or "closed-loop" in index
    # the photographs, baseline against the last visit, with their overlays
    assert "Photographs with overlays" in index and "no overlay images" not in index
    # the contents list every table and listing in the order of their numbers
    contents = index[index.index("<h2>Contents</h2>"):]
    contents = contents[:contents.index("</ul>")]
    numbers = [tuple(map(int, n.split("."))) for n in re.findall(r">(?:Table|Listing) ([\d.]+)</a>", contents)]
    assert len(numbers) > 20 and numbers == sorted(numbers), numbers
    assert list((report / "tables").glob("*.docx")) and list((report / "datasets").glob("*.xpt"))
    # the figure pages share one local plotly.min.js (offline, and the bundle stays small)
    pages = list((report / "figures").glob("*.html"))
    assert pages and (report / "figures" / "plotly.min.js").is_file()
    assert all(p.stat().st_size < 1_000_000 for p in pages)
    assert "plotly.min.js" in json.dumps(manifest["files"])


def test_audit_trail_of_the_demo_verifies(demo_run) -> None:
    root, result = demo_run
    env = {**os.environ, "TOOLKIT_DATA_DIR": str(root)}
    study = Path(__file__).resolve().parent.parent / "studies" / "epmc-demo"
    proc = subprocess.run([sys.executable, "-m", "toolkit", "audit", "verify", "--study", str(study)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_demo_never_overwrites_real_study_data(data_root: Path) -> None:
    folder = data_root / "epmc-demo"
    folder.mkdir()
    (folder / "study.db").write_bytes(b"real data")
    with pytest.raises(DataError, match="never overwrites"):
        run_demo(subjects=6, static=False, console=None)
    assert (folder / "study.db").read_bytes() == b"real data"


def test_demo_refuses_a_cohort_too_small() -> None:
    proc = subprocess.run([sys.executable, "-m", "toolkit", "demo", "--subjects", "2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_the_dropout_is_withdrawn_and_outside_the_per_protocol_set(demo_run) -> None:
    _, result = demo_run
    adsl = pd.read_csv(result.data_dir / "analysis" / "adsl.csv")
    gone = adsl[adsl["EOSSTT"] == "DISCONTINUED"]
    assert len(gone) == 1
    row = gone.iloc[0]
    assert (row["DCSREAS"], row["EOTSTT"], row["PPROTFL"], row["CSESS"]) == (
        "WITHDRAWAL BY SUBJECT", "DISCONTINUED", "N", 6)
    assert result.withdrawn == {row["SUBJID"]: "WITHDRAWAL BY SUBJECT"}
    assert result.sessions_planned == 24 * 12
    assert result.per_protocol == int((adsl["PPROTFL"] == "Y").sum()) <= 23
    ds = pd.read_csv(result.data_dir / "analysis" / "ds.csv")
    assert "WITHDRAWAL BY SUBJECT" in set(ds.loc[ds["USUBJID"] == row["USUBJID"], "DSDECOD"])
    consort = next((result.report_dir / "figures").glob("figure_14_1_1.html")).read_text(encoding="utf-8")
    assert "Discontinued (n=1)" in consort


def test_safety_exposure_and_disposition_tables_recount_from_the_store(demo_run) -> None:
    root, result = demo_run
    from toolkit.store import open_store
    from toolkit.study import load_study

    tables = result.report_dir / "tables"
    index = (result.report_dir / "index.html").read_text(encoding="utf-8")
    assert "not available:" not in index
    old = os.environ.get("TOOLKIT_DATA_DIR")
    os.environ["TOOLKIT_DATA_DIR"] = str(root)
    try:
        study = load_study(Path(__file__).resolve().parents[1] / "studies" / "epmc-demo")
        password = (result.data_dir / "demo-passwords" / "demo-datamanager").read_text().strip()
        with open_store(study, user="demo-datamanager", password=password) as store:
            arms = {s.subject_id: s.allocation.arm_id for s in store.subjects() if s.allocation}
            deliveries = store.deliveries()
            events = store.adverse_events()
    finally:
        if old is None:
            os.environ.pop("TOOLKIT_DATA_DIR", None)
        else:
            os.environ["TOOLKIT_DATA_DIR"] = old
    done = deliveries[deliveries["status"] == "completed"]
    first = deliveries.groupby("subject_id")["started_at"].min().map(lambda t: t.date())
    n_arm = pd.Series(arms).value_counts()
    teae = {a: set() for a in n_arm.index}
    for e in events:
        if e.onset >= first[e.subject_id]:
            teae[arms[e.subject_id]].add(e.subject_id)

    def read(slug: str) -> pd.DataFrame:
        return pd.read_csv(tables / f"{slug}.csv", dtype=str, keep_default_na=False)

    overview = read("table_14_3_1_1").set_index("Subjects with")
    for arm, n in n_arm.items():
        k = len(teae[arm])
        assert overview.loc["Subjects with any treatment-emergent AE", f"{arm} (N={n})"] == \
            f"{k} ({int(100 * k / n + 0.5)}%)"
    exposure = read("table_14_3_2_1")
    means = exposure[exposure["Statistic"] == "Mean (SD)"].iloc[0]  # sessions completed per subject
    per_subject = done.groupby("subject_id")["session_number"].nunique()
    for arm, n in n_arm.items():
        mine = [per_subject.get(s, 0) for s, a in arms.items() if a == arm]
        mean = (Decimal(int(sum(mine))) / Decimal(len(mine))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        assert means[f"{arm} (N={n})"].split()[0] == str(mean)  # half up, as SAS prints 11.25 -> 11.3
    # disposition: the one withdrawal in the store is the one discontinued subject of ADSL and the listing
    listing = read("listing_16_2_1")
    assert (listing["End of study"] == "DISCONTINUED").sum() == len(result.withdrawn) == 1
    # in words and whole numbers, as a reader expects them (not AGE 52.0)
    assert listing["Age (years)"].str.fullmatch(r"\d+").all() and listing["Sessions completed"].str.fullmatch(r"\d+").all()
    # the primary analysis is Table 14.2.1; ADAE, ADEX, ADTTE are among the datasets
    primary = read("table_14_2_1")
    assert "Comparison" in primary.to_string()
    for name in ("adae.xpt", "adex.xpt", "adtte.xpt", "ds.xpt"):
        assert (result.report_dir / "datasets" / name).is_file(), name


def test_demo_acts_as_its_users_and_signs_its_key_records(demo_run) -> None:
    from toolkit.store import open_store
    from toolkit.store.audit import audit_trail

    root, result = demo_run
    password = (result.data_dir / "demo-passwords" / "demo-datamanager").read_text().strip()
    assert (result.data_dir / "demo-passwords" / "demo-datamanager").stat().st_mode & 0o077 == 0
    old = os.environ.get("TOOLKIT_DATA_DIR")
    os.environ["TOOLKIT_DATA_DIR"] = str(root)
    try:
        with open_store(result.study_id, user="demo-datamanager", password=password) as store:
            signatures = store.signatures()
            actors = {e["actor"] for e in audit_trail(store)}
            assert store.is_locked and store.is_unblinded
    finally:
        if old is None:
            os.environ.pop("TOOLKIT_DATA_DIR", None)
        else:
            os.environ["TOOLKIT_DATA_DIR"] = old
    by_meaning: dict[str, set[str]] = {}
    for s in signatures:
        by_meaning.setdefault(s.meaning, set()).add(s.signer)
    assert by_meaning == {"performed": {"demo-operator"}, "causality assessed": {"demo-investigator"},
                          "locked": {"demo-datamanager"}, "unblinded": {"demo-statistician"}}
    assert sum(s.meaning == "performed" for s in signatures) == result.sessions_completed
    assert actors <= {"demo-admin", "demo-investigator", "demo-operator", "demo-datamanager", "demo-statistician",
                      "demo-rater", "demo-rater-2"}
    anchors = (result.data_dir / "audit-anchors.jsonl").read_text().splitlines()
    manifest = json.loads((result.report_dir / "manifest.json").read_text())
    assert manifest["audit_head"]["hash"] == json.loads(anchors[-1])["hash"]
    assert "face masked" in "".join(
        p.read_text(errors="ignore") for p in (result.report_dir / "figures").glob("*.html"))


def test_the_withdrawal_is_an_intercurrent_event_of_the_estimands(demo_run) -> None:
    _, result = demo_run
    results = result.data_dir / "analysis" / "results"
    adsl = pd.read_csv(result.data_dir / "analysis" / "adsl.csv")
    usubjid = adsl.loc[adsl["EOSSTT"] == "DISCONTINUED", "USUBJID"].iloc[0]
    events = pd.read_csv(results / "estimand_E_NLFLEN_events.csv")
    assert list(events["USUBJID"]) == [usubjid]
    row = events.iloc[0]
    # six sessions a week apart and the withdrawal five days later: S4 is before the event, S8 the first after
    assert (row["event"], row["strategy"], row["first_visit_affected"], row["missing_after_event"]) == (
        "treatment_discontinuation", "hypothetical", "After session 8", 3)
    flags = pd.read_csv(results / "estimand_E_NLFLEN_records.csv", keep_default_na=False)
    assert set(flags.loc[flags["USUBJID"] == usubjid, "ICEFL"]) == {"", "Y"}
    estimates = pd.read_csv(results / "estimand_E_NLFLEN_estimates.csv")
    assert list(estimates["role"]).count("sensitivity") == 6
    assert (pd.read_csv(results / "estimand_E_NLFLEN_tipping_point.csv")["tipping_delta"] > 0).any()
    index = (Path(result.report_dir) / "index.html").read_text(encoding="utf-8")
    assert "Estimand E_NLFLEN" in index and "tipping-point analysis" in index
    assert "Intercurrent events of estimand E_NLFLEN by subject" in index


# ------------------------------------------------------------------------------ the blinded rating station
def _quadratic_kappa(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cohen's kappa with quadratic weights of the rows of ``x`` against those of ``y`` (equally spaced grades):
    1 − mean squared difference / its expectation under independent marginals."""
    observed = ((x - y) ** 2).mean(axis=-1)
    chance = x.var(axis=-1) + y.var(axis=-1) + (x.mean(axis=-1) - y.mean(axis=-1)) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - observed / chance


def _icc_a1(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ICC(2,1) (absolute agreement, single rater) of two raters from the two-way ANOVA mean squares
    (Shrout & Fleiss 1979, case 2)."""
    n, k = x.shape[-1], 2
    grand = (x.mean(axis=-1) + y.mean(axis=-1)) / 2
    rows = (x + y) / 2
    msr = k * ((rows - grand[..., None]) ** 2).sum(axis=-1) / (n - 1)
    msc = n * ((x.mean(axis=-1) - grand) ** 2 + (y.mean(axis=-1) - grand) ** 2) / (k - 1)
    sse = ((x - rows - x.mean(axis=-1)[..., None] + grand[..., None]) ** 2).sum(axis=-1) + \
        ((y - rows - y.mean(axis=-1)[..., None] + grand[..., None]) ** 2).sum(axis=-1)
    mse = sse / ((n - 1) * (k - 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)


def _station_grades(root: Path, result) -> pd.DataFrame:
    from toolkit.store import open_store

    password = (result.data_dir / "demo-passwords" / "demo-datamanager").read_text().strip()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOOLKIT_DATA_DIR", str(root))
        with open_store(result.study_id, user="demo-datamanager", password=password) as store:
            return store.rating_records().merge(store.rating_set_key(), on=["set_id", "scale"])


def test_the_blinded_raters_grade_at_the_station_and_their_agreement_is_reported(demo_run) -> None:
    """The demo's clinician grades come from two simulated raters at the rating station. Their agreement in the
    report must be what raters of that noise and bias give: each estimate lies within the 0.1–99.9 % range of
    the same statistic over 20000 simulated re-gradings of the same photo sets by the same rater model (the
    statistics recomputed here by their textbook formulas). About 16 figures are checked at that level, so a
    correct run passes for at least 97 % of seeds (Bonferroni)."""
    from toolkit.demo.raters import DEMO_RATERS, SimulatedRater

    root, result = demo_run
    truth = json.loads((result.data_dir / "rater-truth.json").read_text())
    raters = {r["username"]: SimulatedRater(**r) for r in truth["raters"]}
    assert list(raters) == [r.username for r in DEMO_RATERS] and len(raters) >= 2
    latent = {s["set_id"]: s["latent_grade"] for s in truth["sets"]}
    grades = _station_grades(root, result)
    first, again = grades[grades["repeat"] == 0], grades[grades["repeat"] == 1]
    # every rater graded every photo set once (WSRS at three visits, GAIS twice against baseline), and a
    # fifth of them (study.yaml's default rerate_fraction 0.2) a second time, blind
    for name in raters:
        mine = first[first["rater"] == name]
        assert sorted(mine["set_id"]) == sorted(latent), name
        for scale, n in mine.groupby("scale").size().items():
            redone = again[(again["rater"] == name) & (again["scale"] == scale)]
            assert 0.08 * n <= len(redone) <= 0.35 * n, (name, scale, len(redone), n)
    assert first.groupby("scale")["set_id"].nunique().to_dict() == {"GAIS": 23 * 2, "WSRS": 23 * 3 + 1}

    # the efficacy dataset takes the mean of the raters' first grades; re-grades stay out
    adeff = pd.read_csv(result.data_dir / "analysis" / "adeff.csv")
    adeff = adeff[adeff["PARAMCD"].isin(["WSRS", "GAIS"])]
    from toolkit.study import load_study

    number = {v.id: float(v.number) for v in load_study(Path(__file__).resolve().parents[1] / "studies"
                                                       / "epmc-demo").visits}
    mean = first.assign(USUBJID=f"{result.study_id}-" + first["subject_id"],
                        AVISITN=first["visit_id"].map(number)).groupby(
        ["scale", "USUBJID", "AVISITN"])["score"].mean().rename_axis(["PARAMCD", "USUBJID", "AVISITN"])
    got = adeff.set_index(["PARAMCD", "USUBJID", "AVISITN"])["AVAL"]
    assert len(got) == len(mean)
    merged = mean.to_frame("station").join(got, how="inner")
    assert len(merged) == len(mean) and np.allclose(merged["station"], merged["AVAL"])
    assert set(np.round(2 * got)) <= set(range(2, 11))  # means of two whole grades

    rng = np.random.default_rng(2026)
    reps = 20000
    by_scale = {}
    for scale, part in first.groupby("scale"):
        sets = sorted(part["set_id"].unique())
        low, high = (1.0, 5.0)
        lat = np.array([latent[s] for s in sets])
        sim = {name: r.grade(np.broadcast_to(lat, (reps, len(lat))), rng, low, high) for name, r in raters.items()}
        obs = {name: part[part["rater"] == name].set_index("set_id").loc[sets, "score"].to_numpy() for name in raters}
        by_scale[scale] = (sets, lat, sim, obs)
        # the known truth: each rater's grades sit at their bias from the latent grades, within the spread of
        # the simulation (a grade filed against the wrong set or visit would move this and the agreement)
        for name in raters:
            expected = (sim[name] - lat).mean(axis=1)
            low_q, high_q = np.quantile(expected, [0.001, 0.999])
            offset = float((obs[name] - lat).mean())
            assert low_q <= offset <= high_q, (scale, name, offset, low_q, high_q)
    # the second rater's bias of half a grade shows between the raters
    _, lat, sim, obs = by_scale["WSRS"]
    gap = sim["demo-rater-2"].mean(axis=1) - sim["demo-rater"].mean(axis=1)
    low_q, high_q = np.quantile(gap, [0.001, 0.999])
    assert 0.2 < low_q <= float(obs["demo-rater-2"].mean() - obs["demo-rater"].mean()) <= high_q < 0.8

    table = _agreement_rows(result)
    names = sorted(raters)
    alias = {f"Rater {i + 1}": n for i, n in enumerate(names)}
    checked = 0
    for _, row in table.iterrows():
        sets, lat, sim, obs = by_scale[row["Scale"]]
        formula = _quadratic_kappa if row["Statistic"].startswith("Weighted kappa") else _icc_a1
        if row["Agreement"] == "Inter-rater":
            a, b = (alias[x] for x in row["Raters compared"].split(" vs "))
            simulated = formula(sim[a], sim[b])
            assert int(row["Photo sets"]) == len(sets)
        else:
            who = alias[row["Raters compared"].split(" (")[0]]
            mine = again[(again["rater"] == who) & (again["scale"] == row["Scale"])]
            pick = [sets.index(s) for s in mine["set_id"]]
            second = raters[who].grade(np.broadcast_to(lat[pick], (reps, len(pick))), rng, 1.0, 5.0)
            simulated = formula(sim[who][:, pick], second)
            assert int(row["Photo sets"]) == len(pick)
        low_q, high_q = np.nanquantile(simulated, [0.001, 0.999])
        estimate = float(row["Estimate"])
        assert low_q - 0.005 <= estimate <= high_q + 0.005, (row, low_q, high_q)
        checked += 1
    # per scale: kappa and ICC between the two raters, and within each rater
    assert checked == 2 * 2 * (1 + len(raters))
    index = (Path(result.report_dir) / "index.html").read_text(encoding="utf-8")
    assert "Rater agreement on the clinician scales" in index
    assert not any(n in index for n in names)  # raters are numbered in the report, never named


def _agreement_rows(result) -> pd.DataFrame:
    """The rater agreement table of the demo's report (its CSV)."""
    for path in sorted((Path(result.report_dir) / "tables").glob("table_*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if {"Agreement", "Raters compared", "Statistic", "Estimate"} <= set(frame.columns):
            return frame
    raise AssertionError("the report has no rater agreement table")


def test_the_report_draws_delivered_waveforms_against_their_prescription(demo_run) -> None:
    """A live electroporation pulse, live microcurrent cycles and a verified pulse train, each over the prescribed
    waveform and the band its level was checked in, with every checked sample inside (the sessions completed)."""
    root, result = demo_run
    metas = []
    for page in sorted((Path(result.report_dir) / "figures").glob("figure_14_3_*.html")):
        for found in re.findall(r'"meta":(\{[^{}]*"kind":"waveform"[^{}]*\})', page.read_text(encoding="utf-8"))[:1]:
            metas.append(json.loads(found))
    titles = [m["title"] for m in metas]
    for what in ("electroporation pulse during treatment", "microcurrent cycles during treatment",
                 "electroporation pulse train, dummy-load verification"):
        assert any(t.startswith(f"Delivered waveform: {what} (subject S-") for t in titles), (what, titles)
    assert all(m["n_outside"] == 0 for m in metas), metas
    index = (Path(result.report_dir) / "index.html").read_text(encoding="utf-8")
    assert "No prescribed envelope" not in index
    assert len(re.findall(r"Samples outside the band: 0 of the [\d,]+ where it is given", index.replace("<br>", " ")
                          .replace("\\u003cbr\\u003e", " "))) >= 3


def test_the_summary_prints_notes_as_written(tmp_path) -> None:
    from rich.console import Console

    from toolkit.demo.run import DemoResult, _print_summary

    note = "set `photo_qc: fail_on_flags: [smile]` in study.yaml; [bold]not markup[/bold]"
    result = DemoResult(study_id="epmc-demo", data_dir=tmp_path, report_dir=None, subjects=1, sessions_completed=1,
                        sessions_not_completed=0, photos=1, photos_failed_qc=0, notes=[note])
    console = Console(record=True, width=200)
    _print_summary(console, result)
    assert f"note: {note}" in console.export_text()
