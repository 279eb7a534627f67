"""Resemblyzer d-vectors for benchmarks/real_speech_bench.py (runs in the peer venv, never the project's).

    exp/peer_venv/bin/python benchmarks/peer_dvectors.py JOBS.json OUT.npz [--threads 2] [--quiet]

This process imports resemblyzer (GE2E d-vectors; the weights ship inside its wheel, nothing is
downloaded) and numpy/librosa only, no unspeech code. ``JOBS.json``::

    {"rate": 2.5,                                      # partial d-vectors per second (0.4 s apart)
     "diarize": [{"id": "conv1", "audio": "a.wav", "regions": [[0.31, 2.05], ...]}, ...],
     "utterances": [{"id": "19-piece0", "audio": "b.flac", "start": 0.0, "end": 3.0}, ...]}

``diarize`` jobs: the recording is read at 16 kHz and volume-normalised as ``preprocess_wav`` does,
but its silences are *not* trimmed (that would shift every time stamp); each given speech region
is embedded on its own with ``VoiceEncoder.embed_utterance(region, return_partials=True,
rate=rate)``: 1.6 s windows every ``1 / rate`` s (a region shorter than 1.6 s gets one
zero-padded window), so no d-vector sees audio outside the given speech. Each partial is stamped
with the centre of its window, clipped to its region.

``utterances`` jobs (``start``/``end`` in seconds, null for the whole file): the audio (cut first)
goes through resemblyzer's own ``preprocess_wav`` (resampling to 16 kHz, volume normalisation,
trimming of long silences with webrtcvad), then ``embed_utterance``: the L2-normalised mean of its
partial d-vectors. If the trimming leaves under 0.1 s, the untrimmed piece is used.

``OUT.npz``: ``dz_ids (F,) str``, ``dz_emb (N, 256) float32``, ``dz_file (N,) int`` (index into
``dz_ids``), ``dz_region (N,) int``, ``dz_time (N,) float64`` seconds; ``utt_ids (M,) str``,
``utt_emb (M, 256) float32``; ``load_s``, ``dz_s``, ``utt_s``: wall seconds of model loading and of
each kind of job.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

SAMPLE_RATE = 16000
EMBED_DIM = 256


def _log(quiet: bool, message: str) -> None:
    if not quiet:
        print(f"[peer] {message}", file=sys.stderr, flush=True)


def _diarize_rows(encoder, job: dict, rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import librosa
    from resemblyzer.audio import normalize_volume
    from resemblyzer.hparams import audio_norm_target_dBFS

    wav, _ = librosa.load(job["audio"], sr=SAMPLE_RATE)
    wav = normalize_volume(wav, audio_norm_target_dBFS, increase_only=True)
    embs, times, regions = [], [], []
    for k, (start, end) in enumerate(job["regions"]):
        seg = wav[int(round(start * SAMPLE_RATE)) : int(round(end * SAMPLE_RATE))]
        if len(seg) == 0:
            continue
        _, partials, slices = encoder.embed_utterance(seg, return_partials=True, rate=rate)
        centres = np.array([(s.start + s.stop) / 2 / SAMPLE_RATE for s in slices])
        embs.append(partials.astype(np.float32))
        times.append(np.clip(start + centres, start, end))
        regions.append(np.full(len(partials), k, dtype=np.int64))
    if not embs:
        return np.zeros((0, EMBED_DIM), np.float32), np.zeros(0), np.zeros(0, np.int64)
    return np.concatenate(embs), np.concatenate(times), np.concatenate(regions)


def _utterance_vector(encoder, job: dict) -> np.ndarray:
    import librosa
    from resemblyzer import preprocess_wav
    from resemblyzer.audio import normalize_volume
    from resemblyzer.hparams import audio_norm_target_dBFS

    wav, rate = librosa.load(job["audio"], sr=None)
    start, end = job.get("start"), job.get("end")
    if start is not None or end is not None:
        wav = wav[int(round((start or 0.0) * rate)) : None if end is None else int(round(end * rate))]
    processed = preprocess_wav(wav, source_sr=rate)
    if len(processed) < SAMPLE_RATE // 10:  # trimming removed (almost) everything: keep the piece
        processed = normalize_volume(librosa.resample(wav, orig_sr=rate, target_sr=SAMPLE_RATE),
                                     audio_norm_target_dBFS, increase_only=True)
    return encoder.embed_utterance(processed).astype(np.float32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jobs", help="JSON job list (see the module docstring)")
    parser.add_argument("out", help="output .npz")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    with open(args.jobs, encoding="utf-8") as f:
        jobs = json.load(f)

    import torch
    from resemblyzer import VoiceEncoder

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    encoder = VoiceEncoder("cpu", verbose=False)
    load_s = time.perf_counter() - t0

    rate = float(jobs.get("rate", 2.5))
    dz = jobs.get("diarize", [])
    t0 = time.perf_counter()
    dz_emb, dz_file, dz_region, dz_time = [], [], [], []
    for i, job in enumerate(dz):
        emb, times, regions = _diarize_rows(encoder, job, rate)
        dz_emb.append(emb)
        dz_time.append(times)
        dz_region.append(regions)
        dz_file.append(np.full(len(emb), i, dtype=np.int64))
        _log(args.quiet, f"diarize {i + 1}/{len(dz)} {job['id']}: {len(emb)} d-vectors")
    dz_s = time.perf_counter() - t0

    utts = jobs.get("utterances", [])
    t0 = time.perf_counter()
    utt_emb = []
    for i, job in enumerate(utts):
        utt_emb.append(_utterance_vector(encoder, job))
        if (i + 1) % 100 == 0 or i + 1 == len(utts):
            _log(args.quiet, f"utterances {i + 1}/{len(utts)}")
    utt_s = time.perf_counter() - t0

    cat = lambda parts, shape, dtype: np.concatenate(parts) if parts else np.zeros(shape, dtype)  # noqa: E731
    tmp = args.out + ".tmp.npz"
    np.savez(
        tmp,
        dz_ids=np.array([j["id"] for j in dz], dtype=str),
        dz_emb=cat(dz_emb, (0, EMBED_DIM), np.float32),
        dz_file=cat(dz_file, (0,), np.int64),
        dz_region=cat(dz_region, (0,), np.int64),
        dz_time=cat(dz_time, (0,), np.float64),
        utt_ids=np.array([j["id"] for j in utts], dtype=str),
        utt_emb=np.stack(utt_emb) if utt_emb else np.zeros((0, EMBED_DIM), np.float32),
        load_s=load_s,
        dz_s=dz_s,
        utt_s=utt_s,
    )
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
