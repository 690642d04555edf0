"""From a prescription to instrument settings: what each burst is and what the scope should see.

A :class:`TreatmentPlan` is built once per treatment, before anything is sent: the prescription (already
inside the study's safety envelope) is mapped onto the bench — the current source or the generator through
its series resistor for microcurrent (:mod:`toolkit.delivery.plan_microcurrent`), the generator through the
amplifier's gain for electroporation (:mod:`toolkit.delivery.plan_electroporation`) — and split into finite,
re-triggered bursts of at most ``max_burst_interval_s`` so a dead host stops stimulation within one burst.
Anything the bench cannot deliver exactly as prescribed is refused here with a
:class:`~toolkit.errors.ConfigurationError` naming the prescription field and the bench.
"""

from __future__ import annotations

from typing import Any

from toolkit.delivery.plan_electroporation import ep_plan
from toolkit.delivery.plan_microcurrent import mc_plan
from toolkit.delivery.plan_model import ExpectedSignal, TreatmentPlan
from toolkit.delivery.settings import DeliverySettings
from toolkit.delivery.views import scope_timebase
from toolkit.errors import ConfigurationError

__all__ = ["ExpectedSignal", "TreatmentPlan", "make_plan", "scope_timebase"]


def _sham_plan(rx: Any, arm_id: str, side: str | None, bench: Any, settings: DeliverySettings,
               mimic: TreatmentPlan | None) -> TreatmentPlan:
    # a sham follows the handling of the arm it imitates (same role, channel and burst rhythm), sending nothing
    role = mimic.role if mimic else "stimulator"
    channel = mimic.channel if mimic else bench.stimulator.channel
    interval = mimic.trigger_interval_s if mimic else settings.burst_interval_s
    return TreatmentPlan(
        modality="sham",
        arm_id=arm_id,
        side=side,
        role=role,
        channel=channel,
        duration_s=rx.duration_s,
        ramp_up_s=0.0,
        ramp_down_s=0.0,
        trigger_interval_s=interval,
        burst_on_s=0.0,
        pulses_per_burst=0,
        flip_every_bursts=None,
        settings={"output": "never enabled", "mimics": getattr(rx, "mimics", None)},
        expected_dummy=ExpectedSignal(),
        expected_live=ExpectedSignal(),
        scope={},
    )


def make_plan(
    prescription: Any,
    *,
    arm_id: str,
    side: str | None,
    bench: Any,
    settings: DeliverySettings,
    tolerances: Any,
    envelope: Any,
    mimic_prescription: Any = None,
) -> TreatmentPlan:
    """Map one prescription onto a bench.

    Parameters
    ----------
    prescription : MicrocurrentPrescription, ElectroporationPrescription or ShamPrescription
        Already checked against the safety envelope.
    arm_id, side : str
        Arm id and treated side (``None`` for a parallel design).
    bench : instruments.bench.Bench
        The bench configuration (amplifier gain, channels, dummy load).
    settings : DeliverySettings
        Burst interval, capture cadence.
    tolerances : study tolerances
        ``impedance_ohm_max`` sets the current source's compliance.
    envelope : SafetyEnvelope
        Sets the generator's instrument-side voltage clamp.
    mimic_prescription : prescription, optional
        For a sham: the active prescription whose handling it imitates.

    Returns
    -------
    TreatmentPlan

    Raises
    ------
    ConfigurationError
        If the bench cannot deliver the prescription exactly.
    """
    modality = prescription.modality
    if modality == "microcurrent":
        return mc_plan(prescription, arm_id, side, bench, settings, tolerances)
    if modality == "electroporation":
        return ep_plan(prescription, arm_id, side, bench, settings, envelope)
    if modality == "sham":
        mimic = None
        if mimic_prescription is not None and mimic_prescription.modality != "sham":
            try:
                mimic = make_plan(mimic_prescription, arm_id=arm_id, side=side, bench=bench, settings=settings,
                                  tolerances=tolerances, envelope=envelope)
            except ConfigurationError:
                mimic = None
        return _sham_plan(prescription, arm_id, side, bench, settings, mimic)
    raise ConfigurationError(
        f"arm {arm_id!r}: unknown modality {modality!r}; accepted: microcurrent, electroporation, sham"
    )
