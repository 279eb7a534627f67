"""Diarization benchmark: DER / JER and real-time factor of every backend on synthetic conversations.

In one run it

1. synthesizes the test set: ``--conversations`` (default 20) conversations of 2-6 speakers with a
   channel each (equalizer, reverb, noise), some overlap, from a pool of speakers drawn with
   seed ``--test-seed``; and one enrollment utterance per pool speaker (same seed, so the same
   voices; each on a channel of its own) for the ``enroll`` backend;
2. gets a context model: ``--model RUN_DIR`` (default: the bundled run in ``unspeech/models/``, the model
   ``unspeech diarize`` uses by default), or with ``--model train`` trains one (``--train-steps``, BaselineDnn,
   windows of 32 frames, 2 + 2 contexts, 64-dim embeddings, tied towers, learning rate 1e-3,
   otherwise the defaults) on 80 x 10 synthetic utterances of a speaker pool drawn with another seed (``--train-seed``), so the
   test speakers are not the training speakers;
3. trains a UIS-RNN per embedder on the rows of ``--uisrnn-conversations`` training
   conversations (training seed, reference RTTM labels);
4. diarizes the test set with each embedder (``stats``: the model-free fbank-statistics baseline;
   ``model``: the context model) and each backend (hdbscan, ahc, spectral, uisrnn, enroll), in
   one process, and scores DER with collar 0.25 s (md-eval convention) and overlap excluded, and
   with collar 0 and overlap scored, plus JER, through :mod:`unspeech.diarize.scoring`. The
   ``enroll`` backend enrolls each conversation's own speakers (one utterance each, recorded on
   another channel); the other backends are given no speaker count.

The real-time factor is wall time of the whole pipeline (decoding, fbank, VAD, embeddings,
clustering, smoothing) divided by audio time; one-off set-up (loading the model, enrollment) is
not counted. Nothing is tuned on the test set: every backend runs with its defaults (tuned on a
separate development set of another seed).

    python benchmarks/diarize_bench.py --work /tmp/diar_bench          # baseline + bundled model
    python benchmarks/diarize_bench.py --model train --embedders model  # a model trained here
    python benchmarks/diarize_bench.py --model RUN --embedders model    # a given model only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BACKENDS = ("hdbscan", "ahc", "spectral", "uisrnn", "enroll")
POOL = 40  # speakers of the test pool (and of the UIS-RNN training conversations, drawn with another seed)
TRAIN_SPEAKERS = 80  # speakers of the context model's training utterances (training seed)


def make_test_set(work: Path, n_conv: int, seed: int, nj: int) -> Path:
    from unspeech.synth import synthesize_conversations, synthesize_utterances

    test = work / "test"
    if not (test / "rttm").is_file():
        synthesize_conversations(test, num_conversations=n_conv, num_speakers=POOL, speakers_per_conversation=(2, 6),
                                 turns_per_conversation=16, overlap_prob=0.1, seed=seed, nj=nj)
    if not (work / "enroll" / "wav.scp").is_file():
        synthesize_utterances(work / "enroll", num_speakers=POOL, utts_per_speaker=1, seed=seed, nj=nj)
    return test


def train_model(work: Path, seed: int, steps: int, nj: int) -> Path:
    """Train a small context model on synthetic utterances of the training pool; returns the run dir."""
    from unspeech.context.config import ContextConfig
    from unspeech.context.train import train
    from unspeech.fbank import make_fbank_datadir
    from unspeech.synth import synthesize_utterances

    utts = work / "train_utts"
    if not (utts / "wav.scp").is_file():
        synthesize_utterances(utts, num_speakers=TRAIN_SPEAKERS, utts_per_speaker=10, seed=seed, nj=nj)
    feats = work / "train_fbank"
    if not (feats / "feats.scp").is_file():
        make_fbank_datadir(utts / "wav.scp", feats, utt2spk=utts / "utt2spk", nj=nj)
    runs = work / "ctx"
    done = sorted(p.parent for p in runs.glob("runs/*/config.json"))
    if done:
        return done[-1]
    config = ContextConfig(filelist=str(feats / "feats.scp"), train_dir=str(runs), window_length=32, window_neg_length=32,
                           left_contexts=2, right_contexts=2, embedding_size=64, tied_embeddings_transforms=True,
                           learn_rate=1e-3, max_steps=steps)
    train(config)
    return sorted(p.parent for p in runs.glob("runs/*/config.json"))[-1]


def uisrnn_training_rows(diarizer, work: Path, seed: int, n_conv: int, nj: int):
    """Core embedding rows and reference speakers of training-pool conversations, one sequence each."""
    from unspeech import datadir
    from unspeech.synth import synthesize_conversations

    conv = work / "uisrnn_train"
    if not (conv / "rttm").is_file():
        synthesize_conversations(conv, num_conversations=n_conv, num_speakers=POOL, speakers_per_conversation=(2, 6),
                                 turns_per_conversation=16, overlap_prob=0.0, seed=seed + 1, nj=nj)
    ref = datadir.read_rttm(conv / "rttm")
    sequences, labels = [], []
    for rid, src in datadir.read_wav_scp(conv / "wav.scp").items():
        seen = {}
        diarizer(src, file_id=rid, hook=lambda step, artifact, **kw: seen.setdefault(step, artifact))
        rows, mask = seen["embeddings"], seen["speech"]
        turns = [t for t in ref if t.file_id == rid]
        keep, who = [], []
        for i in range(len(rows)):
            block = mask[i * diarizer.step : (i + 1) * diarizer.step]
            centre = (i + 0.5) * diarizer.step / 100
            speakers = [t.speaker for t in turns if t.onset <= centre < t.end]
            if len(speakers) == 1 and block.size and block.mean() >= 0.5:
                keep.append(i)
                who.append(speakers[0])
        sequences.append(rows[keep].astype(np.float64))
        labels.append(who)
    return sequences, labels


def train_uisrnn(diarizer, work: Path, seed: int, n_conv: int, iterations: int, nj: int, name: str) -> Path:
    from unspeech import uisrnn

    path = work / f"uisrnn_{name}.npz"
    if path.is_file():
        return path
    sequences, labels = uisrnn_training_rows(diarizer, work, seed, n_conv, nj)
    model_args, training_args, _ = uisrnn.default_arguments(
        observation_dim=sequences[0].shape[1], rnn_hidden_size=128, verbosity=1, enable_cuda=False,
        train_iteration=iterations, learning_rate=1e-3, batch_size=10, num_permutations=4)
    model = uisrnn.UISRNN(model_args)
    model.fit(sequences, labels, training_args)
    model.save(path)
    return path


def evaluate(params: dict, test: Path, enroll: dict[str, str] | None = None) -> dict:
    """Diarize and score the test set; with ``enroll`` (speaker -> audio), each conversation enrolls its own speakers."""
    import soundfile as sf

    from unspeech import datadir
    from unspeech.diarize import Diarizer, score_turns

    wav = datadir.read_wav_scp(test / "wav.scp")
    ref = datadir.read_rttm(test / "rttm")
    diarizers = {}
    for rid in wav:  # one-off set-up (model loading, enrollment) is not part of the real-time factor
        extra = {} if enroll is None else {"enroll": {s: enroll[s] for s in sorted({t.speaker for t in ref if t.file_id == rid})}}
        if not diarizers or extra:
            diarizer = Diarizer(**params, **extra)
            diarizer._setup()
        diarizers[rid] = diarizer
    hyp = []
    started = time.perf_counter()
    for rid, src in wav.items():
        hyp += diarizers[rid](src, file_id=rid)
    elapsed = time.perf_counter() - started
    audio = sum(sf.info(src).duration for src in wav.values())
    uem = datadir.read_uem(test / "uem")
    lenient = score_turns(ref, hyp, uem, collar=0.25, skip_overlap=True).total
    strict = score_turns(ref, hyp, uem, collar=0.0, skip_overlap=False).total
    return {"der_c025_noovl": lenient.der, "der_c0_ovl": strict.der, "jer_c0_ovl": strict.jer,
            "fa": strict.false_alarm / strict.scored, "miss": strict.missed / strict.scored,
            "conf": strict.confusion / strict.scored, "hyp_speakers": lenient.hyp_speakers,
            "ref_speakers": lenient.ref_speakers, "rtf": elapsed / audio, "audio_s": audio, "elapsed_s": elapsed}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/unspeech_diarize_bench", help="folder for generated data and models")
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--test-seed", type=int, default=7)
    parser.add_argument("--train-seed", type=int, default=99)
    parser.add_argument("--model", help="a context-model run dir, or 'train' (default: the bundled model)")
    parser.add_argument("--train-steps", type=int, default=6000)
    parser.add_argument("--uisrnn-conversations", type=int, default=12)
    parser.add_argument("--uisrnn-iterations", type=int, default=1000)
    parser.add_argument("--embedders", default="stats,model")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--nj", type=int, default=2, help="parallel jobs for data generation")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    test = make_test_set(work, args.conversations, args.test_seed, args.nj)
    print(f"test set: {args.conversations} conversations in {test} ({time.perf_counter() - t0:.0f} s)", flush=True)
    enroll = sorted(str(p) for p in (work / "enroll" / "wav").glob("*.flac"))
    results = []
    for embedder in args.embedders.split(","):
        if embedder == "stats":
            model = "stats"
        else:
            t0 = time.perf_counter()
            from unspeech.diarize.embedders import bundled_model

            model = args.model or bundled_model()
            if model == "train":
                model = str(train_model(work, args.train_seed, args.train_steps, args.nj))
            print(f"context model: {model} ({time.perf_counter() - t0:.0f} s)", flush=True)
        for backend in args.backends.split(","):
            params = {"backend": backend, "model": model}
            if backend == "uisrnn":
                from unspeech.diarize import Diarizer

                t0 = time.perf_counter()
                tag = hashlib.md5(str(model).encode()).hexdigest()[:8]  # one UIS-RNN per embedding model
                params["uisrnn"] = str(train_uisrnn(Diarizer(model=model, speaker_head=False), work, args.train_seed, args.uisrnn_conversations,
                                                    args.uisrnn_iterations, args.nj, f"{embedder}_{tag}"))
                print(f"uisrnn for {embedder}: trained in {time.perf_counter() - t0:.0f} s", flush=True)
            # enrollment utterances are named <speaker>-000; the profile name is the speaker id
            speakers = {Path(p).stem.rsplit("-", 1)[0]: p for p in enroll} if backend == "enroll" else None
            row = {"embedder": embedder, "backend": backend, **evaluate(params, test, speakers)}
            results.append(row)
            print(f"{embedder:6s} {backend:9s} DER(c0.25,no ovl) {100 * row['der_c025_noovl']:6.2f} %  "
                  f"DER(c0,ovl) {100 * row['der_c0_ovl']:6.2f} %  JER {100 * row['jer_c0_ovl']:6.2f} %  "
                  f"FA {100 * row['fa']:.1f} MISS {100 * row['miss']:.1f} CONF {100 * row['conf']:.1f}  "
                  f"spk {row['hyp_speakers']}/{row['ref_speakers']}  RTF {row['rtf']:.4f}", flush=True)
    audio = results[0]["audio_s"] if results else 0.0
    print(f"\n| embedder | backend | DER c=0.25, overlap excluded | DER c=0, overlap scored | JER c=0 | speakers hyp/ref | RTF |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['embedder']} | {r['backend']} | {100 * r['der_c025_noovl']:.2f} % | {100 * r['der_c0_ovl']:.2f} % | "
              f"{100 * r['jer_c0_ovl']:.2f} % | {r['hyp_speakers']}/{r['ref_speakers']} | {r['rtf']:.4f} |")
    print(f"\n{len(results) and args.conversations} conversations, {audio:.0f} s of audio; RTF target <= 0.02, "
          "DER target <= 10 % (c=0.25, overlap excluded)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
