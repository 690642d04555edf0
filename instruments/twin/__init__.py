"""The digital twin bench: simulated instruments over loopback TCP, sharing one physical model.

Contract used by the delivery layer and by tests::

    from instruments.twin import TwinBench

    with TwinBench(speed=100.0, seed=1) as twin:   # free ports; or TwinBench(ports={...})
        bench = twin.bench                         # a Bench whose resources point at the twin
        twin.clock.now(); twin.clock.advance(60)   # simulated time (faster than real time)
        twin.model.set_load("skin")                # 'dummy' (bench resistor) or 'skin'
        twin.lift_electrode(); twin.clear_faults() # fault injection
        twin.true_output_state(1)                  # the generator's TRUE output state

Instruments (roles): ``'stimulator'`` (Keysight 33500B twin, channel 1 feeds the amplifier and the load; the
bench's ``series_resistor_channel`` reaches the load through ``series_resistor_ohms`` instead),
``'scope'`` (Rigol DS1000Z twin, or Keysight InfiniiVision with ``scope_family='keysight'``),
``'current_source'`` (Keithley 6221 twin, driving the same load).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from instruments.bench import Bench, default_bench_path, load_bench
from instruments.twin.clock import SimClock
from instruments.twin.current_source import TwinCurrentSource
from instruments.twin.generator import TwinGenerator
from instruments.twin.physics import BenchModel, SkinParameters
from instruments.twin.scope import TwinScope
from instruments.twin.scpi import ScpiDevice
from instruments.twin.server import ScpiServer

__all__ = ["DEFAULT_PORTS", "BenchModel", "SimClock", "SkinParameters", "TwinBench"]

#: ports used by ``toolkit bench twin`` and ``instruments/benches/twin.yaml``
DEFAULT_PORTS: dict[str, int] = {"stimulator": 5025, "scope": 5026, "current_source": 5027}

_ROLES = ("stimulator", "scope", "current_source")


class TwinBench:
    """A complete simulated bench, served as SCPI over loopback TCP.

    Parameters
    ----------
    speed : float
        Simulated seconds per real second of :attr:`clock`.
    seed : int
        Seed of the scope noise: the same seed draws the same noise. The captures also follow the simulated time
        between commands, which runs with the real clock (``speed``): the skin recovers between bursts for as
        long as the host took, so two runs give identical captures only with identical timing.
    ports : dict, optional
        Port per role (``'stimulator'``, ``'scope'``, ``'current_source'``); missing roles or ``None``
        get free ports. :data:`DEFAULT_PORTS` are the ports of ``twin.yaml``.
    bench : Bench or path, optional
        Bench file whose amplifier, channel map, probes, shunt and dummy load the model uses
        (default: ``instruments/benches/twin.yaml``).
    scope_family : {'rigol', 'keysight'}
        Which oscilloscope the twin impersonates.
    """

    def __init__(self, speed: float = 1.0, seed: int = 0, ports: dict[str, int] | None = None,
                 bench: Bench | str | Path | None = None,
                 scope_family: Literal["rigol", "keysight"] = "rigol") -> None:
        if bench is None or isinstance(bench, str | Path):
            bench = load_bench(bench or default_bench_path("twin"))
        self._template = bench
        self.clock = SimClock(speed)
        ev, cur = bench.channels.electrode_voltage, bench.channels.current
        amp = bench.amplifier
        self.model = BenchModel(
            dummy_load_ohms=bench.dummy_load_ohms,
            amplifier_gain=amp.gain if amp else 1.0,
            amplifier_max_V=amp.max_output_V if amp else 1e9,
            amplifier_bandwidth_Hz=(amp.bandwidth_Hz or 200e3) if amp else 0.0,
            shunt_ohms=float(cur.shunt_ohms or 1.0),
            probe_attenuation={ev.channel: ev.probe_attenuation, cur.channel: cur.probe_attenuation},
        )
        self.scope_family = scope_family
        self.devices: dict[str, ScpiDevice] = {
            "stimulator": TwinGenerator(self.model, self.clock, series_channel=bench.series_resistor_channel
                                        if bench.series_resistor_ohms else None,
                                        series_ohms=float(bench.series_resistor_ohms or 0.0)),
            "scope": TwinScope(self.model, self.clock, family=scope_family, seed=seed,
                               signals={ev.channel: "electrode", cur.channel: "shunt"}),
            "current_source": TwinCurrentSource(self.model, self.clock),
        }
        wanted = dict(ports or {})
        self.servers: dict[str, ScpiServer] = {
            role: ScpiServer(self.devices[role], role, port=int(wanted.get(role) or 0)) for role in _ROLES
        }
        self._bench: Bench | None = None

    # ---- lifecycle
    def start(self) -> Bench:
        """Open the ports and return a :class:`Bench` whose resources point at them."""
        started: list[ScpiServer] = []
        try:
            for server in self.servers.values():
                server.start()
                started.append(server)
        except OSError as exc:
            for running in started:
                running.stop()
            from instruments.errors import ConnectionFailed

            raise ConnectionFailed(f"twin cannot listen on port {server.port} ({server.name}): {exc.strerror}",
                                   resource=server.resource) from None
        t = self._template
        scope_driver = "rigol_ds1000z" if self.scope_family == "rigol" else "keysight_infiniivision"
        scope_idn = "RIGOL.*DS1\\d\\d4Z" if self.scope_family == "rigol" else "KEYSIGHT.*DSOX"
        cs = t.current_source or t.stimulator
        self._bench = t.model_copy(update={
            "stimulator": t.stimulator.model_copy(update={"resource": self.resources["stimulator"]}),
            "scope": t.scope.model_copy(update={"resource": self.resources["scope"], "driver": scope_driver,
                                                "idn": scope_idn}),
            "current_source": cs.model_copy(update={
                "resource": self.resources["current_source"], "driver": "keithley6221",
                "idn": "KEITHLEY.*6221", "channel": 1}),
        })
        return self._bench

    def stop(self) -> None:
        """Close every port and connection."""
        for server in self.servers.values():
            server.stop()

    def __enter__(self) -> TwinBench:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def bench(self) -> Bench:
        """The bench pointing at the running twin (after :meth:`start`)."""
        if self._bench is None:
            raise RuntimeError("TwinBench.start() has not been called")
        return self._bench

    @property
    def resources(self) -> dict[str, str]:
        """VISA resource string per role."""
        return {role: server.resource for role, server in self.servers.items()}

    # ---- true state
    def true_output_state(self, channel: int = 1, instrument: str = "stimulator") -> bool:
        """The instrument's real output state, independent of any client."""
        dev = self._device(instrument)
        return bool(dev.output_state(channel))  # type: ignore[attr-defined]

    def delivering(self, channel: int = 1, instrument: str = "stimulator") -> bool:
        """True while a burst is being delivered on that output (in simulated time)."""
        return bool(self._device(instrument).delivering(channel))  # type: ignore[attr-defined]

    def any_output_on(self) -> bool:
        """True if any output of any stimulating instrument is on."""
        gen: TwinGenerator = self.devices["stimulator"]  # type: ignore[assignment]
        cs: TwinCurrentSource = self.devices["current_source"]  # type: ignore[assignment]
        return any(gen.output_state(c) for c in gen.ch) or cs.output_state()

    # ---- faults
    def _device(self, instrument: str) -> ScpiDevice:
        if instrument not in self.devices:
            raise ValueError(f"unknown twin instrument {instrument!r}; expected one of {', '.join(_ROLES)}")
        return self.devices[instrument]

    def _server(self, instrument: str) -> ScpiServer:
        self._device(instrument)
        return self.servers[instrument]

    def inject_timeout(self, instrument: str, enabled: bool = True) -> None:
        """Make an instrument stop answering queries (it still executes commands), or answer again."""
        ev = self._server(instrument).silent
        ev.set() if enabled else ev.clear()

    def drop_connection(self, instrument: str) -> None:
        """Close every client connection of an instrument (it keeps listening for new ones)."""
        self._server(instrument).drop_connections()

    def garble_next_reply(self, instrument: str,
                          mode: Literal["garbage", "truncate", "short_block"] = "garbage", *,
                          match: str | None = None) -> None:
        """Corrupt the instrument's next reply, or its next reply to a message containing ``match``
        (``'truncate'`` cuts a binary block short; ``'short_block'`` sends a well-formed block of half the
        samples; see :meth:`ScpiServer.garble_next_reply`)."""
        self._server(instrument).garble_next_reply(mode, match=match)

    def delay_replies(self, instrument: str, delay_s: float, *, match: str | None = None,
                      count: int | None = None, skip: int = 0):
        """Hold an instrument's replies back by ``delay_s`` real seconds (see :meth:`ScpiServer.delay_replies`)."""
        return self._server(instrument).delay_replies(delay_s, match=match, count=count, skip=skip)

    def push_error(self, instrument: str, code: int = -222, detail: str = "injected fault") -> None:
        """Put an error into the instrument's ``SYST:ERR?`` queue."""
        dev = self._device(instrument)
        with self.servers[instrument]._lock:
            dev.push_error(code, detail)

    def impedance_step(self, factor: float) -> None:
        """Multiply the skin impedance (``Rs`` and ``Rp``) by ``factor`` (e.g. drying gel: 3.0)."""
        if not factor > 0:
            raise ValueError(f"impedance factor must be > 0, got {factor!r}")
        self.model.impedance_factor = float(factor)

    def lift_electrode(self) -> None:
        """Open circuit: an electrode lifted off the skin."""
        self.model.contact_fault = "open"

    def short_electrodes(self) -> None:
        """Short circuit between the electrodes."""
        self.model.contact_fault = "short"

    def clear_faults(self) -> None:
        """Remove every injected fault (instruments answer, contact and impedance restored)."""
        for server in self.servers.values():
            server.clear_faults()
        self.model.contact_fault = None
        self.model.impedance_factor = 1.0
