"""A synthetic study data folder with known truth, to try the report builder, test it and time it.

It writes the files other steps of the toolkit produce (analysis datasets, results, photo overlays,
waveform captures, ``truth.json``) with simple, documented content. Effects are simulated with known true
values so that the report's closed-loop check has something to find.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.errors import DataError

__all__ = ["SAMPLE_ARMS", "SAMPLE_VISITS", "write_sample_study"]

SAMPLE_ARMS = ("EP", "MC", "Sham")
SAMPLE_VISITS = ("Baseline", "Week 4", "Week 8", "Week 12")
#: true mean change at the last visit by arm, per endpoint (wrinkle area %, brow elevation ratio)
_TRUE_CHANGE = {"WRKAREA": {"EP": -2.0, "MC": -1.2, "Sham": -0.2}, "BROWER": {"EP": 0.03, "MC": 0.05, "Sham": 0.0}}
_PARAMS = {"WRKAREA": ("Wrinkle area fraction (%)", 12.0, 2.0, 1.0), "BROWER": ("Brow elevation ratio", 1.0, 0.08, 0.03)}


def write_sample_study(
    data_dir: str | Path,
    *,
    n_per_arm: int = 20,
    seed: int = 0,
    photos: bool = True,
    waveforms: bool = True,
    xpt: bool = True,
) -> dict:
    """Write a synthetic study data folder (``data/<study-id>/``) and return its true effects.

    Parameters
    ----------
    data_dir : str or Path
        Target folder (created); its name is the study id.
    n_per_arm : int
        Subjects per arm (three arms: EP, MC, Sham).
    seed : int
        Random seed.
    photos, waveforms, xpt : bool
        Also write photo overlays (from scikit-image's astronaut portrait), waveform captures and XPT datasets.

    Returns
    -------
    dict
        The content of ``truth.json``: ``{"effects": [{"endpoint", "contrast", "visit", "value"}, …]}``.
    """
    if n_per_arm < 3:
        raise DataError(f"n_per_arm must be at least 3, got {n_per_arm}")
    rng = np.random.default_rng(seed)
    root = Path(data_dir)
    analysis = root / "analysis"
    (analysis / "results").mkdir(parents=True, exist_ok=True)
    study_id = root.name

    subjects = []
    for i in range(n_per_arm * len(SAMPLE_ARMS)):
        arm = SAMPLE_ARMS[i % len(SAMPLE_ARMS)]
        done = rng.random() > 0.1
        subjects.append({
            "STUDYID": study_id, "USUBJID": f"{study_id}-{i + 1:03d}", "TRT01P": arm, "TRT01A": arm,
            "AGE": int(rng.integers(30, 70)), "SEX": "F" if rng.random() < 0.7 else "M",
            "RACE": rng.choice(["WHITE", "ASIAN", "BLACK OR AFRICAN AMERICAN"], p=[0.6, 0.25, 0.15]),
            "RANDFL": "Y", "SAFFL": "Y", "ITTFL": "Y", "EFFFL": "Y" if done else "N",
            "EOSSTT": "COMPLETED" if done else "DISCONTINUED",
            "DCSREAS": "" if done else rng.choice(["Lost to follow-up", "Withdrew consent", "Adverse event"]),
        })
    # two screen failures, never randomised
    for j in range(2):
        subjects.append({"STUDYID": study_id, "USUBJID": f"{study_id}-S{j + 1:02d}", "TRT01P": "", "TRT01A": "",
                         "AGE": 40, "SEX": "F", "RACE": "WHITE", "RANDFL": "N", "SAFFL": "N", "ITTFL": "N",
                         "EFFFL": "N", "EOSSTT": "", "DCSREAS": ""})
    adsl = pd.DataFrame(subjects)
    adsl.to_csv(analysis / "adsl.csv", index=False)
    rand = adsl[adsl["RANDFL"] == "Y"]

    rows = []
    for param, (label, base_mean, base_sd, noise) in _PARAMS.items():
        for s in rand.itertuples(index=False):
            base = rng.normal(base_mean, base_sd)
            subj_slope = rng.normal(0, noise * 0.3)
            for v, visit in enumerate(SAMPLE_VISITS):
                frac = v / (len(SAMPLE_VISITS) - 1)
                aval = base if v == 0 else base + frac * (_TRUE_CHANGE[param][s.TRT01A] + subj_slope) \
                    + rng.normal(0, noise * 0.5)
                rows.append({"STUDYID": study_id, "USUBJID": s.USUBJID, "TRT01A": s.TRT01A, "PARAMCD": param,
                             "PARAM": label, "AVISIT": visit, "AVISITN": v, "AVAL": aval, "BASE": base,
                             "CHG": aval - base})
    adeff = pd.DataFrame(rows)
    adeff.to_csv(analysis / "adeff.csv", index=False)

    # results: difference in mean change at the last visit with a Welch CI (what a stats step would write)
    res_rows, truth = [], []
    last = adeff[adeff["AVISIT"] == SAMPLE_VISITS[-1]]
    for param in _PARAMS:
        sub = last[last["PARAMCD"] == param]
        for a, b in (("EP", "Sham"), ("MC", "Sham"), ("EP", "MC")):
            x, y = sub.loc[sub["TRT01A"] == a, "CHG"], sub.loc[sub["TRT01A"] == b, "CHG"]
            test = stats.ttest_ind(x, y, equal_var=False)
            ci = test.confidence_interval(0.95)
            res_rows.append({"endpoint": param, "visit": SAMPLE_VISITS[-1], "contrast": f"{a} - {b}",
                             "estimate": x.mean() - y.mean(), "se": (x.mean() - y.mean()) / test.statistic,
                             "df": test.df, "ci_low": ci.low, "ci_high": ci.high, "p_value": test.pvalue})
            truth.append({"endpoint": param, "contrast": f"{a} - {b}", "visit": SAMPLE_VISITS[-1],
                          "value": _TRUE_CHANGE[param][a] - _TRUE_CHANGE[param][b]})
    pd.DataFrame(res_rows).to_csv(analysis / "results" / "contrasts.csv", index=False)
    sub = last[last["PARAMCD"] == "WRKAREA"].merge(rand[["USUBJID", "SEX"]], on="USUBJID")
    forest = []
    for group, frame in [("Overall", sub), *[("Sex", g) for _, g in sub.groupby("SEX")]]:
        x, y = frame.loc[frame["TRT01A"] == "EP", "CHG"], frame.loc[frame["TRT01A"] == "Sham", "CHG"]
        if len(x) > 1 and len(y) > 1:
            ci = stats.ttest_ind(x, y, equal_var=False).confidence_interval(0.95)
            forest.append({"subgroup": group, "level": "" if group == "Overall" else frame["SEX"].iloc[0],
                           "contrast": "EP - Sham", "estimate": x.mean() - y.mean(), "ci_low": ci.low,
                           "ci_high": ci.high, "n": len(frame)})
    pd.DataFrame(forest).to_csv(analysis / "results" / "subgroups_wrkarea.csv", index=False)
    (root / "truth.json").write_text(json.dumps({"effects": truth}, indent=2), encoding="utf-8")

    tte = []
    for s in rand.itertuples(index=False):
        rate = {"EP": 1 / 30, "MC": 1 / 40, "Sham": 1 / 120}[s.TRT01A]
        t = rng.exponential(1 / rate)
        tte.append({"USUBJID": s.USUBJID, "TRT01A": s.TRT01A, "PARAMCD": "TTIMPR",
                    "AVAL": round(min(t, 84.0), 1), "CNSR": int(t > 84.0)})
    pd.DataFrame(tte).to_csv(analysis / "adtte.csv", index=False)

    terms = [("SKIN AND SUBCUTANEOUS TISSUE DISORDERS", "Erythema", {"EP": 0.4, "MC": 0.2, "Sham": 0.05}),
             ("SKIN AND SUBCUTANEOUS TISSUE DISORDERS", "Skin irritation", {"EP": 0.2, "MC": 0.1, "Sham": 0.05}),
             ("NERVOUS SYSTEM DISORDERS", "Paraesthesia", {"EP": 0.1, "MC": 0.25, "Sham": 0.05}),
             ("MUSCULOSKELETAL AND CONNECTIVE TISSUE DISORDERS", "Muscle twitching",
              {"EP": 0.3, "MC": 0.15, "Sham": 0.0})]
    ae = [{"USUBJID": s.USUBJID, "TRTA": s.TRT01A, "AEBODSYS": soc, "AEDECOD": pt, "TRTEMFL": "Y"}
          for s in rand.itertuples(index=False) for soc, pt, p in terms if rng.random() < p[s.TRT01A]]
    pd.DataFrame(ae, columns=["USUBJID", "TRTA", "AEBODSYS", "AEDECOD", "TRTEMFL"]).to_csv(analysis / "adae.csv",
                                                                                            index=False)
    ex = [{"USUBJID": s.USUBJID, "TRT01A": s.TRT01A, "SESSION": k, "PARAMCD": "CHARGE",
           "PARAM": "Delivered charge", "AVALU": "mC",
           "AVAL": max(0.0, rng.normal({"EP": 2.0, "MC": 1.0, "Sham": 0.0}[s.TRT01A], 0.1))}
          for s in rand.itertuples(index=False) for k in range(1, 7)]
    pd.DataFrame(ex).to_csv(analysis / "adex.csv", index=False)

    if xpt:
        import pyreadstat

        pyreadstat.write_xport(adsl, str(analysis / "adsl.xpt"), file_format_version=5, table_name="ADSL")
        meta = [{"dataset": "ADSL", "variable": c, "label": c} for c in adsl.columns]
        pd.DataFrame(meta).to_csv(analysis / "variable_metadata.csv", index=False)
    if photos:
        _write_photos(root / "photos" / "derived" / adsl["USUBJID"].iloc[0], rng)
    if waveforms:
        _write_waveform(root / "waveforms" / adsl["USUBJID"].iloc[0] / "session-1", rng)
    return {"effects": truth}


def _write_photos(folder: Path, rng: np.random.Generator) -> None:
    from PIL import Image
    from skimage import data as skdata

    folder.mkdir(parents=True, exist_ok=True)
    face = skdata.astronaut()[20:220, 150:330]  # the portrait's face, as a stand-in for a study photo
    Image.fromarray(face).save(folder / "1_baseline.png")
    follow = face.copy()
    ys = rng.integers(0, face.shape[0], 40)
    xs = rng.integers(0, face.shape[1] - 20, 40)
    for y, x in zip(ys, xs, strict=True):
        follow[y, x:x + 20] = (240, 228, 66)  # an overlay as the imaging step draws detected wrinkles
    Image.fromarray(follow).save(folder / "2_week12_overlay.png")


def _write_waveform(folder: Path, rng: np.random.Generator) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(2000) * 1e-6
    prescribed = np.where((t % 5e-4) < 1e-4, 50.0, 0.0)
    measured = prescribed * (1 - np.exp(-((t % 5e-4) / 5e-6))) + rng.normal(0, 0.5, t.size)
    np.savez(folder / "capture-1.npz", time_s=t, volts_V=measured, amps_A=measured / 1e3,
             prescribed_V=prescribed, lower_V=prescribed * 0.9 - 2.0, upper_V=prescribed * 1.1 + 2.0,
             meta=np.array(json.dumps({"channel": 1})))
