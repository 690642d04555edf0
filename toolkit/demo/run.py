"""Run the demonstration study end to end (see :mod:`toolkit.demo`)."""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.demo.cohort import DemoSubject, make_cohort
from toolkit.demo.raters import DEMO_RATERS, rate_at_the_station
from toolkit.demo.truth import TrueEffects, course_fraction
from toolkit.errors import ConfigurationError, DataError
from toolkit.paths import project_root, study_data_dir

__all__ = ["DemoResult", "run_demo", "default_demo_study"]

#: file that marks a data folder as made by the demo (only such folders are replaced by a new run)
DEMO_MARKER = ".demo-study"
#: regions whose synthetic lines change with treatment (the primary endpoint's folds)
TREATED_WRINKLE_REGIONS = ("nasolabial_l", "nasolabial_r")
#: image size of the synthetic photos (long side, pixels)
PHOTO_LONG_SIDE_PX = 1024
#: the demo's users: name -> (printed name, roles); their passwords are drawn per run
DEMO_USERS = {
    "demo-admin": ("Demo Administrator", ("administrator",)),
    "demo-investigator": ("Demo Investigator", ("investigator",)),
    "demo-operator": ("Demo Operator", ("operator",)),
    "demo-datamanager": ("Demo Data Manager", ("data_manager",)),
    "demo-statistician": ("Demo Unblinded Statistician", ("unblinded_statistician",)),
    **{r.username: (r.full_name, ("blinded_rater",)) for r in DEMO_RATERS},
}
#: folder (in the demo's data folder) with one password file per demo user, readable by its owner only
PASSWORD_DIR = "demo-passwords"


@dataclass
class DemoResult:
    """What a demo run produced."""

    study_id: str
    data_dir: Path
    report_dir: Path | None
    subjects: int
    sessions_completed: int
    sessions_not_completed: int
    photos: int
    photos_failed_qc: int
    #: sessions the schedule planned for the cohort
    sessions_planned: int = 0
    #: subjects who left the study: subject id -> reason (from ADSL DCSREAS)
    withdrawn: dict[str, str] = field(default_factory=dict)
    #: subjects in the per-protocol set (ADSL PPROTFL)
    per_protocol: int = 0
    closed_loop: list[dict[str, Any]] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def closed_loop_ok(self) -> bool:
        """Every true effect was estimated and its 95 % CI covers it."""
        return bool(self.closed_loop) and all(row.get("covered") is True for row in self.closed_loop)


def default_demo_study() -> Path:
    """``studies/epmc-demo`` of the checkout (or of the current folder)."""
    root = project_root() or Path.cwd()
    return root / "studies" / "epmc-demo"


