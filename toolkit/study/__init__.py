"""Study definitions: the validated model of ``studies/<id>/study.yaml``.

>>> from toolkit.study import load_study
>>> study = load_study("studies/epmc-demo")          # doctest: +SKIP
>>> [a.id for a in study.arms]                        # doctest: +SKIP
['EP', 'MC', 'SHAM']
>>> study.envelope.check(study.arm("MC").prescription)  # doctest: +SKIP
[]

Units in a study file: every quantity carries its unit in the key (``current_uA: 200``,
``pulse_width_ms: 1``, ``electrode_area_cm2: 2.5``). A string with an explicit unit is accepted and
converted to the key's unit (``current_uA: "0.2 mA"``, ``pulse_width_ms: "1000 us"``); a unit of another
kind (``current_uA: "200 V"``) is an error listing the accepted units. Relative tolerances take ``0.05`` or
``"5 %"``. ``toolkit study schema`` prints the JSON Schema for editors.

Public surface:

- :func:`load_study`, :class:`Study`, :class:`Arm`, :class:`StudyValidationError` (every problem of a file,
  with its YAML line);
- prescriptions (:class:`MicrocurrentPrescription`, :class:`ElectroporationPrescription`,
  :class:`ShamPrescription`) and their :class:`PrescriptionFigures`;
- :class:`SafetyEnvelope` and :class:`Violation` (a pure check reused by delivery);
- :func:`randomize` and :func:`write_allocation` (stratified permuted blocks, recorded seed and checksum),
  :func:`allocate` (both in one step, without pandas), :func:`read_allocation` (checksum-verified).
"""

from toolkit.study.allocation import (
    ALGORITHM,
    AllocationExistsError,
    AllocationRows,
    allocate,
    generate_allocation,
    randomize,
    read_allocation,
    write_allocation,
)
from toolkit.study.analysis import AnalysisPlan, Comparison, Margin, Multiplicity, PlannedAnalysis, Population
from toolkit.study.eligibility import Eligibility
from toolkit.study.endpoints import PhotoEndpoint, SafetyEndpoint, ScaleEndpoint
from toolkit.study.envelope import SafetyEnvelope, Violation
from toolkit.study.estimands import Estimand, EventStrategy, Sensitivity
from toolkit.study.loader import StudyIssue, StudyValidationError, load_study, study_from_yaml
from toolkit.study.model import Arm, Study
from toolkit.study.photo_qc import PHOTO_QC_FLAGS, PhotoQC
from toolkit.study.placement import ElectrodePair, Placement
from toolkit.study.prescription import (
    ElectroporationPrescription,
    MicrocurrentPrescription,
    PrescriptionFigures,
    ShamPrescription,
)
from toolkit.study.randomization import RandomizationPlan, StratificationFactor
from toolkit.study.schedule import Schedule, Visit
from toolkit.study.tolerances import Tolerances

__all__ = [
    "ALGORITHM",
    "AllocationExistsError",
    "AllocationRows",
    "AnalysisPlan",
    "Arm",
    "Comparison",
    "Estimand",
    "EventStrategy",
    "ElectrodePair",
    "ElectroporationPrescription",
    "Eligibility",
    "Margin",
    "MicrocurrentPrescription",
    "Multiplicity",
    "PHOTO_QC_FLAGS",
    "PhotoEndpoint",
    "PhotoQC",
    "Placement",
    "PlannedAnalysis",
    "Population",
    "PrescriptionFigures",
    "RandomizationPlan",
    "SafetyEndpoint",
    "SafetyEnvelope",
    "Sensitivity",
    "ScaleEndpoint",
    "Schedule",
    "ShamPrescription",
    "StratificationFactor",
    "Study",
    "StudyIssue",
    "StudyValidationError",
    "Tolerances",
    "Violation",
    "Visit",
    "allocate",
    "generate_allocation",
    "load_study",
    "randomize",
    "read_allocation",
    "study_from_yaml",
    "write_allocation",
]
