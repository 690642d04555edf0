"""A practice subject for rehearsing a day at the site: each form is filled in as a coordinator would, then
submitted with its own button logic, so a rehearsal (or a notebook run by the test suite) takes the path of
a person at the keyboard through the same checks.

Only for rehearsals on a practice database: the values are made up (a 48-year-old woman, Fitzpatrick III,
every inclusion met and no exclusion, consent a week ago, the patch test read two days after it).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

__all__ = ["practice_adverse_event", "practice_enrolment", "practice_photos", "practice_ratings",
           "practice_session"]


def _checked(form: Any, saved: bool) -> None:
    if not saved:
        import html
        import re

        text = html.unescape(re.sub(r"<[^>]+>", " ", form.status.value))
        raise RuntimeError(f"the practice entry was refused: {' '.join(text.split())}")


def practice_enrolment(enrolment: Any, subject_id: str, *, today: date | None = None) -> Any:
    """Screen, enrol, patch-test and randomise ``subject_id`` through an
    :class:`~toolkit.site.enrolment.EnrolmentForm`; return the subject's record. A subject enrolled already
    (an earlier rehearsal) is reused."""
    today = today or date.today()
    store = enrolment.store
    if subject_id not in {s.subject_id for s in store.subjects()}:
        form = enrolment.screening
        form.subject_id.value = subject_id
        form.age.value = "48"
        form.sex.value = "F"
        form.fitzpatrick.value = "III"
        form.consent.value = today - timedelta(days=7)
        form.checked_on.value = today - timedelta(days=7)
        kinds = {c.code: c.kind for c in store.info.eligibility.checklist()}
        for code, toggle in form.answers.items():
            toggle.value = "yes" if kinds[code] == "inclusion" else "no"
        _checked(form, form.submit())
        patch = enrolment.patch
        patch.subject.value = subject_id
        patch.result.value = "pass"
        patch.read_on.value = today - timedelta(days=5)
        _checked(patch, patch.submit())
    if store.subject(subject_id).allocation is None:
        alloc = enrolment.allocation
        alloc.subject.value = subject_id
        alloc.ask()
        _checked(alloc, alloc.submit())
    return store.subject(subject_id)


def practice_session(launcher: Any, subject_id: str, session_number: int = 1, *, timeout_s: float = 300) -> Any:
    """Start a session of ``subject_id`` in a :class:`~toolkit.site.sessions.SessionLauncher` (a repeat when
    it was delivered in an earlier rehearsal) and wait for its end; return the delivery record."""
    launcher.refresh()
    launcher.subject.value = subject_id
    launcher.session.value = session_number
    done = launcher.store.deliveries(subject_id)
    launcher.repeat.value = bool(len(done) and ((done["session_number"] == session_number)
                                                & (done["status"] == "completed")).any())
    _checked(launcher, launcher.start())
    record = launcher.wait(timeout_s)
    if record is None:
        raise RuntimeError(f"the practice session was not delivered: {launcher.panel.error}")
    return record


def practice_photos(desk: Any, subject_id: str, visits: tuple[str, ...]) -> list[int]:
    """Register a practice portrait of ``subject_id`` at each visit through a
    :class:`~toolkit.site.photos.PhotoDesk` (visits photographed already are left as they are)."""
    store = desk.store
    taken = {p.visit_id for p in store.photos(subject_id)}
    ids = []
    for visit in visits:
        if visit in taken:
            continue
        desk.subject.value = subject_id
        desk.visit.value = visit
        desk.view.value = "frontal"
        _checked(desk, desk.submit(practice=True))
        ids.append(desk.last_photo_id)
    return ids


def practice_adverse_event(form: Any, subject_id: str, *, today: date | None = None) -> Any:
    """Record a mild, resolved redness after session 1 through an
    :class:`~toolkit.site.adverse_events.AdverseEventForm`; return the subject's events."""
    today = today or date.today()
    form.subject.value = subject_id
    form.term.value = "redness at electrode site"
    form.onset.value = today
    form.resolved.value = today
    sessions = [v for _, v in form.session.options if v is not None]
    form.session.value = sessions[0] if sessions else None
    form.severity.value = "mild"
    form.serious.value = False
    form.relation.value = "probable"
    form.action.value = "dose not changed"
    form.outcome.value = "recovered/resolved"
    _checked(form, form.submit())
    return form.store.adverse_events(subject_id)


def practice_ratings(station: Any, grades: tuple[int, ...] = (3, 2, 4, 3)) -> int:
    """Grade every set left on a :class:`~toolkit.site.rating.RatingStation` (cycling through ``grades``, or
    the scale's nearest grade); return how many were filed."""
    filed = 0
    while station.current is not None:
        wanted = float(grades[filed % len(grades)])
        choice = min(station._buttons, key=lambda g: abs(g - wanted))
        station.choose(choice)
        _checked(station, station.file())
        filed += 1
    return filed
