#!/usr/bin/env python3
"""Peak memory against recording length: ``unspeech fbank``, ``gen-feat`` and ``diarize`` on 1 h and 4 h.

Each command runs in a fresh process on one long recording (the demo conversations repeated,
16 kHz PCM) and its peak RSS (summed over the process and its children, sampled every 0.2 s)
is printed for every length, next to the **reference**: the same command in the same run with
the bounded-memory paths switched off (recordings, utterances and outputs held whole, as before
issue 14). Target (issue 14): the streamed peak RSS at 4 h within 10 % of the 1 h figure.

    python benchmarks/memory_bench.py                      # 1 h and 4 h, all three, with reference
    python benchmarks/memory_bench.py --hours 0.25,1 --commands fbank --no-reference   # quick look

``gen-feat`` exports the bundled model's rows at ``--genfeat-stride`` (default 10, the Kaldi
recipes' ivector period) from the features ``fbank`` wrote; ``diarize`` uses the defaults (bundled
model with its speaker head, energy VAD, spectral clustering).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster_bench import PeakRSS  # noqa: E402  (summed RSS of a process tree)

BUNDLED = REPO / "unspeech" / "models" / "unspeech_dnn_w32_libri200"

# the reference: every bounded-memory switch off, then the command line as given
_WHOLE = (
    "import sys, unspeech.fbank as f, unspeech.diarize.streaming as s, unspeech.context.embed as e; "
    "f.STREAM_SECONDS = s.STREAM_SECONDS = float('inf'); e.STREAM_ROWS = 1 << 62; "
    "from unspeech.cli import main; sys.exit(main(sys.argv[1:]))"
)


def write_recording(path: Path, seconds: float) -> None:
    """The demo conversations repeated to ``seconds``, written block by block (16 kHz PCM_16)."""
    import soundfile as sf

    parts = [sf.read(p, dtype="float32")[0] for p in sorted((REPO / "data" / "demo_conversations" / "wav").glob("*.flac"))]
    loop = np.concatenate(parts)
    total = int(seconds * 16000)
    with sf.SoundFile(path, "w", samplerate=16000, channels=1, subtype="PCM_16") as fh:
        done = 0
        while done < total:
            n = min(len(loop), total - done)
            fh.write(loop[:n])
            done += n


def run(argv: list[str], whole: bool) -> tuple[float, float]:
    """Run ``unspeech ARGV`` in a fresh process; (peak RSS in GB, wall seconds)."""
    cmd = [sys.executable, "-c", _WHOLE, *argv] if whole else [sys.executable, "-m", "unspeech.cli", *argv]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    with PeakRSS(proc.pid) as mem:
        out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{err[-3000:]}")
    return mem.peak / 1e9, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", default="1,4", help="recording lengths in hours (default 1,4)")
    parser.add_argument("--commands", default="fbank,gen-feat,diarize")
    parser.add_argument("--genfeat-stride", type=int, default=10)
    parser.add_argument("--no-reference", action="store_true", help="skip the whole-recording reference runs")
    parser.add_argument("--workdir", default=None, help="where the recordings go (default: a temp folder)")
    args = parser.parse_args()
    hours = [float(h) for h in args.hours.split(",")]
    commands = [c.strip() for c in args.commands.split(",") if c.strip()]
    modes = ["streamed"] + ([] if args.no_reference else ["whole"])
    load = os.getloadavg()
    print(f"memory_bench: {os.cpu_count()} CPUs, load average {load[0]:.1f}", flush=True)
    results: dict = {}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        for h in hours:
            wav = tmp / f"rec_{h:g}h.wav"
            write_recording(wav, h * 3600)
            (tmp / f"wav_{h:g}.scp").write_text(f"rec {wav}\n")
            for mode in modes:
                feats = tmp / f"fbank_{h:g}_{mode}"
                steps = {
                    "fbank": ["fbank", "--wav-scp", str(tmp / f"wav_{h:g}.scp"), "--out-dir", str(feats), "--quiet"],
                    "gen-feat": ["gen-feat", "--train-dir", str(BUNDLED), "--filelist", f"scp:{feats}/feats.scp",
                                 "--output-feat-file", str(tmp / f"ivec_{h:g}_{mode}" / "ivector_online"),
                                 "--genfeat-stride", str(args.genfeat_stride), "--quiet"],
                    "diarize": ["diarize", str(wav), "-o", str(tmp / f"rttm_{h:g}_{mode}"), "--quiet"],
                }
                if "gen-feat" in commands and "fbank" not in commands:
                    run(steps["fbank"], whole=False)  # gen-feat's input
                for name in commands:
                    peak, wall = run(steps[name], whole=mode == "whole")
                    results.setdefault(name, {}).setdefault(mode, {})[h] = {"peak_rss_gb": peak, "wall_s": wall}
                    print(f"  {name:9s} {h:g} h {mode:8s}: peak RSS {peak:.3f} GB, {wall:.0f} s", flush=True)
            wav.unlink()
    print("\npeak RSS (GB) by length; ratio = longest / shortest (target for streamed: <= 1.10)")
    for name, by_mode in results.items():
        for mode, by_h in by_mode.items():
            peaks = [by_h[h]["peak_rss_gb"] for h in hours]
            cells = "  ".join(f"{h:g} h {p:.3f}" for h, p in zip(hours, peaks))
            print(f"  {name:9s} {mode:8s} {cells}  ratio {peaks[-1] / peaks[0]:.3f}")
    print("JSON " + json.dumps({"hours": hours, "results": results, "load_start": load, "load_end": os.getloadavg()}))


if __name__ == "__main__":
    main()
