"""The site's forms, driven in Python as a browser would drive them: bad input gets a message beside the
field it concerns, nothing is written then; good input lands in the store through the same API as the CLI."""

from __future__ import annotations

import html
from datetime import date, timedelta

import pytest

from toolkit.store import open_store

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

PW = "test password 2026"
CONSENT = date.today() - timedelta(days=10)


def _store(study, user="investigator"):
    return open_store(study, user=user, password=PW)


def _messages(form) -> dict[str, str]:
    """The messages shown beside the fields, as the user reads them (HTML entities decoded)."""
    return {k: html.unescape(f.message.value) for k, f in form.fields.items() if f.message.value}


def _fill_screening(form, *, sid="S-001", age="50", exclusion=None):
    form.subject_id.value = sid
    form.age.value = age
    form.sex.value = "F"
    form.fitzpatrick.value = "III"
    form.consent.value = CONSENT
    form.checked_on.value = CONSENT
    for code, toggle in form.answers.items():
        kind = next(c.kind for c in form.store.info.eligibility.checklist() if c.code == code)
        toggle.value = "yes" if kind == "inclusion" else "no"
    if exclusion:
        form.answers[exclusion].value = "yes"


def test_enrolment_form_refuses_bad_input_beside_the_field_then_enrols(demo_study, randomized):
    from toolkit.site import EnrolmentForm

    randomized(demo_study, 6)
    with _store(demo_study) as store:
        page = EnrolmentForm(store)
        form = page.screening
        _fill_screening(form, age="17")
        assert not form.submit()
        assert "age 17 is outside 18–120" in _messages(form)["age"]
        _fill_screening(form, age="abc")
        assert not form.submit() and "'abc' is not a whole number" in _messages(form)["age"]
        _fill_screening(form, age="70")
        assert not form.submit() and "outside the study's 30–65 years" in _messages(form)["age"]
        _fill_screening(form, exclusion="epilepsy")
        assert not form.submit()
        assert _messages(form).keys() == {"checklist.epilepsy"}
        assert "exclusion applies: Epilepsy" in _messages(form)["checklist.epilepsy"]
        _fill_screening(form)
        form.answers["attends_course"].value = None
        assert not form.submit() and "not answered" in _messages(form)["checklist.attends_course"]
        _fill_screening(form)
        form.checked_on.value = CONSENT - timedelta(days=1)
        assert not form.submit() and "cannot come before the consent" in _messages(form)["checked_on"]
        _fill_screening(form)
        form.consent.value = date.today() + timedelta(days=2)
        assert not form.submit() and "in the future" in _messages(form)["consent_signed_on"]
        assert "not saved" in form.status.value and "Traceback" not in form.status.value
        assert store.subjects() == []  # nothing half-written by any refusal
        _fill_screening(form, age="44")
        assert form._derive() is None and form.strata["age_group"].value == "lt45"
        assert form.submit(), form.status.value
        assert _messages(form) == {} and "S-001 enrolled" in form.status.value
        rec = store.subject("S-001")
        assert rec.strata == {"age_group": "lt45"} and rec.consent_signed_on == CONSENT
        assert rec.checklist["epilepsy"] is False and rec.checklist["attends_course"] is True
        # the same subject again: refused beside the id
        _fill_screening(form, age="44")
        assert not form.submit() and "already enrolled" in _messages(form)["subject_id"]

        patch = page.patch
        assert "S-001" in [v for _, v in patch.subject.options]
        patch.subject.value = "S-001"
        patch.result.value = "pass"
        patch.read_on.value = date.today() + timedelta(days=1)
        assert not patch.submit() and "in the future" in _messages(patch)["read_on"]
        patch.read_on.value = CONSENT + timedelta(days=2)
        assert patch.submit(), patch.status.value
        assert "eligible for randomisation" in patch.status.value

        alloc = page.allocation
        alloc.subject.value = "S-001"
        alloc.ask()
        assert alloc.confirm_box.layout.display == "flex" and "cannot be undone" in alloc.question.value
        assert alloc.submit(), alloc.status.value
        assert "arm" in alloc.result.value and "randomisation number" in alloc.result.value
        assert store.subject("S-001").allocation is not None
        assert "S-001" not in [v for _, v in alloc.subject.options]


