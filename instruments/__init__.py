"""Bench instruments: stimulator and oscilloscope drivers over PyVISA, the digital twin, waveform measures.

This package knows SCPI and electricity, and nothing about studies, subjects or databases.

Public surface (import from the submodules; nothing heavy is imported by ``import instruments``):

- :mod:`instruments.base` — the vendor-neutral interfaces ``Stimulator``, ``Oscilloscope``, ``ScopeChannel``
  and the ``Trace`` type.
- :mod:`instruments.bench` — bench files: ``load_bench(path) -> Bench``,
  ``connect_bench(bench, *, timeout_s=2.0) -> ConnectedBench`` (context manager; ``.stimulator``, ``.scope``,
  ``.current_source``, ``.bench``, ``.generator_amplitude_for(electrode_V)``).
- :mod:`instruments.drivers` — Keysight 33500B, Rigol DG1000Z, Keithley 6221, Rigol DS1000Z, Keysight
  InfiniiVision, Tektronix MSO, on PyMeasure, behind one safety layer (validate → send → ``*OPC?`` → read back
  → error queue; outputs off on close, at exit and on SIGINT/SIGTERM; one lock per instrument).
- :mod:`instruments.twin` — ``TwinBench``: simulated instruments over loopback TCP sharing one physical model,
  with a fast simulated clock and fault injection.
- :mod:`instruments.measures` — ``measure_pair(voltage, current) -> WaveformMeasures``.
- :mod:`instruments.check` — ``run_bench_check(bench)`` behind ``toolkit bench check``.
- :mod:`instruments.waveform` — IEEE-488.2 blocks and each scope family's preamble scaling.
- :mod:`instruments.protocol` — recording/replaying adapters for protocol tests.
- :mod:`instruments.errors` — ``InstrumentError`` and its subclasses.
"""

__all__ = ["base", "bench", "check", "drivers", "errors", "measures", "protocol", "twin", "waveform"]
