"""Loading study files: the shipped studies, and every kind of mistake reported at once with its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from toolkit.errors import ConfigurationError
from toolkit.study import (
    ElectroporationPrescription,
    MicrocurrentPrescription,
    SafetyEnvelope,
    ShamPrescription,
    Study,
    StudyValidationError,
    load_study,
)

from .conftest import DEMO, SPLITFACE, replace_once
from .test_envelope import mc_waveform_rms_A


def line_of(text: str, anchor: str) -> int:
    """1-based line of the first occurrence of ``anchor``."""
    return text[: text.index(anchor)].count("\n") + 1


def issues_of(folder: Path) -> list:
    with pytest.raises(StudyValidationError) as info:
        load_study(folder)
    return info.value.issues


# -- the shipped studies -----------------------------------------------------------------------------------


def test_demo_study_matches_the_contract() -> None:
    study = load_study(DEMO)
    assert isinstance(study, Study)
    assert (study.id, study.design, study.path) == ("epmc-demo", "parallel", DEMO.resolve())
    assert [a.id for a in study.arms] == ["EP", "MC", "SHAM"]
    assert [a.modality for a in study.arms] == ["electroporation", "microcurrent", "sham"]
    assert isinstance(study.arm("EP").prescription, ElectroporationPrescription)
    assert isinstance(study.arm("MC").prescription, MicrocurrentPrescription)
    assert isinstance(study.arm("SHAM").prescription, ShamPrescription)
    assert study.schedule.sessions == 12
    assert [v.id for v in study.visits] == ["BASELINE", "S4", "S8", "S12", "FU"]
    assert [v.after_session for v in study.visits] == [None, 4, 8, 12, None]
    assert [study.schedule.visit_day(v) for v in study.visits] == [1, 22, 50, 78, 106]
    assert [v.day for v in study.visits] == [1, 22, 50, 78, 106]
    assert study.schedule.session_days == [1 + 7 * k for k in range(12)]
    assert study.schedule.session_window(12) == (76, 80)
    assert study.visit("FU").kind == "follow_up"
    assert [v.number for v in study.visits] == [0, 4, 8, 12, 16]
    assert [v.kind for v in study.visits] == ["baseline", "treatment", "treatment", "treatment", "follow_up"]
    assert study.primary_endpoint.code == "NLFLEN"
    assert study.analysis.analyses[0].model == "ancova"
    assert any(a.model == "mmrm" for a in study.analysis.analyses)
    assert study.tolerances.current_rel == 0.05 and study.tolerances.pulse_width_rel == 0.02
    assert study.envelope.session_duration_max_min == 30
    for arm in study.arms:
        assert study.envelope.check(arm.prescription) == []
    with pytest.raises(KeyError, match="arms: EP, MC, SHAM"):
        study.arm("XX")


def test_shipped_prescriptions_are_realistic() -> None:
    for folder in (DEMO, SPLITFACE):
        study = load_study(folder)
        for arm in study.arms:
            p = arm.prescription
            assert 20 <= p.duration_min <= 30
            if arm.modality == "microcurrent":
                assert p.current_uA == 200 and 2 <= p.electrode_area_cm2 <= 4
                assert 0.5 <= p.frequency_Hz <= 30 and p.figures().charge_balanced
            if arm.modality == "electroporation":
                assert 60 <= p.amplitude_V <= 100 and p.pulse_width_ms == 1 and p.train_interval_s <= 2


def test_splitface_study() -> None:
    study = load_study(SPLITFACE / "study.yaml")  # the file works as well as the folder
    assert study.design == "split-face"
    assert [a.id for a in study.arms] == ["EP", "MC"]
    assert {a.model for a in study.analysis.analyses} == {"paired"}
    assert study.arm("EP").prescription.placement.on_side("right").pairs[0].a == "cheek_r"


# -- files that are not there, or not YAML -------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    issues = issues_of(tmp_path / "nowhere")
    assert len(issues) == 1 and "no such file or folder" in issues[0].message


def test_folder_without_study_yaml(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    issues = issues_of(tmp_path)
    assert "has no study.yaml" in issues[0].message and "notes.txt" in issues[0].message


def test_empty_file(write_study) -> None:
    issues = issues_of(write_study("# nothing yet\n"))
    assert "empty" in issues[0].message and "arms" in issues[0].message


def test_yaml_syntax_error_has_its_line(write_study, demo_text) -> None:
    text = replace_once(demo_text, "  sessions: 12\n", "  sessions: [12\n")
    issues = issues_of(write_study(text))
    assert len(issues) == 1
    assert "YAML syntax error" in issues[0].message
    assert abs(issues[0].line - line_of(text, "  sessions: [12")) <= 2


def test_top_level_list_is_refused(write_study) -> None:
    assert "mapping" in issues_of(write_study("- a\n- b\n"))[0].message


def test_duplicate_key(write_study, demo_text) -> None:
    text = replace_once(demo_text, "  sessions: 12\n", "  sessions: 12\n  sessions: 14\n")
    issues = issues_of(write_study(text))
    assert issues[0].field == "schedule.sessions" and "repeats" in issues[0].message
    assert issues[0].line == line_of(text, "  sessions: 14")


def test_not_utf8(write_study) -> None:
    folder = write_study("")
    (folder / "study.yaml").write_bytes(b"id: \xff\xfe\n")
    assert "UTF-8" in issues_of(folder)[0].message


# -- every mistake at once, each with its line ---------------------------------------------------------------


def test_many_mistakes_reported_at_once(write_study, demo_text) -> None:
    text = demo_text
    text = replace_once(text, "      current_uA: 200 ", '      current_uA: "200 V" ')
    text = replace_once(text, "  window_days: 2\n", "  window_days: 2\n  colour: blue\n")
    text = replace_once(text, "number: 8, after_session: 8}", "number: 8, after_session: 14}")
    text = replace_once(text, "      amplitude_V: 70 ", "      amplitude_V: 700 ")
    text = replace_once(text, "  - id: SHAM\n    name: Sham\n    ratio: 1\n    prescription:", "  - id: SHAM\n    name: Sham\n    ratio: 1\n    prescriptio:")
    text = replace_once(text, "  microcurrent_max_uA: 500", "  microcurrent_max_uA: 1500")
    text = replace_once(text, "    metric: lift_mm", "    metric: lift_cm")
    text = replace_once(text, "  interval_days: 7", "  interval_days: weekly")
    issues = issues_of(write_study(text))
    by_field = {i.field: i for i in reversed(issues)}  # the first issue of each field
    messages = {i.field: [] for i in issues}
    for issue in issues:
        messages[issue.field].append(issue.message)

    unit = by_field["arms[1].prescription.current_uA"]
    assert unit.line == line_of(text, 'current_uA: "200 V"')
    assert "not a current" in unit.message and "mA" in unit.message

    unknown = by_field["schedule.colour"]
    assert unknown.line == line_of(text, "  colour: blue")
    assert "unknown key 'colour'" in unknown.message and "window_days" in unknown.message

    typo = by_field["arms[2].prescriptio"]
    assert "did you mean 'prescription'" in typo.message
    assert "no prescription" in by_field["arms[2].prescription"].message

    assert "lift_mm" in by_field["endpoints[1].metric"].message

    assert "loosens the default limit 1000" in by_field["envelope.microcurrent_max_uA"].message
    assert by_field["envelope.microcurrent_max_uA"].line == line_of(text, "  microcurrent_max_uA: 1500")

    envelope = messages["arms[0].prescription.amplitude_V"]
    assert any("700 V exceeds the limit 500 V" in m for m in envelope)
    assert any("current density 17.5 mA/cm²" in m for m in envelope)
    assert by_field["arms[0].prescription.amplitude_V"].line == line_of(text, "      amplitude_V: 700")
    assert "energy per pulse 980 mJ" in by_field["arms[0].prescription.pulse_width_ms"].message

    assert "integer" in by_field["schedule.interval_days"].message
    # the schedule has field errors, so its visit rule cannot run in the same pass; the other sections' can
    assert len(issues) >= 9
    assert all(i.line is not None and i.file.name == "study.yaml" for i in issues)
    assert [i.line for i in issues] == sorted(i.line for i in issues)


def test_visit_after_the_last_session_despite_an_unknown_key(write_study, demo_text) -> None:
    text = replace_once(demo_text, "number: 8, after_session: 8}", "number: 8, after_session: 14}")
    text = replace_once(text, "  window_days: 2\n", "  window_days: 2\n  colour: blue\n")
    issues = issues_of(write_study(text))
    late = next(i for i in issues if i.field == "schedule.visits[2].after_session")
    assert "after session 14 of 12" in late.message and "1–12" in late.message
    assert late.line == line_of(text, "after_session: 14}")


def test_error_type_is_a_configuration_error_listing_details(write_study, demo_text) -> None:
    text = replace_once(demo_text, "  sessions: 12\n", "  sessions: twelve\n")
    with pytest.raises(ConfigurationError) as info:
        load_study(write_study(text))
    assert info.value.exit_code == 2
    assert len(info.value.details) == len(info.value.issues) >= 1
    assert "study.yaml:" in str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("      waveform: faradic ", "      waveform: sawtooth ", "arms[1].prescription.waveform", "'biphasic'"),
        ("      modality: sham ", "      modality: placebo ", "arms[2].prescription.modality", "'sham'"),
        ("  - {id: FU, name: Follow-up 4 weeks, number: 16, day: 106}", "  - {id: FU, name: Follow-up, number: 16, day: 40}",
         "schedule.visits[4].day", "falls inside the course"),
        ("number: 4, after_session: 4}", "number: 4, after_session: 4, day: 30}", "schedule.visits[1].day", "day 22 ± 2"),
        ("    - {id: S4, name: After session 4, number: 4,", "    - {id: S4, name: After session 4, number: 20,",
         "schedule.visits[2]", "time order"),
        ("    - inflamed_skin: Inflamed skin (dermatitis, rosacea flare, acne) in the treatment area\n", "",
         "eligibility.exclusions", "inflamed_skin"),
        ("    - epilepsy: Epilepsy\n", "    - epilepsy: Epilepsy\n    - attends_course: Attends\n",
         "eligibility", "unique"),
        ("    - epilepsy: Epilepsy\n", "    - Epilepsy\n", "eligibility.exclusions", "snake_case"),
        ("  patch_test_required: true", "  patch_test_required: false", "eligibility.patch_test_required", "patch test"),
        ("  fitzpatrick_types: [I, II, III, IV]", "  fitzpatrick_types: [I, VII]", "eligibility.fitzpatrick_types", "1–6"),
        ("  - code: LIFTJAW", "  - code: liftjaw", "endpoints[1].code", "PARAMCD"),
        ("  - code: LIFTJAW", "  - code: NLFLEN", "endpoints[1].code", "repeats"),
        ("    role: key_secondary", "    role: primary", "endpoints", "exactly one"),
        ("    visits: [BASELINE, S12, FU]\n\n  - code: GAIS", "    visits: [BASELINE, S13, FU]\n\n  - code: GAIS",
         "endpoints[3].visits[1]", "unknown visit 'S13'"),
        ("      strata: [age_group]\n      comparisons: [EP vs SHAM, MC vs SHAM]\n    - id: KEY1",
         "      strata: [site]\n      comparisons: [EP vs SHAM, MC vs SHAM]\n    - id: KEY1",
         "analysis.analyses[0].strata[0]", "not a randomization factor"),
        ("      comparisons: [EP vs SHAM, MC vs SHAM]\n    - id: KEY1", "      comparisons: [EP vs PLACEBO]\n    - id: KEY1",
         "analysis.analyses[0].comparisons[0]", "unknown arm 'PLACEBO'"),
        ("      model: mmrm", "      model: paired", "analysis.analyses[1].model", "split-face"),
        ("    order: [[PRIMARY], [KEY1, KEY2]]", "    order: [[PRIMARY], [KEY9]]", "analysis.multiplicity.order", "KEY9"),
        ("  block_sizes: [3, 6]", "  block_sizes: [3, 4]", "randomization.block_sizes[1]", "multiple of 3"),
        ("  block_sizes: [3, 6]", "  block_sizes: [6, 6]", "randomization.block_sizes", "two different"),
        ("      mimics: EP ", "      mimics: SHAM ", "arms[2].prescription.mimics", "not an active arm"),
        ("id: epmc-demo ", "id: another-study ", "id", "folder name"),
        ("  alpha: 0.05", "  alpha: 0.5", "analysis.alpha", "0.2"),
        ("      pulse_width_ms: 1 ", '      pulse_width_ms: "1 mm" ', "arms[0].prescription.pulse_width_ms", "not a time"),
    ],
)
def test_single_mistakes(write_study, demo_text, old, new, field, words) -> None:
    issues = issues_of(write_study(replace_once(demo_text, old, new)))
    match = [i for i in issues if i.field == field]
    assert match, [str(i) for i in issues]
    assert words in match[0].message
    assert match[0].line is not None


def test_unit_strings_are_accepted(write_study, demo_text) -> None:
    text = replace_once(demo_text, "      current_uA: 200 ", '      current_uA: "0.2 mA" ')
    text = replace_once(text, "      pulse_width_ms: 1 ", '      pulse_width_ms: "1000 us" ')
    text = replace_once(text, "      duration_min: 20           # session length", '      duration_min: "1200 s"')
    study = load_study(write_study(text))
    assert study.arm("MC").prescription.current_uA == pytest.approx(200)
    assert study.arm("EP").prescription.pulse_width_ms == pytest.approx(1)
    assert study.arm("EP").prescription.duration_min == pytest.approx(20)


def test_arm_without_prescription(write_study, demo_text) -> None:
    text = demo_text.replace(
        "    prescription:\n      modality: sham             # same handling and duration, output never enabled\n"
        "      duration_min: 20\n      mimics: EP                 # the device and electrodes are handled as for EP\n"
        "      placement:\n        - [cheek, jawline]\n        - [nasolabial, preauricular]\n",
        "",
    )
    assert text != demo_text
    issues = issues_of(write_study(text))
    assert [i.field for i in issues] == ["arms[2].prescription"]
    assert "no prescription" in issues[0].message
    assert issues[0].line == line_of(text, "  - id: SHAM")  # the arm that lacks it


def test_envelope_violation_in_file(write_study, demo_text) -> None:
    text = replace_once(demo_text, "      electrode_area_cm2: 4 ", "      electrode_area_cm2: 2 ")
    issues = issues_of(write_study(text))
    assert [i.field for i in issues] == ["arms[0].prescription.amplitude_V"]
    assert "3.5 mA/cm²" in issues[0].message and "limit 2 mA/cm²" in issues[0].message


def test_splitface_rules(write_study, splitface_text) -> None:
    text = replace_once(splitface_text, "      model: paired              # side difference", "      model: ancova  #")
    text = replace_once(text, "    region: [jawline_l, jawline_r]", "    region: [jawline_l, perioral]")
    text = text.replace("        - [cheek, jawline]\n        - [nasolabial, preauricular]\n\n  - id: MC",
                        "        - [cheek_l, jawline_l]\n\n  - id: MC")
    text = replace_once(text, "  block_sizes: [2, 4]", "  block_sizes: [2, 3]")
    issues = issues_of(write_study(text, "epmc-splitface"))
    fields = {i.field: i.message for i in issues}
    assert "use model: paired" in fields["analysis.analyses[0].model"]
    assert "perioral" in fields["endpoints[1].region"]
    assert "without side" in fields["arms[0].prescription.placement"]
    assert "multiple of 2" in fields["randomization.block_sizes[1]"]


def test_envelope_section_tightens(write_study, demo_text) -> None:
    text = replace_once(demo_text, "  session_duration_max_min: 30", "  session_duration_max_min: 15")
    issues = issues_of(write_study(text))
    assert {i.field for i in issues} == {f"arms[{k}].prescription.duration_min" for k in range(3)}
    assert SafetyEnvelope().session_duration_max_min == 60


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(current_uA=st.floats(10, 900), area_cm2=st.floats(0.02, 4))
def test_study_files_validate_exactly_when_inside_the_tightened_envelope(
    write_study, demo_text, current_uA, area_cm2
) -> None:
    # the demo file tightens the microcurrent limit to 500 µA; its MC arm is faradic, 10 Hz, duty 0.5
    density = mc_waveform_rms_A(current_uA, "faradic", 10, 0.5) * 1e3 / area_cm2
    assume(abs(current_uA - 500) > 5 and abs(density - 2) > 0.02)
    text = replace_once(demo_text, "      current_uA: 200 ", f"      current_uA: {current_uA!r} ")
    text = replace_once(text, "      electrode_area_cm2: 3\n", f"      electrode_area_cm2: {area_cm2!r}\n")
    inside = current_uA <= 500 and density <= 2
    try:
        load_study(write_study(text))
        valid = True
    except StudyValidationError as exc:
        valid = False
        assert {i.field for i in exc.issues} == {"arms[1].prescription.current_uA"}
    assert valid == inside


def test_json_schema_accepts_the_shipped_studies_and_unit_strings() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    schema = Study.model_json_schema()
    for folder in (DEMO, SPLITFACE):
        jsonschema.validate(yaml.safe_load((folder / "study.yaml").read_text()), schema)
    data = yaml.safe_load((DEMO / "study.yaml").read_text())
    data["arms"][1]["prescription"]["current_uA"] = "0.2 mA"
    jsonschema.validate(data, schema)
    data["arms"][1]["prescription"]["current_uA"] = "0.2 V"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("      modality: sham ", "      # no modality ", "arms[2].prescription", "add modality: (one of electroporation"),
        ("schedule:\n  sessions: 12", "schedule: weekly\nunused:\n  sessions: 12", "schedule", "expected a mapping"),
        ("  exclusions:\n    - sensitive_skin", "  exclusions: sensitive_skin\n  other:\n    - sensitive_skin",
         "eligibility.exclusions", "expected a list"),
    ],
)
def test_shape_mistakes(write_study, demo_text, old, new, field, words) -> None:
    issues = issues_of(write_study(replace_once(demo_text, old, new)))
    match = [i for i in issues if i.field == field]
    assert match, [str(i) for i in issues]
    assert words in match[0].message


def test_photo_qc_policy_makes_warnings_failures(write_study, demo_text) -> None:
    assert load_study(DEMO).photo_qc.fail_on_flags == ()  # by default every flag is a warning
    anchor = "  fail_on_flags: []"
    study = load_study(write_study(replace_once(demo_text, anchor, "  fail_on_flags: [spectacles, channel_clipped]")))
    assert study.photo_qc.fail_on_flags == ("spectacles", "channel_clipped")
    # a misspelt flag is named with the list of flags; an unknown key is refused; each with its line
    issues = issues_of(write_study(replace_once(demo_text, anchor, "  fail_on_flags: [spectacles, chanel_clipped]")))
    match = [i for i in issues if i.field.startswith("photo_qc.fail_on_flags")]
    assert match and "'chanel_clipped'" in match[0].message and "channel_clipped" in match[0].message.split(";")[1]
    assert match[0].line is not None
    issues = issues_of(write_study(replace_once(demo_text, anchor, "  fail_on: [smile]")))
    assert [i.field for i in issues] == ["photo_qc.fail_on"], [str(i) for i in issues]