def _allocated(store, sid="S-001"):
    store.enroll_subject(sid, age=50, sex="F", fitzpatrick="III", consent_signed_on=CONSENT,
                         checklist=store.info.eligibility.all_met(), checked_on=CONSENT)
    store.record_patch_test(sid, passed=True, read_on=CONSENT + timedelta(days=2))
    store.allocate(sid)


def test_adverse_event_form_codes_highlights_blocks_and_corrects(demo_study, randomized):
    from toolkit.site import AdverseEventForm

    randomized(demo_study, 6)
    with _store(demo_study) as store:
        _allocated(store)
        form = AdverseEventForm(store)
        form.subject.value = "S-001"
        form.term.value = "Redness"
        assert "coded: <b>Application site erythema</b>" in form.coding.value
        assert form.soc.value == "General disorders and administration site conditions"
        form.onset.value = date.today() - timedelta(days=1)
        form.resolved.value = date.today() - timedelta(days=3)
        form.severity.value = "mild"
        form.relation.value = "possible"
        assert not form.submit()
        assert "before onset" in _messages(form)["resolved"]
        form.resolved.value = None
        form.outcome.value = "recovered/resolved"
        assert not form.submit() and "needs the date the event ended" in _messages(form)["resolved"]
        form.outcome.value = None
        form.term.value = "felt strange"
        form.soc.value = None
        assert "not in the study's dictionary" in form.coding.value
        assert not form.submit() and "choose one" in _messages(form)["soc"]
        assert store.adverse_events("S-001") == []
        form.term.value = "Fainting"
        form.soc.value = "Nervous system disorders"
        form.serious.value = True
        assert "3px solid" in form.entry.layout.border and "no further session" in form.warning.value
        assert form.submit(), form.status.value
        (ae,) = store.adverse_events("S-001")
        assert ae.serious and ae.blocks_sessions and ae.term == "Fainting"
        assert "Sessions blocked" in form.listing.value and "epmc-ae-blocking" in form.listing.value
        # a correction needs a reason, and the value is checked as at first entry
        corr = form.correction
        corr.event.value = ae.ae_id
        corr.column.value = "resolved"
        corr.value.value = "not a date"
        corr.reason.value = "from the discharge letter"
        assert not corr.submit() and "accepted: a date YYYY-MM-DD" in _messages(corr)["value"]
        corr.value.value = date.today().isoformat()
        corr.reason.value = "  "
        assert not corr.submit() and "a reason is required" in _messages(corr)["reason"]
        corr.reason.value = "from the discharge letter"
        assert corr.submit(), corr.status.value
        assert store.unresolved_serious_aes("S-001") == []
        assert "Sessions blocked" not in form.listing.value


