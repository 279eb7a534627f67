#!/usr/bin/env python3
"""Noisy and reverberant copies of the utterances of a wav.scp, for the speaker head's training.

Kaldi's x-vector recipes train on copies of every recording with added noise, music, babble or
reverberation (MUSAN and simulated room impulse responses); a copy keeps its speaker. This script
makes such copies without external data, one per utterance, the kind drawn per utterance:

* ``noise``: coloured Gaussian noise (a one-pole low-pass of white noise, from white to brown-like)
  at 0-15 dB SNR;
* ``babble``: 3-6 other utterances of the list summed, each at a random offset, at 13-20 dB SNR;
* ``reverb``: convolution with a synthetic room impulse response (a direct path, then exponentially
  decaying noise with a reverberation time of 0.2-0.8 s).

Writes ``OUT/wav/aug-<utt>.wav`` (16 kHz), ``OUT/wav.scp``, ``OUT/utt2spk`` (the source's speaker)
and ``OUT/utt2kind``. Deterministic by ``--seed``. Audio is read with the package's reader (wav,
flac, ... and ``cmd |`` entries) and converted to 16 kHz mono.

    python scripts/augment_copies.py exp/real_model/data/wav.scp exp/real_model/aug --utt2spk exp/real_model/data/utt2spk
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.signal import fftconvolve

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unspeech import audio, datadir  # noqa: E402
from unspeech.errors import UnspeechError  # noqa: E402
from unspeech.synth import coloured_noise  # noqa: E402

RATE = 16000
KINDS = ("noise", "babble", "reverb")


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) or 1e-12


def _at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    return speech + noise * np.sqrt(_power(speech) / _power(noise) / 10 ** (snr_db / 10))


def random_coloured_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of Gaussian noise through a one-pole low-pass with a random pole in [0, 0.98]."""
    white = rng.standard_normal(n)
    return coloured_noise(white, rng.uniform(0.0, 0.98))


def babble(n: int, others: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of 3-6 of ``others`` summed, each from a random offset (looped when short)."""
    out = np.zeros(n)
    for pick in rng.choice(len(others), size=min(len(others), int(rng.integers(3, 7))), replace=False):
        other = others[pick] / np.sqrt(_power(others[pick]))
        start = int(rng.integers(0, len(other)))
        out += np.resize(np.roll(other, -start), n)
    return out


def room_impulse_response(rng: np.random.Generator) -> np.ndarray:
    """A direct path followed by exponentially decaying noise, RT60 drawn in [0.2, 0.8] s."""
    rt60 = rng.uniform(0.2, 0.8)
    n = int(rt60 * RATE)
    t = np.arange(n) / RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # -60 dB at t = rt60
    tail[: int(0.002 * RATE)] = 0.0  # first reflections 2 ms after the direct sound
    rir = tail * rng.uniform(0.2, 0.6) / np.sqrt(np.sum(tail**2))
    rir[0] = 1.0
    return rir


def augment(x: np.ndarray, kind: str, others: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """One copy of the 16 kHz signal ``x`` (float) with ``kind`` added, at the level (RMS) of ``x``,
    scaled down to a peak of 0.9 where it would clip. ``others``: signals for ``babble``."""
    x = np.asarray(x, dtype=np.float64)
    if kind == "noise":
        y = _at_snr(x, random_coloured_noise(len(x), rng), rng.uniform(0.0, 15.0))
    elif kind == "babble":
        y = _at_snr(x, babble(len(x), others, rng), rng.uniform(13.0, 20.0))
    elif kind == "reverb":
        y = fftconvolve(x, room_impulse_response(rng))[: len(x)]
    else:
        raise ValueError(f"unknown augmentation {kind!r}; expected one of {KINDS}")
    y *= np.sqrt(_power(x) / _power(y))
    peak = float(np.max(np.abs(y))) or 1.0
    return y / peak * 0.9 if peak > 0.9 else y


class _Loaded:
    """The signals of utterances ``index`` (positions in the sorted list), read when asked for."""

    def __init__(self, index: np.ndarray, load):
        self.index, self.load = index, load

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k) -> np.ndarray:
        return self.load(int(self.index[k]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wav_scp", help="the utterances (Kaldi wav.scp, 16 kHz)")
    parser.add_argument("out_dir")
    parser.add_argument("--utt2spk", help="speakers of the utterances (default: every utterance its own speaker)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from unspeech.cluster.outputs import StagedOutputs

    out = Path(args.out_dir)
    try:
        entries = datadir.read_wav_scp(args.wav_scp)
        utt2spk = datadir.read_utt2spk(args.utt2spk) if args.utt2spk else {u: u for u in entries}
        missing = sorted(set(entries) - set(utt2spk))
        if missing:
            raise UnspeechError(f"{args.utt2spk}: no speaker for utterance {missing[0]} of {args.wav_scp} "
                                f"({len(missing)} missing)")
        ids = sorted(entries)
        _, speaker = np.unique([utt2spk[u] for u in ids], return_inverse=True)

        def load(i: int) -> np.ndarray:
            return np.asarray(audio.load_audio(entries[ids[i]], sample_rate=RATE), dtype=np.float64)

        rng = np.random.default_rng(args.seed)
        wav_scp, utt2spk_out, kinds = {}, {}, {}
        out.parent.mkdir(parents=True, exist_ok=True)
        # one utterance in memory at a time (plus the few a babble mixes); the folder appears only when
        # every copy is written (a bad recording halfway leaves nothing)
        with StagedOutputs("augment_copies.py run") as staged:
            tmp = staged.directory(out)
            (tmp / "wav").mkdir()
            for i, utt in enumerate(ids):
                others = _Loaded(np.flatnonzero(speaker != speaker[i]), load)
                kinds_here = KINDS if len(others) else tuple(k for k in KINDS if k != "babble")  # babble needs other voices
                kind = kinds_here[int(rng.integers(len(kinds_here)))]
                y = augment(load(i), kind, others, rng)
                name = f"aug-{utt}.wav"
                audio.write_audio(tmp / "wav" / name, y.astype(np.float32), RATE)
                wav_scp[f"aug-{utt}"] = os.fspath(out / "wav" / name)
                utt2spk_out[f"aug-{utt}"] = utt2spk[utt]
                kinds[f"aug-{utt}"] = kind
            datadir.write_wav_scp(tmp / "wav.scp", wav_scp)
            datadir.write_utt2spk(tmp / "utt2spk", utt2spk_out)
            datadir.write_table(tmp / "utt2kind", kinds)
    except UnspeechError as err:  # one line naming the file or utterance, nothing written
        print(f"augment_copies.py: error: {err}", file=sys.stderr)
        return 1
    counts = {k: sum(v == k for v in kinds.values()) for k in KINDS}
    print(f"{out}: {len(wav_scp)} copies ({', '.join(f'{k} {n}' for k, n in counts.items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
