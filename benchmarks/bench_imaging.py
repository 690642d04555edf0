"""Imaging benchmarks, each figure a ratio against a named peer measured in the same run.

1. Ridge filter: ``toolkit.imaging.ridge_response`` vs ``skimage.filters.frangi`` on the same 4000×3000
   image and scales (speed ratio, and the correlation of the two responses).
2. Landmarks (BlazeFace detection and two face-mesh passes) on a 12 MP and a 512 px photo, in ms per photo and
   against OpenCV's decode of the same 12 MP JPEG.
3. The completeness checks a photo file passes at ingest (structure walk, strict decode) and ``load_photo``,
   against OpenCV's decode of the same 12 MP JPEG.
4. ``analyze_photo`` of a 12 MP JPEG with its baseline on one core, against OpenCV's decode of the same file.
5. A batch of photos on 2 worker processes vs 1 (speed-up), beside the speed-up of an ideally parallel
   CPU-bound peer task on the same kind of pool (on a shared machine the peer shows what 2 cores gave).

Run: ``.venv/bin/python benchmarks/bench_imaging.py [--photos 200]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def _portrait_12mp() -> np.ndarray:
    from toolkit.imaging.synthetic import portrait

    img = portrait("grace_hopper")
    img = cv2.resize(img, (3413, 4000), interpolation=cv2.INTER_CUBIC)
    pad = np.repeat(img[:, :1], 3000, axis=1)
    pad[:, :3000] = img[:, 206:3206]
    return np.ascontiguousarray(pad[:, :3000])  # 4000 × 3000 = 12 MP


def _best_of(fn, repeat: int) -> tuple[object, float, float]:
    """Run ``fn`` ``repeat`` times; return its last result and the shortest wall and CPU times (s)."""
    wall, cpu, result = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return result, min(wall), min(cpu)


def bench_ridges(repeat: int = 3) -> None:
    from skimage.filters import frangi

    from toolkit.imaging.ridges import ridge_response

    gray = cv2.cvtColor(_portrait_12mp(), cv2.COLOR_RGB2GRAY).astype(np.float32).T.copy()  # 3000 × 4000
    # the same image as 4000 wide × 3000 high; scales above 1 px (skimage switches to very long kernels at σ ≤ 1)
    sigmas = (2, 4, 8)
    cv2.setNumThreads(1)
    small = np.ascontiguousarray(gray[:256, :256])
    ridge_response(small, sigmas), frangi(small, sigmas=sigmas)  # load and initialise both libraries
    ours, t_ours, c_ours = _best_of(lambda: ridge_response(gray, sigmas), repeat)
    # frangi takes tens of seconds: at most two runs
    ref, t_ref, c_ref = _best_of(lambda: frangi(gray, sigmas=sigmas), min(repeat, 2))
    r = float(np.corrcoef(np.asarray(ours).ravel(), np.asarray(ref).ravel())[0, 1])
    print(f"ridge filter, {gray.shape[1]}×{gray.shape[0]}, sigmas {sigmas}, 1 thread, best of {repeat} "
          f"(frangi {min(repeat, 2)}):")
    print(f"  toolkit ridge_response {t_ours:6.2f} s | skimage frangi {t_ref:6.2f} s | "
          f"speed-up {t_ref / t_ours:5.1f}× | correlation r = {r:.4f}")
    print(f"  CPU time {c_ours:6.2f} s | {c_ref:6.2f} s | speed-up {c_ref / c_ours:5.1f}× "
          "(CPU time: less sensitive to other jobs sharing the cores)")


def bench_landmarks(tmp: Path, repeat: int = 3) -> None:
    from toolkit.imaging.facemesh import detect_faces, fit_mesh
    from toolkit.imaging.synthetic import portrait

    path = tmp / "landmarks_12mp.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(_portrait_12mp(), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    cv2.setNumThreads(1)
    big = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    small = portrait("astronaut")  # 512 × 512

    def landmarks(image: np.ndarray) -> None:
        # what FaceMeshBackend does per photo: BlazeFace, then the mesh in two passes
        found = detect_faces(image)
        if len(found) != 1:
            raise RuntimeError(f"expected one face, found {len(found)}")
        fit_mesh(image, found[0], passes=2)

    n = 10 * repeat  # each run is short: more of them
    _, t_read, c_read = _best_of(lambda: cv2.imread(str(path), cv2.IMREAD_COLOR), repeat)
    print(f"landmarks (BlazeFace + two face-mesh passes), 1 thread, best of {n}:")
    for label, image in (("12 MP photo", big), ("512 px photo", small)):
        landmarks(image)  # load the networks
        _, t_lm, c_lm = _best_of(lambda image=image: landmarks(image), n)
        print(f"  {label:12s} {1000 * t_lm:5.1f} ms (CPU {1000 * c_lm:5.1f} ms) | cv2.imread of the 12 MP JPEG "
              f"{1000 * t_read:5.1f} ms | ratio {t_lm / t_read:4.2f}× one decode")


def bench_photo_check(tmp: Path, repeat: int = 3) -> None:
    from toolkit.imaging.file_checks import jpeg_problem
    from toolkit.imaging.photo_io import load_photo, verify_photo_file

    # sensor-like noise makes the file as large as a camera's (a smooth upscale compresses to a quarter)
    img = _portrait_12mp().astype(np.int16) + np.random.default_rng(0).normal(0, 3, (4000, 3000, 3)).astype(np.int16)
    path = tmp / "check_12mp.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 92])
    data = path.read_bytes()
    cv2.setNumThreads(1)
    _, t_read, _ = _best_of(lambda: cv2.imread(str(path), cv2.IMREAD_COLOR), repeat)
    _, t_walk, _ = _best_of(lambda: jpeg_problem(data), repeat)
    _, t_verify, _ = _best_of(lambda: verify_photo_file(path), repeat)
    _, t_load, _ = _best_of(lambda: load_photo(path), repeat)
    print(f"photo file checks, 12 MP JPEG of {len(data) / 1e6:.1f} MB, 1 thread, best of {repeat}:")
    print(f"  structure walk {1000 * t_walk:6.1f} ms | ingest check (walk + strict decode) {1000 * t_verify:6.1f} ms | "
          f"load_photo {1000 * t_load:6.1f} ms | cv2.imread {1000 * t_read:6.1f} ms | "
          f"ingest check {t_verify / t_read:4.2f}× one imread")


def bench_analyze(tmp: Path) -> None:
    from toolkit.imaging import analyze_photo
    from toolkit.imaging.synthetic import simulate_visit

    base = _portrait_12mp()
    follow, _ = simulate_visit(base, lift_mm=1.0, seed=3)
    bpath, fpath = tmp / "baseline_12mp.jpg", tmp / "visit_12mp.jpg"
    for p, im in ((bpath, base), (fpath, follow)):
        cv2.imwrite(str(p), cv2.cvtColor(im, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    cv2.setNumThreads(1)
    from toolkit.imaging import analysis

    analyze_photo(fpath, baseline=bpath)  # warm caches (cascades)
    decode, cold, warm = [], [], []
    for _ in range(3):
        for _ in range(5):  # the peer is short: more runs, so its best is not one caught by another job
            t0 = time.perf_counter()
            cv2.imread(str(fpath), cv2.IMREAD_COLOR)
            decode.append(time.perf_counter() - t0)
        analysis._BASELINE_CACHE.clear()  # the baseline is decoded and prepared again
        t0 = time.perf_counter()
        res = analyze_photo(fpath, baseline=bpath)
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()  # a second follow-up of the same subject in the same worker
        analyze_photo(fpath, baseline=bpath)
        warm.append(time.perf_counter() - t0)
    here, mapped = min(decode), _imread_premapped_s(fpath)
    d, a, w = min(here, mapped), min(cold), min(warm)
    print("analyze_photo, 12 MP JPEG with a 12 MP baseline, 1 thread, best of 3 (both decode the whole file at full "
          "size):")
    print(f"  cv2.imread of the same file: {here:5.3f} s in this process (best of 15), {mapped:5.3f} s into memory "
          "already mapped (best of 15): ratios use the faster")
    print("    (the peer's 36 MB result costs ~9000 page faults when the allocator hands it fresh pages, which "
          "depends on what ran before it)")
    print(f"  both decoded    {a:5.3f} s | ratio {a / d:4.1f}× one decode | QC {'pass' if res.qc.passed else res.qc.reasons}")
    print(f"  baseline cached {w:5.3f} s | ratio {w / d:4.1f}× one decode (the subject's next follow-up in this worker)")


def _imread_premapped_s(path: Path, runs: int = 15) -> float:
    """Best time of ``cv2.imread`` of ``path`` (1 thread) in a fresh process whose allocator keeps freed memory
    (glibc's mmap and trim thresholds raised): from the second run on, the decode writes into pages that are
    already mapped, so the figure is the decode itself, free of page faults."""
    import os
    import subprocess
    import sys

    code = ("import sys, time, cv2\ncv2.setNumThreads(1)\nbest = float('inf')\n"
            f"for _ in range({runs}):\n"
            "    t0 = time.perf_counter()\n    cv2.imread(sys.argv[1], cv2.IMREAD_COLOR)\n"
            "    best = min(best, time.perf_counter() - t0)\nprint(best)\n")
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 28), "MALLOC_TRIM_THRESHOLD_": str(1 << 29)}
    done = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def bench_batch(tmp: Path, n: int) -> None:
    from toolkit.imaging import BatchItem, analyze_batch
    from toolkit.imaging.synthetic import portrait, simulate_visit

    base = portrait("grace_hopper", long_side_px=1000)
    bpath = tmp / "b.jpg"
    cv2.imwrite(str(bpath), cv2.cvtColor(base, cv2.COLOR_RGB2BGR))
    paths = []
    for i in range(min(n, 20)):
        img, _ = simulate_visit(base, lift_mm=0.5 * (i % 3), seed=i, wrinkle_regions=())
        p = tmp / f"v{i:03d}.jpg"
        cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        paths.append(p)
    items = [BatchItem(str(paths[i % len(paths)]), str(bpath), key=i) for i in range(n)]
    times, cpu = {}, {}
    for workers in (1, 2):
        c0 = _children_cpu_s()
        t0 = time.perf_counter()
        res = analyze_batch(items, executor="processes", workers=workers, progress=False)
        times[workers] = time.perf_counter() - t0
        cpu[workers] = _children_cpu_s() - c0  # the pool's workers have exited and been reaped
        if len(res) != n:
            raise RuntimeError(f"batch returned {len(res)} results for {n} photos")
    # peer: the same pool machinery running a perfectly parallel CPU-bound task of similar length, so a
    # machine shared with other jobs shows up as a low peer speed-up rather than as a fault of the batch
    peer = {w: _peer_run(w, n_tasks=40) for w in (1, 2)}
    print(f"batch of {n} photos (1000 px, with baseline), local processes:")
    print(f"  1 worker {times[1]:6.1f} s | 2 workers {times[2]:6.1f} s | speed-up {times[1] / times[2]:4.2f}× "
          f"| worker CPU {cpu[1] / n:5.2f} / {cpu[2] / n:5.2f} s per photo")
    print(f"  peer (ideal parallel CPU task, same pool): speed-up {peer[1] / peer[2]:4.2f}× | batch reaches "
          f"{(times[1] / times[2]) / (peer[1] / peer[2]):4.0%} of the peer's speed-up")


def _children_cpu_s() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _burn(seed: int) -> float:
    # ≈ 0.3 s of single-threaded arithmetic, no memory traffic to speak of
    x = float(seed)
    for i in range(3_000_000):
        x = (x * 1.000001 + i) % 1000.0
    return x


def _peer_run(workers: int, *, n_tasks: int) -> float:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(_burn, range(n_tasks)))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=200, help="photos in the batch benchmark")
    ap.add_argument("--only", choices=("ridges", "landmarks", "check", "analyze", "batch"), help="run one benchmark")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (the best is kept)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.only in (None, "ridges"):
            bench_ridges(args.repeat)
        if args.only in (None, "landmarks"):
            bench_landmarks(tmp, args.repeat)
        if args.only in (None, "check"):
            bench_photo_check(tmp, args.repeat)
        if args.only in (None, "analyze"):
            bench_analyze(tmp)
        if args.only in (None, "batch"):
            bench_batch(tmp, args.photos)


if __name__ == "__main__":
    main()