class _Steps:
    """Prints step headings and keeps their wall times."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.timings: dict[str, float] = {}
        self._t0 = time.perf_counter()
        self._name: str | None = None

    def start(self, name: str, text: str) -> None:
        self._close()
        self._name, self._t0 = name, time.perf_counter()
        if self.console is not None:
            self.console.rule(f"[bold]{text}")

    def _close(self) -> None:
        if self._name is not None:
            self.timings[self._name] = round(time.perf_counter() - self._t0, 2)

    def done(self) -> dict[str, float]:
        self._close()
        self._name = None
        return self.timings


def _prepare_data_dir(study_id: str, *, replace: bool) -> Path:
    folder = study_data_dir(study_id)
    if folder.exists() and any(folder.iterdir()):
        if not (folder / DEMO_MARKER).is_file():
            raise DataError(
                f"{folder} holds study data that the demo did not make; the demo never overwrites it. "
                "Set TOOLKIT_DATA_DIR to another folder (e.g. TOOLKIT_DATA_DIR=/tmp/demo-data toolkit demo)."
            )
        if not replace:
            raise DataError(f"{folder} holds an earlier demo run; pass --replace to make a new one")
        _remove_tree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARKER).write_text(
        "Made by `toolkit demo`: a simulated study. A new demo run replaces this folder.\n", encoding="utf-8"
    )
    return folder


def _remove_tree(folder: Path) -> None:
    """Delete an earlier demo folder; its raw photos are read-only, their folders are made writable first."""
    for p in folder.rglob("*"):
        if p.is_dir():
            p.chmod(0o755)
    shutil.rmtree(folder)


def _progress(console: Any):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=console is None, transient=False,
    )


def run_demo(
    study: str | Path | None = None,
    *,
    subjects: int = 24,
    seed: int = 20261121,
    workers: int = 2,
    static: bool = True,
    replace: bool = True,
    console: Any = "auto",
) -> DemoResult:
    """Run a complete simulated study and build its report.

    Parameters
    ----------
    study : str or Path, optional
        Study folder (default ``studies/epmc-demo``). Its arms must be EP, MC and/or SHAM for the simulated
        truth to apply (other arms get no effect).
    subjects : int
        Cohort size (the allocation list covers it).
    seed : int
        Seeds the cohort, the photos and the events (the allocation list uses the study's own seed).
    workers : int
        Processes for the photo analysis.
    static : bool
        Export PNG/SVG/PDF figures through the system Chromium (the report says so when none is found).
    replace : bool
        Replace the folder of an earlier demo run.
    console : rich Console, None or "auto"
        Where progress goes (``None``: silent).

    Returns
    -------
    DemoResult
    """
    from toolkit.study import load_study

    if console == "auto":
        from rich.console import Console

        console = Console()
    if subjects < 6:
        raise ConfigurationError(f"--subjects {subjects}: the demo needs at least 6 subjects (2 per arm)")
    study_path = Path(study) if study is not None else default_demo_study()
    st = load_study(study_path)
    truth = TrueEffects.default()
    steps = _Steps(console)
    data_dir = _prepare_data_dir(st.id, replace=replace)
    notes: list[str] = []

    steps.start("enrol", f"1/6  Create the study's users; randomize {st.id} and enrol {subjects} synthetic subjects")
    logins = _users(st, data_dir)
    cohort = _enrol(st, subjects, seed, truth, console, logins)

    steps.start("deliver", "2/6  Deliver every session on the digital twin (pyvisa-py over loopback)")
    completed, not_completed = _deliver_all(st, cohort, console, notes, workers, logins["demo-operator"])

    steps.start("photos", "3/6  Make and analyse each visit's photos (real portraits, known change)")
    n_photos, n_failed, truth_rows = _photos(st, cohort, truth, seed, workers, console, logins, notes)

    if st.design == "split-face":  # the station grades whole faces; a per-side scale comes from the site's CSV
        steps.start("records", "4/6  Import ratings and adverse events; sign causality; lock; unblind; export")
        _import_ratings(st, cohort, truth, seed, data_dir, logins)
    else:
        steps.start("records", f"4/6  {len(DEMO_RATERS)} blinded raters grade the photo sets at the rating "
                               "station; adverse events; sign causality; lock; unblind; export")
        rate_at_the_station(st, truth_rows, seed, data_dir, logins, _open_as)
    _adverse_events(st, cohort, seed, data_dir, logins)
    _unblind_and_export(st, data_dir, logins)

    steps.start("analysis", "5/6  Run the statistical analysis plan")
    if st.design == "split-face":
        _write_split_face_truth(st, cohort, truth_rows, data_dir, seed)
    else:
        _write_truth(st, cohort, truth, truth_rows, data_dir, seed)
    _analyse(st, data_dir)

    steps.start("report", "6/6  Build the report")
    from toolkit.report import build_report

    bundle = build_report(st.id, static=static)
    if getattr(bundle, "static_message", None):
        notes.append(str(bundle.static_message))
    closed = bundle.closed_loop
    closed_rows = closed.to_dict("records") if closed is not None and hasattr(closed, "to_dict") else []
    withdrawn, per_protocol = _disposition_summary(data_dir)
    result = DemoResult(
        study_id=st.id, data_dir=data_dir, report_dir=bundle.root, subjects=len(cohort),
        sessions_completed=completed, sessions_not_completed=not_completed, photos=n_photos,
        photos_failed_qc=n_failed, closed_loop=closed_rows, timings_s=steps.done(), notes=notes,
        sessions_planned=len(cohort) * int(st.schedule.sessions), withdrawn=withdrawn, per_protocol=per_protocol,
    )
    (data_dir / "demo-summary.json").write_text(
        json.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in result.__dict__.items()},
                   indent=2, default=str),
        encoding="utf-8",
    )
    if console is not None:
        _print_summary(console, result)
    return result


# --------------------------------------------------------------------------------------------- enrolment
def _users(st, data_dir: Path) -> dict[str, tuple[str, str]]:
    """Create the demo's users (an administrator first, then one per role) and its site; return the logins.

    Each password is drawn for this run and written to ``demo-passwords/<user>`` (mode 0600) so that the
    commands of the README can be tried as any of them: ``TOOLKIT_USER=demo-datamanager
    TOOLKIT_PASSWORD_FILE=data/epmc-demo/demo-passwords/demo-datamanager toolkit ...``.
    """
    import secrets

    from toolkit.store import open_store

    folder = data_dir / PASSWORD_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    logins = {}
    with open_store(st, login=False) as store:
        for name, (full_name, roles) in DEMO_USERS.items():
            password = secrets.token_urlsafe(18)
            store.add_user(name, full_name=full_name, roles=roles, password=password)
            path = folder / name
            path.write_text(password + "\n", encoding="utf-8")
            path.chmod(0o600)
            logins[name] = (name, password)
        store.add_site("DEMO", name="Demonstration site (simulated)")
    return logins


def _open_as(st, login: tuple[str, str]):
    from toolkit.store import open_store

    return open_store(st, user=login[0], password=login[1])


def _enrol(st, n: int, seed: int, truth: TrueEffects, console, logins) -> list[DemoSubject]:
    from toolkit.study import randomize, write_allocation

    frame = randomize(st, max(2 * n, int(getattr(st.randomization, "subjects", 0) or 0)))
    write_allocation(st, frame)
    start = date.today() - timedelta(days=200)
    cohort = make_cohort(st, n, seed=seed, start=start, baseline_sd=truth.baseline_severity_sd,
                         response_sd=truth.response_sd)
    with _open_as(st, logins["demo-investigator"]) as store, _progress(console) as bar:
        task = bar.add_task("enrol, consent, patch test, randomize", total=len(cohort))
        for k, subj in enumerate(cohort):
            store.enroll_subject(subj.subject_id, age=subj.age, sex=subj.sex, fitzpatrick=subj.fitzpatrick,
                                 race=subj.race, strata=subj.strata, site="DEMO")
            # every third subject declines publication of their face: the report masks those panels
            store.record_consent(subj.subject_id, signed_on=subj.first_session - timedelta(days=7),
                                 publication=k % 3 != 2)
            store.record_checklist(subj.subject_id, store.info.eligibility.all_met(), checked_on=subj.first_session - timedelta(days=7))
            store.record_patch_test(subj.subject_id, passed=True, read_on=subj.first_session - timedelta(days=5))
            allocation = store.allocate(subj.subject_id)
            subj.arm_id, subj.side_map = allocation.arm_id, allocation.side_map
            bar.advance(task)
    return cohort


# ---------------------------------------------------------------------------------------------- delivery
_WORKER_TWIN: Any = None


def _demo_bench():
    from instruments.bench import load_bench

    return load_bench((project_root() or Path.cwd()) / "instruments" / "benches" / "twin.yaml")


def _start_twin(seed: int = 7) -> Any:
    """A digital twin of the demo bench on free loopback ports (workers must not share ports)."""
    from instruments.twin import TwinBench

    twin = TwinBench(speed=1.0, seed=seed, ports=None, bench=_demo_bench())
    twin.start()
    # the scope sees a few periods of each burst: resolving one pulse per burst is enough here
    twin.model.max_simulated_pulses = min(twin.model.max_simulated_pulses, 1)
    return twin


def _worker_twin():
    """One in-process twin per worker process, stopped when the process exits."""
    global _WORKER_TWIN
    if _WORKER_TWIN is None:
        import atexit

        _WORKER_TWIN = _start_twin()
        atexit.register(_WORKER_TWIN.stop)
    return _WORKER_TWIN


def _deliver_subject(study_path: str, subject_id: str, first_session: date, last_session: int,
                     login: tuple[str, str], twin: Any = None) -> list[tuple[int, str]]:
    """Deliver sessions 1..``last_session`` of one subject on their scheduled days; return (session, outcome)."""
    from toolkit.delivery import DeliverySettings, run_session
    from toolkit.study import load_study

    st = load_study(study_path)
    twin = twin if twin is not None else _worker_twin()
    settings = DeliverySettings(capture_every_s=300.0)
    outcomes = []
    with _open_as(st, login) as store:
        for k in range(1, last_session + 1):
            day = first_session + timedelta(days=(k - 1) * int(st.schedule.interval_days))
            start = datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC)
            record = run_session(st, subject_id, k, store=store, twin=twin, settings=settings, session_start=start)
            outcomes.append((k, record.outcome))
    return outcomes


def _deliver_all(st, cohort: list[DemoSubject], console, notes: list[str], workers: int,
                 login: tuple[str, str]) -> tuple[int, int]:
    """Deliver every subject's course, subjects spread over ``workers`` processes (each with its own twin)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    completed = not_completed = 0
    total = sum(s.last_session for s in cohort)
    jobs = [(str(st.path), s.subject_id, s.first_session, s.last_session, login) for s in cohort]
    with _progress(console) as bar:
        task = bar.add_task("sessions delivered and verified", total=total)

        def account(subject_id: str, outcomes: list[tuple[int, str]]) -> None:
            nonlocal completed, not_completed
            for k, outcome in outcomes:
                if outcome == "completed":
                    completed += 1
                else:
                    not_completed += 1
                    notes.append(f"{subject_id} session {k}: {outcome}")
            bar.advance(task, len(outcomes))

        if workers <= 1:
            twin = _start_twin()
            try:
                for job in jobs:
                    account(job[1], _deliver_subject(*job, twin=twin))
            finally:
                twin.stop()
        else:
            import multiprocessing

            # spawn: the parent runs threads (progress display), which a forked child must not inherit
            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {pool.submit(_deliver_subject, *job): job[1] for job in jobs}
                for fut in as_completed(futures):
                    account(futures[fut], fut.result())
    return completed, not_completed


# ------------------------------------------------------------------------------------------------ photos
def _visit_state(st, subj: DemoSubject, visit, truth: TrueEffects, rng: np.random.Generator) -> dict[str, float]:
    """True wrinkle severity and lift of ``subj`` at ``visit``."""
    eff = truth.effect(subj.arm_id or "")
    after = getattr(visit, "after_session", None)
    follow_up = after is None and int(getattr(visit, "day", 1) or 1) > 1
    sessions_done = int(after) if after is not None else (int(st.schedule.sessions) if follow_up else 0)
    frac = course_fraction(sessions_done, onset_session=eff.onset_session, total_sessions=int(st.schedule.sessions),
                           follow_up=follow_up, retention=truth.retention_at_follow_up)
    severity = subj.baseline_severity * (1.0 + eff.wrinkle_rel * subj.response * frac)
    severity += rng.normal(0.0, truth.visit_noise_sd)
    lift = 0.0
    if sessions_done or follow_up:
        lift = eff.lift_mm * subj.response * frac + rng.normal(0.0, truth.lift_noise_sd_mm)
    return {"severity": max(0.05, float(severity)), "lift_mm": float(lift), "fraction": frac}


def _attended(subj: DemoSubject, visit) -> bool:
    after = getattr(visit, "after_session", None)
    if after is not None:
        return int(after) <= subj.last_session
    if int(getattr(visit, "day", 1) or 1) > 1:  # follow-up
        return subj.last_session >= 12
    return True


def _visit_day(st, subj: DemoSubject, visit) -> date:
    """The day ``subj`` attends ``visit``: the day of the session it follows, else its study day (the baseline
    on the day of session 1)."""
    after = getattr(visit, "after_session", None)
    day = (int(after) - 1) * int(st.schedule.interval_days) + 1 if after is not None else \
        int(getattr(visit, "day", 1) or 1)
    return subj.first_session + timedelta(days=day - 1)


def _photos(st, cohort, truth: TrueEffects, seed: int, workers: int, console, logins,
            notes: list[str]) -> tuple[int, int, list[dict]]:
    import cv2

    from toolkit.imaging.pipeline import analyze_pending, ingest_photo
    from toolkit.imaging.synthetic import fold_layout, portrait, simulate_visit

    bases = {name: portrait(name, long_side_px=PHOTO_LONG_SIDE_PX) for name in sorted({s.portrait for s in cohort})}
    # each portrait's face, and where its folds go, are found once; every visit photo uses the same layout
    layouts = {name: fold_layout(img, TREATED_WRINKLE_REGIONS) for name, img in bases.items()}
    rows: list[dict] = []
    n_photos = 0
    with tempfile.TemporaryDirectory(prefix="demo-photos-") as tmp, _open_as(st, logins["demo-operator"]) as store:
        todo = [(s, v) for s in cohort for v in st.visits if _attended(s, v)]
        mixed_up = _mixed_up_photo(st, todo)
        if mixed_up is not None:
            visit_name = next(v.name for v in st.visits if v.id == mixed_up[1])
            notes.append(f"the photo filed for {mixed_up[0]} at {visit_name} shows another person (a mix-up the demo "
                         "makes on purpose): it fails QC, gives no endpoint value and is listed in the report; "
                         f"`toolkit photos qc --study {st.id}` says why")
        reaction = _reaction_photo(st, todo, exclude=mixed_up)
        if reaction is not None:
            visit_name = next(v.name for v in st.visits if v.id == reaction[1])
            notes.append(f"the photo of {reaction[0]} at {visit_name} shows red dots on the cheeks and forehead (a skin "
                         "reaction after the session, which the demo draws on purpose): the dots are left out of the "
                         "wrinkle measures and the photo is flagged new_spots and listed in the report; "
                         f"`toolkit photos qc --study {st.id}` says why")
        with _progress(console) as bar:
            task = bar.add_task("photos taken (simulated capture)", total=len(todo))
            for subj, visit in todo:
                rng = np.random.default_rng([seed, int(subj.subject_id[2:]), int(visit.number)])
                state = _visit_state(st, subj, visit, truth, rng)
                change = dict.fromkeys(TREATED_WRINKLE_REGIONS, state["severity"] - 1.0)
                # a treatment makes the folds shorter and shallower at once, and lifts the lower face
                img, t = simulate_visit(bases[subj.portrait], lift_mm=state["lift_mm"], wrinkle_change=change,
                                        seed=int(rng.integers(2**31)), layout=layouts[subj.portrait])
                if (subj.subject_id, visit.id) == reaction:
                    img = _red_dots(img, bases[subj.portrait], rng)
                if (subj.subject_id, visit.id) == mixed_up:
                    # a mix-up at the photo station: another person's photo filed under this subject and visit;
                    # its analysis fails QC (not the subject's face) and no endpoint value rests on it
                    img, _ = simulate_visit(_other_person(bases), seed=int(rng.integers(2**31)))
                src = Path(tmp) / f"{subj.subject_id}_{visit.id}.jpg"
                cv2.imwrite(str(src), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
                # taken before the day's session at baseline (sessions start at 09:00), after it otherwise
                day, hour = _visit_day(st, subj, visit), 8 if visit.id == st.visits[0].id else 10
                ingest_photo(store, st, src, subject_id=subj.subject_id, visit_id=visit.id,
                             meta={"source": "demo simulation", "portrait": subj.portrait,
                                   "mm_per_px": t.get("mm_per_px")},
                             captured_at=datetime(day.year, day.month, day.day, hour, 30, tzinfo=UTC))
                rows.append({"subject": subj.subject_id, "arm": subj.arm_id, "visit": visit.id,
                             "visit_number": float(visit.number), "portrait": subj.portrait,
                             "severity": state["severity"], "lift_mm": state["lift_mm"],
                             "fraction": state["fraction"],
                             "wrinkle_length_mm": {k: t["wrinkle_length_mm"][k] for k in TREATED_WRINKLE_REGIONS},
                             "wrinkle_depth_index": {k: t["wrinkle_depth_index"][k] for k in TREATED_WRINKLE_REGIONS},
                             "fold_contrast": {k: t["wrinkle_contrast"][k] for k in TREATED_WRINKLE_REGIONS},
                             "region_lift_mm": t.get("region_lift_mm", {})})
                n_photos += 1
                bar.advance(task)
        summary = analyze_pending(store, st, workers=workers, progress=console is not None)
        smiling = _smile_note(store, st)
        if smiling:
            notes.append(smiling)
    return n_photos, int(summary.get("failed", 0)), rows


def _smile_note(store, st) -> str | None:
    """What to make of the ``smile`` warnings when most photos carry one (the portrait the faces are made from
    smiles): a trial's protocol would have them retaken."""
    from toolkit.imaging.qc_listing import qc_listing

    flags = qc_listing(store, st)["flag_codes"]
    smiles = int(flags.map(lambda codes: "smile" in codes).sum())
    if not len(flags) or 2 * smiles < len(flags):
        return None
    return (f"{smiles} of {len(flags)} photos carry the QC warning `smile`: the demo's faces are made from "
            "scikit-image's astronaut portrait, who smiles (the smooth-skinned face among the portraits shipped in "
            "the installed packages). A trial's protocol asks for a neutral expression, and its photographer retakes "
            "such photos (`photo_qc: fail_on_flags: [smile]` in study.yaml fails them instead). Here every visit "
            "shows the same smile, so no subject's change from baseline comes from it")


def _mixed_up_photo(st, todo: list) -> tuple[str, str] | None:
    """The one photo the demo files under the wrong subject: the first subject's photo at the second visit after
    baseline (an interim visit, so the primary visit's per-protocol photo is not affected), if it is taken."""
    if len(st.visits) < 4:
        return None
    visit = st.visits[2].id
    return next(((s.subject_id, v.id) for s, v in todo if v.id == visit), None)


def _reaction_photo(st, todo: list, exclude: tuple[str, str] | None) -> tuple[str, str] | None:
    """The one photo on which the demo draws a skin reaction: the first electroporation subject's photo at the
    first visit after baseline (sessions there can leave red dots), if it is taken."""
    if len(st.visits) < 2:
        return None
    visit = st.visits[1].id
    return next(((s.subject_id, v.id) for s, v in todo
                 if v.id == visit and s.arm_id == "EP" and (s.subject_id, v.id) != exclude), None)


def _red_dots(img: np.ndarray, base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``img`` with 24 red dots of 1-2.5 mm on the skin of the cheeks and forehead (found on ``base``, the
    portrait the photo is made from)."""
    from toolkit.imaging.synthetic import draw_spots, points_on_skin

    centres, mm_per_px = points_on_skin(base, ("cheek_l", "cheek_r", "forehead"), 8, rng)
    diameters = rng.uniform(1.0, 2.5, len(centres)) / mm_per_px
    return draw_spots(img, centres, diameters, contrast=0.3, red=True)


def _other_person(bases: dict) -> np.ndarray:
    """A portrait of someone none of the demo's subjects is made from."""
    from toolkit.imaging.synthetic import portrait

    other = next(n for n in ("grace_hopper", "astronaut") if n not in bases)
    return portrait(other, long_side_px=PHOTO_LONG_SIDE_PX)


# ------------------------------------------------------------------------------------ ratings and events
_AE_PROFILE = {
    # arm: [(verbatim term as a site writes it, system organ class the site entered, probability per subject)];
    # the export codes each verbatim with the study's AE dictionary
    "EP": [("Redness at electrode site", "General disorders and administration site conditions", 0.45),
           ("Muscle twitching", "Nervous system disorders", 0.35),
           ("Pain at electrode site", "General disorders and administration site conditions", 0.15),
           ("Tingling", "General disorders and administration site conditions", 0.15)],
    "MC": [("Tingling", "General disorders and administration site conditions", 0.30),
           ("Redness", "General disorders and administration site conditions", 0.20),
           ("Twitching", "Nervous system disorders", 0.10),
           ("Metallic taste", "Nervous system disorders", 0.05)],
    "SHAM": [("Redness", "General disorders and administration site conditions", 0.08),
             ("Headache", "Nervous system disorders", 0.12)],
}


def _import_ratings(st, cohort, truth: TrueEffects, seed: int, data_dir: Path, logins) -> None:
    """Clinician grades from the site's CSV file (one blinded evaluator, simulated)."""
    rng = np.random.default_rng(seed + 1)
    scale_endpoints = [e for e in st.endpoints if getattr(e, "kind", "") == "scale"]
    rating_rows = []
    for subj in cohort:
        for ep in scale_endpoints:
            for visit_id in getattr(ep, "visits", None) or [v.id for v in st.visits]:
                visit = next(v for v in st.visits if v.id == visit_id)
                if not _attended(subj, visit):
                    continue
                state = _visit_state(st, subj, visit, truth, np.random.default_rng([seed, 7, int(subj.subject_id[2:]),
                                                                                        int(visit.number)]))
                improvement = 1.0 - state["severity"] / subj.baseline_severity + state["lift_mm"] / 4.0
                if str(getattr(ep, "scale", ep.code)).upper() == "GAIS":
                    cut = [0.25, 0.12, 0.04, -0.04]  # very much improved … no change … worse
                    score = 1 + sum(improvement + rng.normal(0, 0.03) < c for c in cut)
                else:  # severity scales: higher = worse
                    score = int(np.clip(round(3.0 * state["severity"] + rng.normal(0, 0.35)), 1, 5))
                rating_rows.append({"subject_id": subj.subject_id, "visit_id": visit_id,
                                    "scale": getattr(ep, "scale", ep.code), "score": score,
                                    "assessor": "blinded evaluator (simulated)",
                                    "assessed_on": _visit_day(st, subj, visit).isoformat()})
    with _open_as(st, logins["demo-datamanager"]) as store:
        _import_rows(store, data_dir, "assessments", rating_rows, "ratings.csv")


def _import_rows(store, data_dir: Path, kind: str, rows: list[dict], name: str) -> None:
    """Write ``rows`` as the CSV file ``imports/<name>`` and import it (nothing when there are none)."""
    from toolkit.store.imports import import_csv

    if not rows:
        return
    imports = data_dir / "imports"
    imports.mkdir(exist_ok=True)
    path = imports / name
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    import_csv(store, kind, path, reason=f"demo import of {name}")


def _adverse_events(st, cohort, seed: int, data_dir: Path, logins) -> None:
    """The site's adverse events (imported), the dropouts' withdrawals, the investigator's causality."""
    rng = np.random.default_rng([seed, 3])
    ae_rows = []
    for subj in cohort:
        for term, soc, p in _AE_PROFILE.get(subj.arm_id or "", []):
            if rng.random() < p:
                k = int(rng.integers(1, subj.last_session + 1))
                onset = subj.first_session + timedelta(days=(k - 1) * int(st.schedule.interval_days))
                ae_rows.append({"subject_id": subj.subject_id, "term": term, "soc": soc,
                                "severity": "mild" if rng.random() < 0.8 else "moderate", "serious": "N",
                                "relation": "related" if subj.arm_id != "SHAM" else "unlikely",
                                "onset": onset.isoformat(), "resolved": (onset + timedelta(days=2)).isoformat()})
    with _open_as(st, logins["demo-datamanager"]) as store:
        _record_dropouts(st, store, cohort)
        _import_rows(store, data_dir, "ae", ae_rows, "adverse_events.csv")
    # the investigator assesses and signs the causality of every adverse event
    with _open_as(st, logins["demo-investigator"]) as store:
        for ae in store.adverse_events():
            store.sign_record("adverse_events", ae.ae_id, meaning="causality assessed")


def _record_dropouts(st, store, cohort) -> None:
    """A subject who stopped before the end of the course withdrew: recorded as the site would."""
    from toolkit.store.disposition import withdraw_subject

    for subj in cohort:
        if subj.last_session < int(st.schedule.sessions):
            last = subj.first_session + timedelta(days=(subj.last_session - 1) * int(st.schedule.interval_days))
            withdraw_subject(store, subj.subject_id, on=last + timedelta(days=5), reason="withdrawal by subject",
                             detail=f"moved away after session {subj.last_session}; no further visits")


def _unblind_and_export(st, data_dir: Path, logins) -> None:
    from toolkit.store.export import export_datasets

    with _open_as(st, logins["demo-datamanager"]) as store:
        store.lock(reason="simulated demonstration study: every record entered, database lock before unblinding")
    with _open_as(st, logins["demo-statistician"]) as store:
        store.unblind(reason="simulated demonstration study: unblinded for the closed-loop check against the truth")
        export_datasets(store, data_dir / "analysis")


# ---------------------------------------------------------------------------------------------- analysis
def _write_truth(st, cohort, truth: TrueEffects, rows: list[dict], data_dir: Path, seed: int) -> None:
    """Write ``truth.json`` (the true contrasts at the end of the course, from the generative model) and
    ``photo-truth.csv`` (each photo's true change per photo endpoint, for the measurement validation)."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    last = next((v for v in reversed(st.visits) if getattr(v, "after_session", None) is not None), st.visits[-1])
    base_visit = st.visits[0].id
    frame["fold_length_mm"] = [sum(d.values()) for d in frame["wrinkle_length_mm"]]
    frame["fold_depth_index"] = [sum(d.values()) for d in frame["wrinkle_depth_index"]]
    frame["jaw_lift_mm"] = [float(np.mean([v for k, v in (d or {}).items() if k.startswith("jawline")] or [np.nan]))
                            for d in frame["region_lift_mm"]]
    # the drawn folds are exactly linear in severity: length = a · s + b (b = their widths), contrast = c · s
    a, b = np.polyfit(frame["severity"], frame["fold_length_mm"], 1)
    contrast_pct = float(np.median([100.0 * np.mean(list(d.values())) / s
                                    for d, s in zip(frame["fold_contrast"], frame["severity"], strict=True)]))
    lift_ratio = [r.jaw_lift_mm / r.lift_mm for r in frame[frame["visit"] == last.id].itertuples(index=False)
                  if abs(r.lift_mm) > 0.05 and np.isfinite(r.jaw_lift_mm)]
    ratio = float(np.median(lift_ratio)) if lift_ratio else 1.0
    control = "SHAM"
    folds = {arm.id: truth.expected_fold_change(arm.id, length_per_severity_mm=float(a), width_total_mm=float(b),
                                                contrast_pct=contrast_pct, seed=seed) for arm in st.arms}
    effects = []
    for arm in ("EP", "MC"):
        if not any(x.id == arm for x in st.arms):
            continue
        e, c = truth.effect(arm), truth.effect(control)
        contrast = f"{arm} - {control}"
        effects.append({"endpoint": "NLFLEN", "contrast": contrast, "visit": last.id,
                        "value": round(folds[arm]["length_mm"] - folds[control]["length_mm"], 4)})
        effects.append({"endpoint": "NLFDEPTH", "contrast": contrast, "visit": last.id,
                        "value": round(folds[arm]["depth_index"] - folds[control]["depth_index"], 4)})
        effects.append({"endpoint": "LIFTJAW", "contrast": contrast, "visit": last.id,
                        "value": round(ratio * (e.lift_mm - c.lift_mm), 4)})
    doc = {
        "description": "True treatment effects of the simulated demo study (difference in mean change from "
                       "baseline at the end of the course), from the model that generated the photos.",
        "seed": seed,
        "arms": {k: v.__dict__ for k, v in truth.arms.items()},
        "fold_length_per_severity_mm": float(a),
        "fold_width_total_mm": float(b),
        "fold_contrast_per_severity_pct": contrast_pct,
        "jawline_lift_ratio": ratio,
        "effects": effects,
    }
    (data_dir / "truth.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    frame.drop(columns=["wrinkle_length_mm", "wrinkle_depth_index", "fold_contrast", "region_lift_mm"]).to_json(
        data_dir / "truth-per-photo.json", orient="records", indent=1)
    # each photo's true change from the subject's baseline photo, per photo endpoint
    base = frame[frame["visit"] == base_visit].set_index("subject")
    out = []
    for r in frame[frame["visit"] != base_visit].itertuples(index=False):
        if r.subject not in base.index:
            continue
        usubjid = f"{st.id}-{r.subject}"
        out += [(usubjid, r.visit_number, "NLFLEN", r.fold_length_mm - base.at[r.subject, "fold_length_mm"]),
                (usubjid, r.visit_number, "NLFDEPTH", r.fold_depth_index - base.at[r.subject, "fold_depth_index"]),
                (usubjid, r.visit_number, "LIFTJAW", r.jaw_lift_mm)]
    pd.DataFrame(out, columns=["USUBJID", "AVISITN", "PARAMCD", "TRUE_CHG"]).to_csv(data_dir / "photo-truth.csv",
                                                                                   index=False)

def _write_split_face_truth(st, cohort, rows: list[dict], data_dir: Path, seed: int) -> None:
    """Write ``truth.json`` of a split-face study: per endpoint, the true difference between the sides at the end
    of the course, from what was drawn on each half of each subject's photos.

    For each subject, the change from baseline of the drawn fold length (and the drawn jawline lift) on the side
    that received the first arm minus that on the side that received the second; the truth is its mean over
    the subjects photographed at both visits, the quantity the paired analysis estimates.
    """
    import pandas as pd

    frame = pd.DataFrame(rows)
    last = next((v for v in reversed(st.visits) if getattr(v, "after_session", None) is not None), st.visits[-1])
    first_arm, second_arm = (a.id for a in st.arms)
    suffix = {"left": "_l", "right": "_r"}
    sides = {s.subject_id: {arm: side for side, arm in (s.side_map or {}).items()} for s in cohort}
    by_visit = {(r.subject, r.visit): r for r in frame.itertuples(index=False)}
    folds, lifts = [], []
    for subject, side_of in sides.items():
        base, end = by_visit.get((subject, st.visits[0].id)), by_visit.get((subject, last.id))
        if base is None or end is None or set(side_of) != {first_arm, second_arm}:
            continue

        def change(arm: str, base=base, end=end, side_of=side_of) -> float:
            region = "nasolabial" + suffix[side_of[arm]]
            return end.wrinkle_length_mm[region] - base.wrinkle_length_mm[region]

        def lift(arm: str, end=end, side_of=side_of) -> float:
            return float((end.region_lift_mm or {}).get("jawline" + suffix[side_of[arm]], 0.0))

        folds.append(change(first_arm) - change(second_arm))
        lifts.append(lift(first_arm) - lift(second_arm))
    contrast = f"{first_arm} - {second_arm}"
    effects = [{"endpoint": code, "contrast": contrast, "visit": last.id, "value": round(float(np.mean(d)), 4)}
               for code, d in (("NLFLEN", folds), ("LIFTJAW", lifts)) if d]
    doc = {
        "description": "True differences between the two sides of the face in the simulated split-face demo "
                       f"({contrast}: change from baseline at {last.id}), the mean over subjects of what was drawn "
                       "on each half of their photos. The simulated photos give both halves the change of the arm "
                       "given on the subject's left side, so the true side difference is close to zero.",
        "seed": seed,
        "subjects": len(folds),
        "effects": effects,
    }
    (data_dir / "truth.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    frame.to_json(data_dir / "truth-per-photo.json", orient="records", indent=1)


def _analyse(st, data_dir: Path) -> None:
    import pandas as pd

    from toolkit.stats.adtte import time_to_improvement_dataset, write_time_to_improvement
    from toolkit.stats.plan import run_analysis_plan

    analysis = data_dir / "analysis"

    def read(name: str) -> pd.DataFrame | None:
        path = analysis / f"{name}.csv"
        return pd.read_csv(path) if path.is_file() else None

    bds = read("adeff")
    if bds is None:
        raise DataError(f"the export wrote no adeff.csv under {analysis}")
    adsl = read("adsl")
    results = run_analysis_plan(st, bds, adsl=adsl, adae=read("adae"), deviations=read("dv"), on_error="record")
    results.to_dir(analysis / "results")

    # time to first visible improvement of the primary endpoint (≥ 10 % change), by session
    tti = time_to_improvement_dataset(st, bds, threshold_pct=10.0)
    write_time_to_improvement(tti, analysis, analysis / "results")


def _disposition_summary(data_dir: Path) -> tuple[dict[str, str], int]:
    """Withdrawn subjects with their reason, and the size of the per-protocol set, as ADSL records them."""
    import pandas as pd

    adsl = pd.read_csv(data_dir / "analysis" / "adsl.csv")
    gone = adsl[adsl["EOSSTT"] == "DISCONTINUED"]
    return ({str(r.SUBJID): str(r.DCSREAS) for r in gone.itertuples(index=False)},
            int((adsl["PPROTFL"] == "Y").sum()))


def _print_summary(console, result: DemoResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    console.rule("[bold]Demo finished")
    not_given = result.sessions_planned - result.sessions_completed - result.sessions_not_completed
    left = "; ".join(f"{sid}: {reason.lower()}" for sid, reason in result.withdrawn.items()) or "none"
    console.print(f"subjects: {result.subjects} (withdrawn: {left}); per-protocol set: {result.per_protocol}")
    console.print(f"sessions: {result.sessions_planned} planned, {result.sessions_completed} completed, "
                  f"{result.sessions_not_completed} not completed, {not_given} not given; photos: "
                  f"{result.photos} ({result.photos_failed_qc} failed QC)")
    if result.closed_loop:
        table = Table(title="Closed-loop check: estimated effect vs simulated truth")
        for col in ("endpoint", "contrast", "visit", "truth", "estimate", "ci_low", "ci_high", "covered"):
            table.add_column(col)
        for row in result.closed_loop:
            table.add_row(*[f"{row.get(c):.3f}" if isinstance(row.get(c), float) else str(row.get(c))
                            for c in ("endpoint", "contrast", "visit", "truth", "estimate", "ci_low", "ci_high",
                                      "covered")])
        console.print(table)
        console.print("[green]every 95 % CI covers the truth[/]" if result.closed_loop_ok
                      else "[yellow]not every 95 % CI covers the truth (see the report)[/]")
    for note in result.notes:  # plain text: brackets in a note are not markup
        console.print(f"note: {escape(note)}")
    total = sum(result.timings_s.values())
    console.print(f"wall time {total:.0f} s: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.timings_s.items()))
    if result.report_dir is not None:
        console.print(f"[bold green]report:[/] {Path(result.report_dir) / 'index.html'}")