def test_the_rating_station_is_blind_keyboard_driven_and_resumable(demo_study, randomized, photo_file):
    from toolkit.site import RatingStation

    randomized(demo_study, 6)
    with _store(demo_study) as store:
        _allocated(store)
        for visit in ("BASELINE", "S12"):
            path, sha = photo_file(f"S-001-{visit}")
            store.add_photo("S-001", visit_id=visit, path=path, sha256=sha)
    with _store(demo_study, "rater") as store:
        station = RatingStation(store)
        seen = station.header.value + station.progress.value
        assert "S-001" not in seen and "BASELINE" not in seen and "S12" not in seen
        assert "0 of 3 photo sets graded" in station.progress.value
        first = station.current
        keys = station.keys
        keys._handle_custom_msg({"key": "9"}, None)  # as the browser sends a key
        assert "9 is not a grade" in _messages(station)["score"]
        keys._handle_custom_msg({"key": "Enter"}, None)  # as the browser sends a key
        assert "choose a grade first" in _messages(station)["score"]
        keys._handle_custom_msg({"key": "3"}, None)  # as the browser sends a key
        assert station.selected == 3.0 and station._buttons[3.0].button_style == "info"
        keys._handle_custom_msg({"key": "Enter"}, None)  # as the browser sends a key
        assert "grade 3 filed" in station.status.value and station.current.set_id != first.set_id
        # a second window shows the same next set; the first to file wins, the other is told and moves on
        other = RatingStation(store)
        assert other.current.set_id == station.current.set_id
        station.choose(2)
        assert station.file()
        other.choose(4)
        assert not other.file()
        assert "already graded" in other.status.value
    with _store(demo_study, "rater") as store:
        again = RatingStation(store)  # reopened: resumes with what is left
        assert "2 of 3 photo sets graded" in again.progress.value
        again.choose(again._buttons and min(again._buttons))
        assert again.file()
        ratings = store.rating_records()
    assert len(ratings) == 3 and set(ratings["repeat"]) == {0}


def test_a_practice_day_at_the_desk_walks_one_subject_through_every_form(demo_study, randomized):
    """Enrolment, a session on the twin, photos, an adverse event and the blind grades, each through its form;
    the forms keep each other's subject lists in step."""
    from instruments.twin import TwinBench
    from toolkit.delivery import DeliverySettings
    from toolkit.site import RatingStation, SiteDesk
    from toolkit.site.practice import (
        practice_adverse_event,
        practice_enrolment,
        practice_photos,
        practice_ratings,
        practice_session,
    )

    randomized(demo_study, 6)
    with TwinBench(seed=7) as twin, _store(demo_study) as store:
        twin.model.max_simulated_pulses = 1
        desk = SiteDesk(store, twin=twin, practice=True, settings=DeliverySettings(capture_every_s=300.0))
        assert [v for _, v in desk.session.subject.options] == [None]
        rec = practice_enrolment(desk.enrolment, "P-001")
        assert rec.allocation is not None and rec.checklist and rec.patch_test.passed
        # randomised in one form: offered at once by the session launcher, the photo and AE forms
        for dropdown in (desk.session.subject, desk.photos.subject, desk.adverse_events.subject):
            assert "P-001" in [v for _, v in dropdown.options]
        record = practice_session(desk.session, "P-001")
        assert record.outcome == "completed", record.summary()
        assert list(store.deliveries("P-001")["status"]) == ["completed"]
        # the same session again without asking for a repeat: refused in the panel, in the panel's words
        desk.session.repeat.value = False
        assert desk.session.start() and desk.session.wait(120) is None
        refusal = desk.session.panel.status.value
        assert "already completed" in refusal and "Repeat" in refusal and "repeat=True" not in refusal
        assert list(store.deliveries("P-001")["status"]) == ["completed"]
        assert len(practice_photos(desk.photos, "P-001", ("BASELINE", "S12"))) == 2
        (ae,) = practice_adverse_event(desk.adverse_events, "P-001")
        assert ae.session_number == 1 and ae.term == "redness at electrode site" and not ae.serious
        assert "epmc-ae-row" in desk.adverse_events.listing.value
    with _store(demo_study, "rater") as rater:
        station = RatingStation(rater)
        filed = practice_ratings(station)
        assert station.current is None and "every photo set on your list is graded" in station.status.value
        grades = rater.rating_records()
    assert len(grades) == filed and set(grades["rater"]) == {"rater"}
    first, again = grades[grades["repeat"] == 0], grades[grades["repeat"] == 1]
    assert sorted(first["scale"]) == ["GAIS", "WSRS", "WSRS"]
    # then the re-rating subset, blind: at least one set of each scale, each set at most once more
    assert set(again["scale"]) == {"GAIS", "WSRS"} and set(again["set_id"]) <= set(first["set_id"])
    assert not again["set_id"].duplicated().any()
