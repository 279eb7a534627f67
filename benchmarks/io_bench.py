"""I/O benchmark: FeatureStore vs a plain kaldiio loop, memmap cache build, reuse-open.

Measures, in one run (each measurement in a fresh child process so peak RSS is its own):

1. read a ``--size-gb`` ark into memory: ``dict(kaldiio.load_ark(path))`` (reference) vs
   ``FeatureStore.from_rspecifier`` (target: within 1.3x of the reference time);
2. build the ONE-file memmap cache of a ``--big-size-gb`` ark: time and peak RSS
   (target: peak RSS under 500 MB for a 4 GB ark);
3. reopen that cache with ``reuse=True``: time.

The page cache is warmed before every timed read so that both sides read from memory.

    python benchmarks/io_bench.py --size-gb 1 --big-size-gb 4 --workdir /tmp/io_bench
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys

def peak_rss_mb():
    # VmHWM is reset by exec; ru_maxrss would still hold the parent's peak at fork time
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) / 1024

import time
import numpy as np
mode, path, extra = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
if mode == "kaldiio":
    import kaldiio
    feats = dict(kaldiio.load_ark(path))
    frames = sum(len(m) for m in feats.values())
elif mode == "store":
    from unspeech.feature_store import FeatureStore
    s = FeatureStore.from_rspecifier(path)
    frames = s.num_frames
elif mode in ("memmap", "reuse"):
    from unspeech.feature_store import FeatureStore
    s = FeatureStore.from_rspecifier(path, memmap_dir=extra, reuse=(mode == "reuse"))
    frames = s.num_frames
    float(s.data[-1].sum())  # touch the last frame
dt = time.perf_counter() - t0
rss_mb = peak_rss_mb()
print(json.dumps({"seconds": dt, "frames": int(frames), "peak_rss_mb": rss_mb}))
"""


def make_ark(path: Path, size_gb: float, frames: int = 1000, dim: int = 40, seed: int = 0) -> int:
    """Write a float32 ark of about ``size_gb`` GB (utterances of ``frames`` x ``dim``)."""
    rng = np.random.default_rng(seed)
    block = rng.standard_normal((frames, dim)).astype("<f4")
    header = b"\0BFM \x04" + struct.pack("<i", frames) + b"\x04" + struct.pack("<i", dim)
    per_utt = len(header) + block.nbytes
    n = max(1, int(size_gb * 1e9 / per_utt))
    with open(path, "wb", buffering=1 << 24) as fh:
        for i in range(n):
            block[0, 0] = i  # make utterances differ
            fh.write(f"spk{i % 100:03d}-utt{i:07d} ".encode() + header + block.tobytes())
    return n


def warm(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


def run_child(mode: str, path: Path, extra: str = "-") -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path), extra], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-gb", type=float, default=1.0, help="ark size for the read comparison")
    p.add_argument("--big-size-gb", type=float, default=4.0, help="ark size for the memmap build")
    p.add_argument("--repeats", type=int, default=2, help="timed repeats of the read comparison (best is kept)")
    p.add_argument("--workdir", default=None, help="scratch folder (default: a temp dir, removed after)")
    args = p.parse_args(argv)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="io_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        ark = work / "read.ark"
        n = make_ark(ark, args.size_gb)
        size = ark.stat().st_size / 1e9
        print(f"read test: {ark} {size:.2f} GB, {n} utterances of 1000 x 40")
        best = {}
        for mode in ("kaldiio", "store") * args.repeats:
            warm(ark)
            r = run_child(mode, ark)
            if mode not in best or r["seconds"] < best[mode]["seconds"]:
                best[mode] = r
        ratio = best["store"]["seconds"] / best["kaldiio"]["seconds"]
        for mode, r in best.items():
            print(f"  {mode:8s} {r['seconds']:7.2f} s  {size / r['seconds']:6.2f} GB/s  peak RSS {r['peak_rss_mb']:7.0f} MB")
        print(f"  store / kaldiio time ratio: {ratio:.2f} (target <= 1.3)")
        ark.unlink()

        big = work / "big.ark"
        n = make_ark(big, args.big_size_gb)
        size = big.stat().st_size / 1e9
        cache = work / "cache"
        warm(big)
        build = run_child("memmap", big, str(cache))
        reuse = run_child("reuse", big, str(cache))
        print(f"memmap test: {big} {size:.2f} GB, {n} utterances")
        print(f"  build    {build['seconds']:7.2f} s  {size / build['seconds']:6.2f} GB/s  peak RSS {build['peak_rss_mb']:7.0f} MB (target < 500 MB)")
        print(f"  reuse    {reuse['seconds']:7.3f} s  peak RSS {reuse['peak_rss_mb']:7.0f} MB")
        print(f"  cache files: {sorted(f.name for f in cache.iterdir())}")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
