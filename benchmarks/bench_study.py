"""Study room figures, each as a ratio against a named peer measured in the same run.

1. ``load_study`` (parse + node marks + full validation) vs PyYAML ``safe_load`` of the same file.
2. ``SafetyEnvelope.check`` of a prescription vs pydantic ``model_validate`` of the same prescription.
3. ``generate_allocation`` (stratified permuted blocks, NumPy PCG64) vs a plain-Python permuted-block
   generator using ``random.shuffle`` (Mersenne Twister) for the same number of subjects.

Run: ``.venv/bin/python benchmarks/bench_study.py``
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import yaml

from toolkit.study import MicrocurrentPrescription, generate_allocation, load_study

DEMO = Path(__file__).resolve().parent.parent / "studies" / "epmc-demo"


def best_of(fn, repeat: int = 5, number: int = 20) -> float:
    """Seconds per call: the best of ``repeat`` rounds of ``number`` calls."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def naive_blocks(n: int, arms: list[str], sizes: list[int], strata: int, seed: int) -> list[tuple[int, str]]:
    rng = random.Random(seed)
    rows = []
    per = -(-n // strata)
    for stratum in range(strata):
        count = 0
        while count < per:
            size = rng.choice(sizes)
            block = arms * (size // len(arms))
            rng.shuffle(block)
            rows += [(stratum, arm) for arm in block]
            count += size
    return rows


def main() -> None:
    text = (DEMO / "study.yaml").read_text()
    t_load = best_of(lambda: load_study(DEMO))
    t_yaml = best_of(lambda: yaml.safe_load(text))
    print(f"load_study(epmc-demo): {t_load * 1e3:.2f} ms; PyYAML safe_load alone: {t_yaml * 1e3:.2f} ms; "
          f"ratio {t_load / t_yaml:.2f}x (full validation + line marks over parsing)")

    study = load_study(DEMO)
    rx = study.arm("MC").prescription
    raw = rx.model_dump()
    t_check = best_of(lambda: study.envelope.check(rx), number=2000)
    t_validate = best_of(lambda: MicrocurrentPrescription.model_validate(raw), number=2000)
    print(f"SafetyEnvelope.check: {t_check * 1e6:.1f} µs; pydantic model_validate of the prescription: "
          f"{t_validate * 1e6:.1f} µs; ratio {t_check / t_validate:.2f}x")

    n = 10_000
    t_alloc = best_of(lambda: generate_allocation(study, n), repeat=3, number=3)
    t_naive = best_of(lambda: naive_blocks(n, ["EP", "MC", "SHAM"], [3, 6], 2, 1), repeat=3, number=3)
    print(f"generate_allocation({n} subjects): {t_alloc * 1e3:.1f} ms; stdlib random.shuffle blocks: "
          f"{t_naive * 1e3:.1f} ms; ratio {t_alloc / t_naive:.2f}x")


if __name__ == "__main__":
    main()
