#!/usr/bin/env python3
"""Inference speed and install size: ONNX Runtime (the default install) against TensorFlow.

Prints, from one run on this machine:

1. **Throughput** of the embedding towers, windows per second, ONNX Runtime vs TensorFlow
   (Keras) on the same random windows in batches of 256 (gen-feat's and the diarizer's batch
   size): the bundled model (BaselineDnn W=32) and Vgg16big with W=64 (random weights; speed does
   not depend on them); also the bundled model's opt-in int8 file (``--runtime onnx-int8``).
   Target ratio >= 2x, stretch 5x.
2. **Whole-command wall time** of ``unspeech diarize`` (a fresh process: imports, model load,
   audio, everything) on a 30 s recording, default runtime vs ``--runtime keras``; target <= 2 s.
   With ``--hour``, also on a one-hour recording (the demo conversations repeated).
3. **Installed size** of the default install vs with the ``train`` extra: the files of every
   distribution in each dependency closure, as installed in this environment (this venv must
   have the train extra, as ``make install`` gives).

Usage::

    python benchmarks/inference_bench.py [--hour] [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "unspeech" / "models" / "unspeech_dnn_w32_libri200"


def _throughput(towers, windows: np.ndarray, repeats: int, batch: int = 256) -> float:
    """Best windows/s over ``repeats`` passes (the first call, which traces / warms up, not timed)."""
    towers.embed(windows[:batch])
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for start in range(0, len(windows), batch):
            towers.embed(windows[start:start + batch])
        best = max(best, len(windows) / (time.perf_counter() - t0))
    return best


def _vgg_run(tmp: Path) -> Path:
    from unspeech.context import ContextConfig
    from unspeech.context.onnx_export import export_onnx
    from unspeech.context.rundir import init_run

    run = tmp / "vgg16big_w64"
    init_run(ContextConfig(embedding_transformation="Vgg16big", window_length=64, window_neg_length=64, feat_size=40,
                           fc_size=512, embedding_size=100, batch_normalization=True), run, seed=0)
    export_onnx(run)
    return run


def bench_throughput(repeats: int) -> list[tuple[str, float, float, float | None]]:
    """(name, ONNX float32, TensorFlow, ONNX int8 or None) windows/s."""
    from unspeech.context.towers import INT8_NAME, load_towers

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, run, n in (("bundled BaselineDnn W=32", BUNDLED, 20000), ("Vgg16big W=64", _vgg_run(Path(tmp)), 1024)):
            onnx = load_towers(run, runtime="onnx", batch_size=256)
            keras = load_towers(run, runtime="keras", batch_size=256)
            int8 = load_towers(run, runtime="onnx-int8") if (Path(run) / INT8_NAME).is_file() else None
            c = onnx.config
            windows = np.random.default_rng(0).normal(0.0, 1.0, (n, c.window_length, c.feat_size)).astype(np.float32)
            np.testing.assert_allclose(onnx.embed(windows[:64]), keras.embed(windows[:64]), atol=1e-4, rtol=0)
            rows.append((name, _throughput(onnx, windows, repeats), _throughput(keras, windows, repeats),
                         None if int8 is None else _throughput(int8, windows, repeats)))
    return rows


def _clip(path: Path, seconds: float) -> None:
    import soundfile as sf

    audio, rate = [], 16000
    for flac in sorted((REPO / "data" / "demo_conversations" / "wav").glob("*.flac")):
        x, rate = sf.read(flac, dtype="float32")
        audio.append(x)
    joined = np.concatenate(audio)
    reps = int(np.ceil(seconds * rate / len(joined)))
    sf.write(path, np.tile(joined, reps)[: int(seconds * rate)], rate, subtype="PCM_16")


def _diarize_wall(wav: Path, out: Path, extra: list[str]) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "unspeech.cli", "diarize", str(wav), "-o", str(out), "--quiet", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=out.parent,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"diarize failed: {proc.stderr[-2000:]}")
    return wall, (out / f"{wav.stem}.rttm").read_text()


def bench_diarize(hour: bool, repeats: int) -> list[tuple[str, float, float, bool]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = [("30 s", 30.0)] + ([("1 h", 3600.0)] if hour else [])
        for label, seconds in cases:
            wav = tmp / f"rec_{int(seconds)}s.wav"
            _clip(wav, seconds)
            n = repeats if seconds <= 60 else 1
            light = min(_diarize_wall(wav, tmp / f"light{i}", []) for i in range(n))
            heavy = min(_diarize_wall(wav, tmp / f"tf{i}", ["--runtime", "keras"]) for i in range(n))
            rows.append((label, light[0], heavy[0], light[1] == heavy[1]))
    return rows


def _closure(root: str, extras: tuple[str, ...] = ()) -> set[str]:
    """Names of the installed distributions ``root[extras]`` needs (markers evaluated here)."""
    from packaging.requirements import Requirement

    names: set[str] = set()
    visited: set[tuple[str, frozenset]] = set()
    todo = [(root, tuple(extras))]
    while todo:
        name, want = todo.pop()
        key = name.lower().replace("_", "-")
        if (key, frozenset(want)) in visited:
            continue
        visited.add((key, frozenset(want)))
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        names.add(key)
        envs = [{"extra": e} for e in want] + [{"extra": ""}]
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, tuple(req.extras)))
    return names


def _size_mb(names: set[str]) -> float:
    total = 0
    for name in names:
        dist = md.distribution(name)
        for f in dist.files or []:
            p = Path(dist.locate_file(f))
            if p.is_file():
                total += p.stat().st_size
    return total / 1e6


def bench_install_size() -> tuple[float, float, list[str]]:
    base = _closure("unspeech")
    train = _closure("unspeech", ("train",))
    return _size_mb(base), _size_mb(train), sorted(train - base)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hour", action="store_true", help="also diarize a one-hour recording (minutes)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the best counts (default 3)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    print(f"# inference_bench on {os.cpu_count()} cores\n")
    print("| towers, batches of 256 | ONNX Runtime windows/s | TensorFlow windows/s | ratio "
          "| ONNX int8 (`--runtime onnx-int8`) windows/s | ratio to TensorFlow |")
    print("|---|---|---|---|---|---|")
    for name, light, heavy, int8 in bench_throughput(args.repeats):
        quantized = "-" if int8 is None else f"{int8:,.0f} | {int8 / heavy:.1f}x"
        print(f"| {name} | {light:,.0f} | {heavy:,.0f} | {light / heavy:.1f}x | {quantized} |")
    print("\n| `unspeech diarize`, whole command | default (ONNX Runtime) | `--runtime keras` | ratio | same RTTM |")
    print("|---|---|---|---|---|")
    for label, light, heavy, same in bench_diarize(args.hour, args.repeats):
        print(f"| {label} recording | {light:.2f} s | {heavy:.2f} s | {heavy / light:.1f}x | {'yes' if same else 'NO'} |")
    base, train, extra = bench_install_size()
    print(f"\ninstalled size: default {base:,.0f} MB; with the train extra {train:,.0f} MB "
          f"({train / base:.1f}x; adds {', '.join(extra)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
