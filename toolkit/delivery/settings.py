"""Knobs of a delivery session that are not part of the prescription."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["DeliverySettings"]


@dataclass(frozen=True)
class DeliverySettings:
    """How a session is run (the prescription says *what* is delivered).

    Parameters
    ----------
    burst_interval_s : float
        Time between re-triggered bursts; a host that stops triggering stops stimulation within this time.
        At most ``max_burst_interval_s``. A microcurrent whose polarity reverses within each burst plays one
        whole polarity period per burst, up to ``max_burst_interval_s``
        (:mod:`toolkit.delivery.alternating`).
    capture_every_s : float
        Session time between live scope captures (each is measured, checked and stored).
    ramp_steps : int
        Amplitude steps of each ramp (up and down).
    consecutive_breaks : int
        Consecutive live captures that must break the same rule before the session aborts.
    off_retry_s : float
        Wall-time budget to switch the output off (with reconnects) before the state is "unknown".
    io_timeout_s : float
        Instrument I/O timeout.
    verify_bursts : int
        Bursts delivered into the dummy load for verification.
    max_burst_interval_s : float
        Hard upper bound of ``burst_interval_s`` (the dead-host stop time).
    store_live_captures : bool
        Store every live capture (raw data) — on by default; the verification captures are always stored.
    trigger_margin_s : float
        Time added after a burst has certainly ended before the next one starts or the output changes: the
        instrument's own start latency and clock-rate difference (the host's latency is measured, not guessed).
    max_extension_rel, max_extension_s : float
        How far a session that fell behind (slow replies) may run past its prescribed duration to deliver
        every burst: ``duration × max_extension_rel + max_extension_s``. Beyond it the rest is not delivered
        and the record says "under-delivered" with the dose actually given.
    """

    burst_interval_s: float = 1.0
    capture_every_s: float = 60.0
    ramp_steps: int = 5
    consecutive_breaks: int = 2
    off_retry_s: float = 10.0
    io_timeout_s: float = 2.0
    verify_bursts: int = 1
    max_burst_interval_s: float = 2.0
    store_live_captures: bool = True
    trigger_margin_s: float = 0.002
    max_extension_rel: float = 0.1
    max_extension_s: float = 10.0

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.burst_interval_s <= self.max_burst_interval_s:
            problems.append(
                f"burst_interval_s must be in (0, {self.max_burst_interval_s}] s, got {self.burst_interval_s}"
            )
        if self.max_burst_interval_s > 2.0:
            problems.append("max_burst_interval_s may not exceed 2 s (a dead host must stop within 2 s)")
        if self.capture_every_s <= 0:
            problems.append(f"capture_every_s must be positive, got {self.capture_every_s}")
        if self.ramp_steps < 1:
            problems.append(f"ramp_steps must be at least 1, got {self.ramp_steps}")
        if self.consecutive_breaks < 1:
            problems.append(f"consecutive_breaks must be at least 1, got {self.consecutive_breaks}")
        if self.off_retry_s < 0 or self.io_timeout_s <= 0:
            problems.append("off_retry_s must be >= 0 and io_timeout_s > 0")
        if self.verify_bursts < 1:
            problems.append("verify_bursts must be at least 1")
        if not 0 <= self.trigger_margin_s <= 0.5:
            problems.append(f"trigger_margin_s must be in [0, 0.5] s, got {self.trigger_margin_s}")
        if self.max_extension_rel < 0 or self.max_extension_s < 0:
            problems.append("max_extension_rel and max_extension_s must be >= 0")
        if problems:
            from toolkit.errors import ConfigurationError

            raise ConfigurationError("invalid delivery settings", details=problems)

    def as_dict(self) -> dict[str, object]:
        """Plain dictionary for the record."""
        return asdict(self)
