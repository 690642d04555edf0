"""Whether an arm can be delivered on a bench: the one check ``toolkit deliver`` and ``study validate --bench`` share.

An arm is deliverable when its prescription is inside the study's safety envelope and maps onto the bench
(:func:`toolkit.delivery.plan.make_plan`: instruments, amplifier, series resistor, generator memory, scope
speed). Both the session runner and the study validation call :func:`plan_arm`, so what validates delivers
and what is refused is refused the same way, with the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolkit.delivery.plan import TreatmentPlan, make_plan
from toolkit.delivery.settings import DeliverySettings
from toolkit.errors import CheckFailed, ConfigurationError

__all__ = ["ArmDeliverability", "SafetyRefusal", "check_deliverable", "plan_arm"]


class SafetyRefusal(CheckFailed):
    """A prescription is outside the study's safety envelope; nothing was sent or recorded."""


def plan_arm(study: Any, arm_id: str, bench: Any, settings: DeliverySettings | None = None, *,
             side: str | None = None) -> TreatmentPlan:
    """The plan of one arm of ``study`` on ``bench``.

    Raises
    ------
    SafetyRefusal
        The prescription breaks the study's safety envelope (every violation in ``details``).
    ConfigurationError
        The bench cannot deliver it as prescribed (the message names the field and the limit).
    """
    settings = settings or DeliverySettings()
    rx = study.arm(arm_id).prescription
    violations = study.envelope.check(rx)
    if violations:
        raise SafetyRefusal(f"arm {arm_id} prescription is outside the safety envelope of study {study.id}; "
                            "nothing was sent", details=[str(v) for v in violations])
    mimic = None
    if rx.modality == "sham" and getattr(rx, "mimics", None):
        try:
            mimic = study.arm(rx.mimics).prescription
        except KeyError:
            mimic = None
    return make_plan(rx, arm_id=arm_id, side=side, bench=bench, settings=settings, tolerances=study.tolerances,
                     envelope=study.envelope, mimic_prescription=mimic)


@dataclass(frozen=True)
class ArmDeliverability:
    """One arm on one bench: deliverable, or why not."""

    arm_id: str
    modality: str
    deliverable: bool
    #: the refusal (empty when deliverable)
    problem: str
    #: what the bench will do: instrument, channel, bursts, scope views (empty when refused)
    summary: dict[str, Any]


def check_deliverable(study: Any, bench: Any, settings: DeliverySettings | None = None) -> list[ArmDeliverability]:
    """Every arm of ``study`` mapped onto ``bench`` (see :func:`plan_arm`)."""
    out = []
    for arm in study.arms:
        try:
            plan = plan_arm(study, arm.id, bench, settings)
        except (SafetyRefusal, ConfigurationError) as exc:
            out.append(ArmDeliverability(arm.id, arm.modality, False, str(exc), {}))
            continue
        views = {k: v for k, v in plan.scope.items() if k.endswith(("_points", "_interval_s"))}
        out.append(ArmDeliverability(arm.id, arm.modality, True, "", {
            "instrument": plan.role or "none (sham)", "channel": plan.channel, "bursts": plan.bursts,
            "burst_s": plan.burst_on_s, "interval_s": plan.trigger_interval_s,
            "pulses_per_burst": plan.pulses_per_burst, "mimics": plan.settings.get("mimics"),
            **({"polarity": plan.settings["polarity"]} if "polarity" in plan.settings else {}), **views,
        }))
    return out
