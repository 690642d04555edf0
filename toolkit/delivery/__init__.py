"""Treatment sessions on the bench: configure, verify, deliver, record — output safe on every path.

>>> from toolkit.delivery import run_session                                   # doctest: +SKIP
>>> record = run_session("studies/epmc-demo", "S-001", 3)                       # doctest: +SKIP
>>> record.outcome, record.dose.charge_C                                        # doctest: +SKIP

See :func:`run_session` for the steps and :mod:`toolkit.delivery.runner` for the guarantees.
"""

from toolkit.delivery.abort import Abort, AbortReason, AbortRules, SessionAborted
from toolkit.delivery.clock import Clock, PacedClock, SimulatedClock, WallClock
from toolkit.delivery.dose import Dose, DoseAccumulator
from toolkit.delivery.eligibility import NotEligible
from toolkit.delivery.operator import ConfirmRequest, PromptOperator, TwinOperator
from toolkit.delivery.progress import NotebookProgress, ProgressEvent, RichProgress
from toolkit.delivery.record import DeliveryRecord, TreatmentResult
from toolkit.delivery.runner import SafetyRefusal, run_session, start_twin_for
from toolkit.delivery.settings import DeliverySettings
from toolkit.delivery.state import SessionState
from toolkit.delivery.stop import StopToken, sigint_stops

__all__ = [
    "Abort",
    "AbortReason",
    "AbortRules",
    "Clock",
    "ConfirmRequest",
    "DeliveryRecord",
    "DeliverySettings",
    "Dose",
    "DoseAccumulator",
    "NotEligible",
    "NotebookProgress",
    "PacedClock",
    "ProgressEvent",
    "PromptOperator",
    "RichProgress",
    "SafetyRefusal",
    "SessionAborted",
    "SessionState",
    "SimulatedClock",
    "StopToken",
    "TreatmentResult",
    "TwinOperator",
    "WallClock",
    "run_session",
    "sigint_stops",
    "start_twin_for",
]
