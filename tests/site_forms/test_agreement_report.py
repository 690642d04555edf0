"""Inter- and intra-rater agreement of the rating station's grades in the report: numbers as the statistics
module computes them (itself checked against Shrout & Fleiss and SAS), raters numbered, never named."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from toolkit.store import open_store

PW = "test password 2026"
CONSENT = date.today() - timedelta(days=10)


def _grades() -> pd.DataFrame:
    rows = []
    first = {"alice": [1, 2, 3, 4, 5, 2, 3, 4], "bob": [1, 3, 3, 4, 4, 2, 2, 5]}
    for rater, scores in first.items():
        rows += [{"set_id": f"s{i}", "scale": "WSRS", "rater": rater, "repeat": 0, "score": float(x)}
                 for i, x in enumerate(scores)]
    rows += [{"set_id": f"s{i}", "scale": "WSRS", "rater": "alice", "repeat": 1, "score": float(x)}
             for i, x in enumerate([1, 2, 4, 4])]
    return pd.DataFrame(rows)


def test_the_table_carries_the_statistics_of_the_agreement_module():
    from toolkit.report.agreement_table import agreement_table
    from toolkit.stats.agreement import icc, weighted_kappa

    grades = _grades()
    table = agreement_table(grades, number="14.2.9", levels={"WSRS": [1.0, 2.0, 3.0, 4.0, 5.0]})
    body = table.body
    inter = body[(body["Agreement"] == "Inter-rater") & body["Statistic"].str.startswith("Weighted kappa")].iloc[0]
    k = weighted_kappa([1, 2, 3, 4, 5, 2, 3, 4], [1, 3, 3, 4, 4, 2, 2, 5], grades=[1, 2, 3, 4, 5])
    assert inter["Estimate"] == f"{k.kappa:.2f}" and inter["95% CI"] == f"{k.ci_low:.2f} to {k.ci_high:.2f}"
    assert inter["Photo sets"] == "8" and inter["Raters compared"] == "Rater 1 vs Rater 2"
    first = grades[grades["repeat"] == 0]
    r = icc(first, target="set_id", rater="rater", score="score")
    row = body[(body["Agreement"] == "Inter-rater") & body["Statistic"].str.startswith("ICC")].iloc[0]
    assert row["Estimate"] == f"{r.icc:.2f}"
    intra = body[body["Agreement"] == "Intra-rater"]
    assert set(intra["Raters compared"]) == {"Rater 1 (first vs repeat)"} and set(intra["Photo sets"]) == {"4"}
    # the raters are not named anywhere in the table
    text = body.to_string() + " ".join(table.footnotes)
    assert "alice" not in text and "bob" not in text
    # grades that do not vary cannot give an agreement; limits beyond the range are shown at the bound
    flat = pd.DataFrame([{"set_id": f"s{i}", "scale": "WSRS", "rater": r, "repeat": 0, "score": 3.0}
                         for i in range(4) for r in ("alice", "bob")])
    flat_body = agreement_table(flat, number="14.2.9").body.set_index("Statistic")
    assert flat_body.loc["ICC(2,1), absolute agreement", "Estimate"] == "NE"
    opposed = pd.DataFrame([{"set_id": f"s{i}", "scale": "WSRS", "rater": r, "repeat": 0,
                             "score": float(x if r == "alice" else 6 - x)} for i, x in enumerate([1, 2, 4, 5])
                            for r in ("alice", "bob")])
    kappa = agreement_table(opposed, number="14.2.9").body.iloc[0]
    assert (kappa["Estimate"], kappa["95% CI"]) == ("-1.00", "-1.00 to -1.00")  # complete disagreement
    # one rater without re-grades: nothing to compare
    assert agreement_table(grades[(grades["rater"] == "bob")], number="14.2.9") is None


def test_the_report_shows_the_agreement_of_the_station_grades(demo_study, randomized, photo_file):
    from toolkit.report.bundle import build_report

    randomized(demo_study, 6)
    with open_store(demo_study, user="tester", password=PW) as admin:
        admin.add_user("rater2", full_name="Second Rater", roles=["blinded_rater"], password=PW)
    with open_store(demo_study, user="investigator", password=PW) as store:
        for k in range(1, 4):
            sid = f"S-00{k}"
            store.enroll_subject(sid, age=50, sex="F", fitzpatrick="III", consent_signed_on=CONSENT,
                                 checklist=store.info.eligibility.all_met(), checked_on=CONSENT)
            store.record_patch_test(sid, passed=True, read_on=CONSENT + timedelta(days=2))
            store.allocate(sid)
            for visit in ("BASELINE", "S12"):
                path, sha = photo_file(f"{sid}-{visit}")
                store.add_photo(sid, visit_id=visit, path=path, sha256=sha)
    for rater, shift in (("rater", 0), ("rater2", 1)):
        with open_store(demo_study, user=rater, password=PW) as store:
            for n, item in enumerate(iter(lambda s=store: (s.rating_queue() or [None])[0], None)):
                low, high = store.info.scale_range(item.scale)
                store.rate(item.set_id, score=min(high, low + (n + shift * (n % 2)) % (high - low + 1)),
                           repeat=item.repeat)
    bundle = build_report("epmc-demo", static=False)
    (item,) = [t for t in bundle.tables if t.title.startswith("Rater agreement")]
    assert item.number.startswith("14.2.")
    rows = pd.read_csv(bundle.root / next(f for f in item.files if f.endswith(".csv")))
    assert rows.astype(str).apply(lambda c: c.str.contains("Inter-rater")).any().any()
    index = bundle.index.read_text(encoding="utf-8")
    assert "Rater agreement" in index and "rater2" not in index
