"""unspeech fbank vs torchaudio.compliance.kaldi.fbank on real speech, per Kaldi config.

For every config in ``tests/audio/kaldi_confs/`` (or those given with ``--conf``), computes the
features of real utterances with :func:`unspeech.fbank.compute_fbank` and with torchaudio (in the
kaldi-check venv, see ``benchmarks/setup_kaldi_check_venv.sh``) and prints the largest absolute
difference (log-mel units) and the frame counts::

    bash benchmarks/setup_kaldi_check_venv.sh
    .venv/bin/python benchmarks/fbank_equivalence.py                 # LibriSpeech + FSDD from ../shared/data
    .venv/bin/python benchmarks/fbank_equivalence.py --audio a.wav b.flac --conf conf/fbank.conf

Audio is read as ``unspeech fbank`` reads it (channel 0, resampled to the config's
``--sample-frequency``).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unspeech import audio, fbank  # noqa: E402
from unspeech.fbank_options import FbankOptions  # noqa: E402


def _default_audio(limit: int) -> dict[str, list[Path]]:
    data = ROOT.parent / "shared" / "data"
    corpora = {
        "librispeech": sorted((data / "librispeech-subset" / "train-clean-100").rglob("*.flac"))[:limit],
        "fsdd-8k": sorted((data / "fsdd" / "recordings").glob("*.wav"))[:limit],
    }
    return {name: files for name, files in corpora.items() if files}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", nargs="*", help="audio files (default: LibriSpeech + FSDD from ../shared/data)")
    parser.add_argument("--limit", type=int, default=20, help="files per default corpus (default 20)")
    parser.add_argument("--conf", nargs="*", help="Kaldi fbank configs (default: tests/audio/kaldi_confs/*.conf)")
    parser.add_argument("--python", default=str(ROOT / "exp" / "kaldi_check_venv" / "bin" / "python"),
                        help="interpreter with torchaudio (default: the kaldi-check venv)")
    args = parser.parse_args(argv)
    corpora = {"given": [Path(p) for p in args.audio]} if args.audio else _default_audio(args.limit)
    confs = [Path(p) for p in args.conf] if args.conf else sorted((ROOT / "tests" / "audio" / "kaldi_confs").glob("*.conf"))
    if not corpora:
        sys.exit("no audio: give --audio or put the corpora in ../shared/data")
    spec = importlib.util.spec_from_file_location("torchaudio_fbank", ROOT / "benchmarks" / "torchaudio_fbank.py")
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)

    print(", ".join(f"{name}: {len(files)} files" for name, files in corpora.items())
          + f"; {len(confs)} configs; reference: {args.python}")
    print("log-mel differences: ours (kaldi-native-fbank, float32) vs torchaudio in float32 (Kaldi's precision),\n"
          "and both against torchaudio in float64 (the yardstick: float32 rounding shows in low-energy bins)")
    print(f"{'config':24s} {'corpus':12s} {'frames':>7s} {'max ours-ta32':>14s} {'cells >1e-3':>12s} "
          f"{'max ours-f64':>13s} {'max ta32-f64':>13s} {'ours s':>7s}")
    failed = []
    for conf in confs:
        opts = FbankOptions.from_kaldi_config(conf)
        rate = int(opts.sample_frequency)
        for corpus, files in corpora.items():
            waves = {f.stem: audio.load_audio(str(f), sample_rate=rate, channel=opts.channel) for f in files}
            started = time.perf_counter()
            ours = {k: fbank.compute_fbank(w, rate, options=opts, name=k) for k, w in waves.items()}
            elapsed = time.perf_counter() - started
            jobs = [(k, w.astype(np.float64) * fbank.KALDI_SAMPLE_SCALE, dataclasses.asdict(opts))
                    for k, w in waves.items()]
            with tempfile.TemporaryDirectory() as tmp:
                ref32 = client.request_reference(args.python, jobs, tmp, "float32")
                ref64 = client.request_reference(args.python, jobs, tmp, "float64")
            d32, d64, r64 = [], [], []
            for k, mine in ours.items():
                if mine.shape != ref32[k].shape:
                    raise SystemExit(f"{conf.name}: {k}: shape {mine.shape} but torchaudio gives {ref32[k].shape}")
                d32.append(np.abs(mine - ref32[k]).ravel())
                d64.append(np.abs(mine - ref64[k]).ravel())
                r64.append(np.abs(ref32[k] - ref64[k]).ravel())
            d32, d64, r64 = np.concatenate(d32), np.concatenate(d64), np.concatenate(r64)
            frames = sum(len(m) for m in ours.values())
            # as close to the float64 yardstick as torchaudio's own float32 result (or within 1e-3)
            if d64.max() > max(1e-3, 2 * r64.max()):
                failed.append(f"{conf.stem}/{corpus}")
            print(f"{conf.stem:24s} {corpus:12s} {frames:7d} {d32.max():14.2e} {(d32 > 1e-3).mean():12.1e} "
                  f"{d64.max():13.2e} {r64.max():13.2e} {elapsed:7.2f}")
    print("less accurate than torchaudio's float32: " + (", ".join(failed) if failed else "none"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
