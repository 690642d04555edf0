"""Benchmarks of the instruments room; figures are printed as ratios against a named peer in the same run.

1. Decode + scale + measure a 1,000,000-point two-channel capture (IEEE blocks, Rigol preamble scaling,
   ``measure_pair``) vs ``numpy.frombuffer`` of the same bytes (the floor: no copy, no arithmetic).
2. ``*IDN?`` round trip to the twin over loopback through pyvisa-py: our thread-safe driver vs a bare
   ``pyvisa`` ``query``.
3. A 1,000,000-point two-channel capture read from the twin scope over TCP (``capture``: four 250 000-point
   windows per channel, decoded and scaled) vs bare ``pyvisa.query_binary_values`` of the same windows.

Run: ``.venv/bin/python benchmarks/bench_instruments.py``
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

import numpy as np


def _median_ms(fn, repeat: int) -> float:
    return _timings_ms(fn, repeat)[0]


def _timings_ms(fn, repeat: int) -> tuple[float, float, float]:
    """(median wall, best wall, median CPU) in ms; CPU time shows the cost when other jobs share the cores."""
    wall, cpu = [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def bench_decode(n: int = 1_000_000) -> None:
    from instruments.base import Trace
    from instruments.measures import measure_pair
    from instruments.waveform import parse_block, parse_preamble, sample_times, scale_samples

    rng = np.random.default_rng(0)
    k = np.arange(n)
    on = ((k + 5_000) % 10_000) < 1_000  # 100 pulses of 10 % duty, the first starting at sample 5000
    v_raw = np.clip(np.rint(np.where(on, 227, 127) + rng.normal(0, 1, n)), 0, 255).astype(np.uint8)
    i_raw = np.clip(np.rint(np.where(on, 177, 127) + rng.normal(0, 1, n)), 0, 255).astype(np.uint8)
    header = f"#9{n:09d}".encode()
    blocks = [header + v_raw.tobytes() + b"\n", header + i_raw.tobytes() + b"\n"]
    pre_v = parse_preamble(f"0,0,{n},1,1.0e-08,-5.0e-03,0,8.0e-01,0,127", "rigol")
    pre_i = parse_preamble(f"0,0,{n},1,1.0e-08,-5.0e-03,0,4.0e-03,0,127", "rigol")

    def ours() -> None:
        traces = []
        for block, pre, unit, shunt in ((blocks[0], pre_v, "V", 1.0), (blocks[1], pre_i, "A", 10.0)):
            values = scale_samples(parse_block(block), pre)
            if shunt != 1.0:
                values /= shunt
            traces.append(Trace(sample_times(pre), values, unit, 1, datetime.now(UTC), pre.as_dict()))
        m = measure_pair(traces[0], traces[1])
        if m.pulses != 100:
            raise RuntimeError(f"benchmark waveform measured {m.pulses} pulses, expected 100")

    def peer() -> None:
        for block in blocks:
            np.frombuffer(block, dtype=np.uint8, count=n, offset=11)

    ours()
    t_ours, best, cpu = _timings_ms(ours, 21)
    t_peer = _median_ms(peer, 21)
    verdict = "within" if t_ours <= 50 else "ABOVE"
    print(f"decode+scale+measure 2 x {n:,} points: median {t_ours:.1f} ms ({verdict} the 50 ms budget), "
          f"best {best:.1f} ms, CPU {cpu:.1f} ms; numpy.frombuffer of the same bytes: {t_peer:.4f} ms; "
          f"ratio {t_ours / t_peer:,.0f}x")


def bench_twin_io() -> None:
    import pyvisa

    from instruments.bench import connect_bench
    from instruments.twin import TwinBench

    with TwinBench(seed=1) as twin, connect_bench(twin.bench) as cb:
        rm = pyvisa.ResourceManager("@py")
        raw = rm.open_resource(twin.resources["stimulator"], read_termination="\n", write_termination="\n",
                               timeout=2000)
        for _ in range(20):
            cb.stimulator.identify()
            raw.query("*IDN?")
        t_ours = _median_ms(cb.stimulator.identify, 300)
        t_peer = _median_ms(lambda: raw.query("*IDN?"), 300)
        raw.close()
        print(f"*IDN? round trip to the twin (pyvisa-py, loopback): driver {t_ours:.3f} ms median; "
              f"bare pyvisa query {t_peer:.3f} ms; ratio {t_ours / t_peer:.2f}x")

        n = 1_000_000
        chans = twin.bench.scope_channels(electrode_V=20.0, current_A=0.02)
        cb.stimulator.configure_pulse_train(1, amplitude_V=1.0, pulse_width_s=1e-3, frequency_Hz=100,
                                            pulses_per_burst=3, limit_V=1.2)
        cb.scope.configure(timebase_s_per_div=2.5e-3, channels=chans, record_points=n, position_s=12e-3)
        cb.stimulator.arm(1)
        cb.stimulator.output_on(1)
        cb.scope.single()
        cb.stimulator.trigger()
        cb.scope.wait_acquired()
        cb.stimulator.output_off(1)
        scope_raw = rm.open_resource(twin.resources["scope"], read_termination="\n", write_termination="\n",
                                     timeout=20000)

        def peer_capture() -> None:
            # the same exchange as the driver: preamble, then four windows of at most 250 000 points
            for ch in (1, 2):
                scope_raw.write(f":WAV:SOUR CHAN{ch}")
                scope_raw.query(":WAV:PRE?")
                for start in range(1, n + 1, 250_000):
                    scope_raw.write(f":WAV:STAR {start}")
                    scope_raw.write(f":WAV:STOP {min(start + 249_999, n)}")
                    scope_raw.query_binary_values(":WAV:DATA?", datatype="B", header_fmt="ieee",
                                                  container=np.array)
                scope_raw.write(":WAV:STAR 1")

        t_cap = _median_ms(lambda: cb.scope.capture((1, 2)), 3)
        t_cap_peer = _median_ms(peer_capture, 3)
        scope_raw.close()
        print(f"capture 2 x {n:,} points from the twin scope over TCP (includes the twin rendering them): "
              f"driver {t_cap:.0f} ms; bare pyvisa query_binary_values {t_cap_peer:.0f} ms; "
              f"ratio {t_cap / t_cap_peer:.2f}x")


if __name__ == "__main__":
    bench_decode()
    bench_twin_io()
