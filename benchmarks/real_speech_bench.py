"""Real speech: unspeech next to fbank statistics and a public d-vector peer, on the same speech regions.

Systems (all in one run, on the same data and the same oracle speech regions):

* ``unspeech`` — :class:`unspeech.diarize.Diarizer` with its defaults (backend ``--backend``,
  default ``ahc``) and the context model ``--model RUN_DIR`` (default: the bundled model,
  :func:`unspeech.diarize.embedders.bundled_model`);
* ``stats`` — the same pipeline with ``model="stats"`` (windowed fbank statistics, no model);
* ``peer`` — Resemblyzer GE2E d-vectors + spectral clustering (the d-vector + spectral baseline of
  the UIS-RNN paper): d-vectors come from ``benchmarks/peer_dvectors.py`` run under the peer
  venv's python (``bash benchmarks/setup_peer_venv.sh`` makes ``exp/peer_venv``; torch and
  resemblyzer are never imported here), one 1.6 s window every ``1 / --peer-rate`` s inside each
  speech region. They are clustered here with ``spectralcluster`` as its authors configure it
  with auto-tuning (Park et al. 2019: cosine affinity, row-wise percentile pruning whose
  percentile is searched in [0.40, 0.95] for the best eigen-gap, symmetrised, graph-cut
  Laplacian, row re-normalisation; speaker count from the eigen-gap within
  ``--peer-count-bounds``, default 2-7 as in the library's published configurations; the
  unspeech systems get no bounds). Every speech frame takes the label of the nearest d-vector
  of its region (no smoothing). If the auto-tuned clustering raises, the same clustering runs with
  the fixed percentile 0.95 (no auto-tuning; the count from its eigen-gap), and if that raises too
  every d-vector gets one speaker; each such case counts in ``peer_failures`` (printed under the
  table, with the error in the JSON).

Diarization: ``--conversations DIR`` (``wav.scp``, ``rttm``, ``uem``, as ``unspeech synth
conversations`` writes them). Speech regions = the union of the reference RTTM turns (frames of
10 ms); every system gets exactly these regions. Each system runs twice: speaker count estimated,
and the true count given (``num_speakers``; for the peer ``min_clusters = max_clusters``). DER with
collar 0.25 s each side (md-eval convention) and overlapped speech not scored, inside the UEM,
all through :func:`unspeech.diarize.score_turns`; speakers found = hypothesis speakers per
recording (total, and recordings whose count is right).

Utterance EER (same/different speaker, all pairs, cosine scores, :func:`unspeech.cluster.metrics.equal_error_rate`):

* LibriSpeech pieces: each held-out speaker's utterance (``--heldout``, 51 speakers kept out of
  the model's training) is cut into non-overlapping ``--piece-seconds`` pieces (the remainder is
  dropped; a speaker whose utterance is shorter than one piece has none: 3 of the 51 at 3 s).
  **All pieces of a speaker come from one recording session, so "same speaker" also means "same
  channel" here**: this EER flatters channel-sensitive embeddings such as fbank statistics.
* FSDD: ``--fsdd-per-speaker`` recordings of each of the 6 speakers (a seeded draw), 8 kHz
  resampled to 16 kHz by :func:`unspeech.audio.load_audio` (the peer's ``preprocess_wav``
  resamples on its own).

One vector per utterance: unspeech = :func:`unspeech.context.embed.speaker_vector` (mean of the
rows, L2-normalised) over the rows whose 10-frame block is at least half speech by the default
energy VAD (all rows when none is; the diarizer's "core rows" rule); stats = fbank mean and
standard deviation over the same speech frames (:func:`unspeech.cluster.vectors.pool_frames`,
``mean+std``); peer = ``VoiceEncoder.embed_utterance`` after ``preprocess_wav``. Scores are
cosine similarities of the vectors after subtracting the mean vector of the evaluation set (the
same for all systems; the plain cosine EER follows in parentheses).

Wall time: each system's whole share of the run (model loading, embedding, clustering of both
count settings, utterance vectors); for the peer including its process start (one torch thread
by default: on 2 busy cores two threads made it about 10x slower). Scoring not counted.

    bash benchmarks/setup_peer_venv.sh
    python benchmarks/real_speech_bench.py --conversations exp/real_convs --make-conversations --out exp/real_bench
    python benchmarks/real_speech_bench.py --conversations /tmp/tts_convs --out /tmp/rb --model RUN_DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SYSTEMS = ("unspeech", "stats", "peer")
LIBRISPEECH = "/work/shared/data/librispeech-subset/train-clean-100"
FSDD = "/work/shared/data/fsdd/recordings"
SR = 16000

_quiet = False


def log(message: str) -> None:
    if not _quiet:
        print(f"[real_speech_bench] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- data


def make_conversations(out: Path, num: int, speakers: tuple[int, int], seed: int, heldout: Path) -> None:
    """Real-voice conversations of the held-out LibriSpeech speakers via ``unspeech synth conversations --from-corpus``."""
    cmd = [sys.executable, "-m", "unspeech.cli", "synth", "conversations", "--out-dir", str(out),
           "--from-corpus", LIBRISPEECH, "--speaker-list", str(heldout), "--num-conversations", str(num),
           "--speakers", str(speakers[0]), str(speakers[1]),
           "--seed", str(seed), "--quiet"]
    log("making conversations: " + " ".join(cmd))
    done = subprocess.run(cmd, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"`unspeech synth conversations --from-corpus` failed (exit {done.returncode}); "
                         "does this checkout have it yet? Pass --conversations of an existing folder instead.")


def load_conversations(folder: Path, work: Path) -> list[dict]:
    """Recordings with 16 kHz samples, a file path the peer can read, the oracle speech mask and regions."""
    from unspeech import datadir
    from unspeech.audio import is_pipe, load_audio, write_audio
    from unspeech.diarize.vad import num_frames_of, oracle_speech_from_rttm, spans_from_mask

    for name in ("wav.scp", "rttm", "uem"):
        if not (folder / name).is_file():
            raise SystemExit(f"{folder}: no {name} (expected the layout of `unspeech synth conversations`)")
    ref = datadir.read_rttm(folder / "rttm")
    recs = []
    for rid, src in datadir.read_wav_scp(folder / "wav.scp").items():
        samples = load_audio(src)
        path = src
        if is_pipe(src):  # the peer reads files only
            path = str(work / "audio" / f"{rid}.wav")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_audio(path, samples)
        mask = oracle_speech_from_rttm(ref, rid, num_frames_of(len(samples)))
        regions = [(a / 100, b / 100) for a, b in spans_from_mask(mask)]
        speakers = len({t.speaker for t in ref if t.file_id == rid})
        recs.append({"id": rid, "samples": samples, "path": path, "mask": mask, "regions": regions, "speakers": speakers})
    return recs


def librispeech_pieces(corpus: Path, heldout: Path, seconds: float) -> list[dict]:
    """Non-overlapping pieces of ``seconds`` of every utterance of the held-out speakers."""
    from unspeech.audio import load_audio

    speakers = [s for s in heldout.read_text().split() if s]
    pieces = []
    for spk in speakers:
        files = sorted((corpus / spk).glob("*/*.flac"))
        if not files:
            raise SystemExit(f"{corpus / spk}: no .flac utterance of held-out speaker {spk}")
        for path in files:
            samples = load_audio(path)
            size = int(round(seconds * SR))
            for k in range(len(samples) // size):
                pieces.append({"id": f"{path.stem}-p{k}", "speaker": spk, "audio": str(path), "start": k * seconds,
                               "end": (k + 1) * seconds, "samples": samples[k * size : (k + 1) * size]})
    return pieces


def fsdd_recordings(folder: Path, per_speaker: int, seed: int) -> list[dict]:
    """A seeded draw of ``per_speaker`` recordings of each FSDD speaker (``<digit>_<speaker>_<idx>.wav``)."""
    from unspeech.audio import load_audio

    by_speaker: dict[str, list[Path]] = {}
    for path in sorted(folder.glob("*.wav")):
        by_speaker.setdefault(path.stem.split("_")[1], []).append(path)
    if not by_speaker:
        raise SystemExit(f"{folder}: no FSDD recordings")
    rng = np.random.default_rng(seed)
    utts = []
    for spk in sorted(by_speaker):
        files = by_speaker[spk]
        for i in sorted(rng.choice(len(files), size=min(per_speaker, len(files)), replace=False)):
            utts.append({"id": files[i].stem, "speaker": spk, "audio": str(files[i]), "start": None, "end": None,
                         "samples": load_audio(files[i])})
    return utts


# ------------------------------------------------------------------------------- utterance EER


def eer_of(vectors: np.ndarray, speakers: list[str]) -> dict:
    """EER of all same/different pairs: cosine after removing the set mean, and plain cosine."""
    from unspeech.cluster.metrics import equal_error_rate, sample_trials

    first, second, target = sample_trials(speakers, n_trials=10**7)
    out = {"trials": int(len(target)), "target_trials": int(target.sum())}
    for name, x in (("eer", vectors - vectors.mean(axis=0)), ("eer_plain_cosine", vectors)):
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        out[name] = equal_error_rate(np.einsum("ij,ij->i", x[first], x[second]), target)[0]
    return out


def project_vectors(utts: list[dict], model: str) -> np.ndarray:
    """One vector per utterance: speaker_vector over the speech rows (context model), fbank mean+std (stats)."""
    from unspeech.cluster.vectors import pool_frames
    from unspeech.context.embed import speaker_vector
    from unspeech.diarize import EnergyVAD, load_embedder
    from unspeech.fbank import compute_fbank

    embedder = None if model == "stats" else load_embedder(model, 10)
    vad = EnergyVAD()
    out = []
    for u in utts:
        fbank = compute_fbank(u["samples"], name=u["id"])
        mask = vad(u["samples"])[: len(fbank)]
        if embedder is None:
            out.append(pool_frames(fbank[mask] if mask.any() else fbank, "mean+std", utt_id=u["id"]))
            continue
        rows = embedder.embed(fbank)
        step = embedder.period_frames
        padded = np.zeros(len(rows) * step)
        padded[: len(mask)] = mask
        core = padded.reshape(len(rows), step).mean(axis=1) >= 0.5
        out.append(speaker_vector(rows[core] if core.any() else rows))
    return np.stack(out).astype(np.float64)


# ------------------------------------------------------------------------------------ systems


def run_project(recs: list[dict], model: str, backend: str) -> tuple[dict, dict]:
    """Turns of the unspeech diarizer (count estimated / true count) with the oracle speech masks."""
    from unspeech.diarize import Diarizer

    hyps: dict[str, list] = {"est": [], "true": []}
    estimated = Diarizer(backend=backend, model=model)
    given: dict[int, Diarizer] = {}  # one diarizer per true count (each loads the model once)
    for i, rec in enumerate(recs):
        hyps["est"] += estimated(rec["samples"], file_id=rec["id"], speech=rec["mask"])
        n = rec["speakers"]
        given.setdefault(n, Diarizer(backend=backend, model=model, num_speakers=n))
        hyps["true"] += given[n](rec["samples"], file_id=rec["id"], speech=rec["mask"])
        log(f"  {model if model == 'stats' else 'model'}: {i + 1}/{len(recs)} {rec['id']}")
    return hyps, {}


def peer_cluster(emb: np.ndarray, low: int, high: int, autotune: bool = True) -> np.ndarray:
    """spectralcluster with auto-tuned row-wise pruning (see the module docstring): ``(N, 256)`` → ``(N,)`` labels."""
    from spectralcluster import AutoTune, LaplacianType, RefinementName, RefinementOptions, SpectralClusterer
    from spectralcluster.refinement import SymmetrizeType, ThresholdType

    refinement = RefinementOptions(
        thresholding_soft_multiplier=0.01, thresholding_type=ThresholdType.Percentile,
        thresholding_with_binarization=True, thresholding_preserve_diagonal=True,
        symmetrize_type=SymmetrizeType.Average, p_percentile=0.95,
        refinement_sequence=[RefinementName.RowWiseThreshold, RefinementName.Symmetrize])
    tune = AutoTune(p_percentile_min=0.40, p_percentile_max=0.95, init_search_step=0.05, search_level=1) if autotune else None
    clusterer = SpectralClusterer(min_clusters=low, max_clusters=high, refinement_options=refinement, autotune=tune,
                                  laplacian_type=LaplacianType.GraphCut, row_wise_renorm=True, custom_dist="cosine")
    return np.asarray(clusterer.predict(np.asarray(emb, dtype=np.float64)), dtype=np.int64)


def peer_turns(rec: dict, emb: np.ndarray, times: np.ndarray, regions: np.ndarray, labels: np.ndarray) -> list:
    """Every speech frame takes the label of the nearest d-vector (by window centre) of its own region."""
    from unspeech.diarize import labels_to_turns

    frame = np.full(len(rec["mask"]), -1, dtype=np.int64)
    for k, (start, end) in enumerate(rec["regions"]):
        mine = np.flatnonzero(regions == k)
        if len(mine) == 0:
            continue
        a, b = int(round(start * 100)), int(round(end * 100))
        centres = (np.arange(a, b) + 0.5) / 100
        nearest = np.abs(centres[:, None] - times[mine][None, :]).argmin(axis=1)
        frame[a:b] = labels[mine][nearest]
    return labels_to_turns(frame, rec["id"])


def _peer_labels(emb: np.ndarray, low: int, high: int, info: dict, what: str) -> np.ndarray:
    """Auto-tuned peer clustering; if it raises: fixed percentile 0.95, then one speaker (a recorded peer failure)."""
    try:
        return peer_cluster(emb, low, high)
    except Exception as exc:  # noqa: BLE001 - any library failure is a peer failure, recorded
        info["peer_failures"] += 1
        info["peer_failure_notes"].append(f"{what}: auto-tuned clustering raised {type(exc).__name__}: {exc}")
        log(f"  peer failure: {info['peer_failure_notes'][-1]}")
    try:
        return peer_cluster(emb, low, high, autotune=False)
    except Exception:  # noqa: BLE001
        return np.zeros(len(emb), dtype=np.int64)


def run_peer(recs: list[dict], utts: dict[str, list[dict]], args, work: Path) -> tuple[dict, dict]:
    """d-vectors in the peer venv (one subprocess), clustering and turns here."""
    jobs = {
        "rate": args.peer_rate,
        "diarize": [{"id": r["id"], "audio": r["path"], "regions": r["regions"]} for r in recs],
        "utterances": [{"id": f"{name}/{u['id']}", "audio": u["audio"], "start": u["start"], "end": u["end"]}
                       for name, items in utts.items() for u in items],
    }
    job_file, out_file = work / "peer_jobs.json", work / "peer_dvectors.npz"
    job_file.write_text(json.dumps(jobs))
    cmd = [args.peer_python, str(ROOT / "benchmarks" / "peer_dvectors.py"), str(job_file), str(out_file),
           "--threads", str(args.threads)] + (["--quiet"] if args.quiet else [])
    log("peer d-vectors: " + " ".join(cmd))
    done = subprocess.run(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(args.threads)})
    if done.returncode != 0:
        raise SystemExit(f"the peer process failed (exit {done.returncode}); did `bash benchmarks/setup_peer_venv.sh` run?")
    data = np.load(out_file)
    info = {"peer_load_s": float(data["load_s"]), "peer_dvector_s": float(data["dz_s"]),
            "peer_utterance_s": float(data["utt_s"]), "peer_failures": 0, "peer_failure_notes": []}
    hyps: dict[str, list] = {"est": [], "true": []}
    low, high = args.peer_count_bounds
    for i, rec in enumerate(recs):
        sel = data["dz_file"] == i
        emb, times, regions = data["dz_emb"][sel], data["dz_time"][sel], data["dz_region"][sel]
        est = _peer_labels(emb, low, high, info, f"{rec['id']} (count estimated)")
        true = _peer_labels(emb, rec["speakers"], rec["speakers"], info, f"{rec['id']} (true count)")
        hyps["est"] += peer_turns(rec, emb, times, regions, est)
        hyps["true"] += peer_turns(rec, emb, times, regions, true)
        log(f"  peer: clustered {i + 1}/{len(recs)} {rec['id']} ({len(emb)} d-vectors)")
    start = 0
    for name, items in utts.items():
        info[f"vectors_{name}"] = data["utt_emb"][start : start + len(items)].astype(np.float64)
        start += len(items)
    return hyps, info


# ------------------------------------------------------------------------------------ scoring


def score(recs: list[dict], hyp: list, ref: list, uem: dict) -> dict:
    from unspeech.diarize import score_turns

    report = score_turns(ref, hyp, uem, collar=0.25, skip_overlap=True)
    true = {r["id"]: r["speakers"] for r in recs}
    return {"der": report.total.der, "hyp_speakers": report.total.hyp_speakers, "ref_speakers": report.total.ref_speakers,
            "count_right": sum(f.hyp_speakers == true[f.file_id] for f in report.files), "recordings": len(report.files),
            "per_file": {f.file_id: {"der": f.der, "hyp": f.hyp_speakers, "ref": f.ref_speakers} for f in report.files}}


def _eer_cell(e: dict) -> str:
    return f"{100 * e['eer']:.2f} % ({100 * e['eer_plain_cosine']:.2f} %)"


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        f"Conversations: {meta['conversations']} ({meta['recordings']} recordings, {meta['audio_s']:.0f} s, "
        f"{meta['ref_speakers']} speaker-recording pairs); LibriSpeech pieces: {meta['libri_pieces']} x "
        f"{meta['piece_seconds']:g} s of {meta['libri_speakers']} held-out speakers ({meta['libri_too_short']} with a shorter utterance left out); FSDD: {meta['fsdd_utts']} recordings of "
        f"{meta['fsdd_speakers']} speakers. DER: collar 0.25 s, overlap not scored, oracle speech regions.",
        "",
        "| system | DER, count estimated | DER, true count | speakers found / true (recordings right) | "
        "EER LibriSpeech pieces, centred (plain) cosine | EER FSDD, centred (plain) cosine | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {100 * r['est']['der']:.2f} % | {100 * r['true']['der']:.2f} % | "
            f"{r['est']['hyp_speakers']} / {r['est']['ref_speakers']} ({r['est']['count_right']}/{r['est']['recordings']}) | "
            f"{_eer_cell(r['eer_librispeech'])} | {_eer_cell(r['eer_fsdd'])} | {r['wall_s']:.0f} |")
    failures = [r for r in rows if r["system"] == "peer"]
    if failures:
        lines += ["", f"Peer clustering failures (fallbacks used): {failures[0]['peer_failures']}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    global _quiet
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", required=True, help="folder with wav.scp, rttm, uem")
    parser.add_argument("--make-conversations", action="store_true",
                        help="create --conversations from the held-out LibriSpeech speakers when it does not exist")
    parser.add_argument("--num-conversations", type=int, default=20, help="with --make-conversations (default 20)")
    parser.add_argument("--conversation-speakers", type=int, nargs=2, default=(2, 4), metavar=("MIN", "MAX"),
                        help="speakers per conversation, with --make-conversations (default 2 4)")
    parser.add_argument("--conversation-seed", type=int, default=11, help="with --make-conversations (default 11)")
    parser.add_argument("--out", required=True, help="folder for results.json, results.md and work files")
    parser.add_argument("--model", help="context-model run dir (default: the bundled model)")
    parser.add_argument("--backend", default=None, help="unspeech diarizer backend (default: the Diarizer's)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"subset of {','.join(SYSTEMS)}")
    parser.add_argument("--peer-python", default=str(ROOT / "exp" / "peer_venv" / "bin" / "python"))
    parser.add_argument("--peer-rate", type=float, default=2.5, help="peer d-vectors per second (2.5 = every 0.4 s)")
    parser.add_argument("--peer-count-bounds", type=int, nargs=2, default=(2, 7), metavar=("MIN", "MAX"))
    parser.add_argument("--librispeech", default=LIBRISPEECH)
    parser.add_argument("--heldout", default=str(ROOT / "benchmarks" / "real_speech_heldout.txt"))
    parser.add_argument("--piece-seconds", type=float, default=3.0)
    parser.add_argument("--fsdd", default=FSDD)
    parser.add_argument("--fsdd-per-speaker", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0, help="seed of the FSDD draw")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the peer (default 1: on 2 busy cores, 2 threads ran 10x slower)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if args.backend is None:
        from unspeech.diarize import Diarizer

        args.backend = Diarizer().backend
    _quiet = args.quiet
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notes of the few padded batch shapes
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise SystemExit(f"--systems: unknown {', '.join(sorted(unknown))} (choose from {', '.join(SYSTEMS)})")
    if "peer" in systems and not os.access(args.peer_python, os.X_OK):
        raise SystemExit(f"{args.peer_python}: no peer python; run `bash benchmarks/setup_peer_venv.sh` or pass --peer-python")
    from unspeech import datadir
    from unspeech.diarize.embedders import bundled_model

    model = args.model or bundled_model()
    out = Path(args.out)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    conv = Path(args.conversations)
    if not conv.exists():
        if not args.make_conversations:
            raise SystemExit(f"{conv} does not exist (add --make-conversations to build it from the held-out speakers)")
        make_conversations(conv, args.num_conversations, args.conversation_speakers, args.conversation_seed, Path(args.heldout))

    t0 = time.perf_counter()
    recs = load_conversations(conv, work)
    ref, uem = datadir.read_rttm(conv / "rttm"), datadir.read_uem(conv / "uem")
    utts = {"librispeech": librispeech_pieces(Path(args.librispeech), Path(args.heldout), args.piece_seconds),
            "fsdd": fsdd_recordings(Path(args.fsdd), args.fsdd_per_speaker, args.seed)}
    log(f"data: {len(recs)} recordings, {len(utts['librispeech'])} LibriSpeech pieces, {len(utts['fsdd'])} FSDD "
        f"recordings ({time.perf_counter() - t0:.0f} s)")

    rows = []
    for system in systems:
        log(f"system {system}")
        t0 = time.perf_counter()
        if system == "peer":
            hyps, info = run_peer(recs, utts, args, work)
            vectors = {name: info.pop(f"vectors_{name}") for name in utts}
        else:
            name = "stats" if system == "stats" else model
            hyps, info = run_project(recs, name, args.backend)
            vectors = {k: project_vectors(items, name) for k, items in utts.items()}
        wall = time.perf_counter() - t0
        label = {"unspeech": f"unspeech ({Path(model).name}, {args.backend})", "stats": f"fbank statistics ({args.backend})",
                 "peer": "Resemblyzer d-vectors + spectralcluster"}[system]
        row = {"system": system, "label": label, "wall_s": wall, **info,
               "est": score(recs, hyps["est"], ref, uem), "true": score(recs, hyps["true"], ref, uem)}
        for name, items in utts.items():
            row[f"eer_{name}"] = eer_of(vectors[name], [u["speaker"] for u in items])
        rows.append(row)
        log(f"  {system}: DER est {100 * row['est']['der']:.2f} %, true count {100 * row['true']['der']:.2f} %, "
            f"speakers {row['est']['hyp_speakers']}/{row['est']['ref_speakers']}, EER libri "
            f"{100 * row['eer_librispeech']['eer']:.2f} %, fsdd {100 * row['eer_fsdd']['eer']:.2f} %, {wall:.0f} s")

    meta = {"conversations": str(conv), "recordings": len(recs), "audio_s": sum(len(r["samples"]) for r in recs) / SR,
            "ref_speakers": sum(r["speakers"] for r in recs), "libri_pieces": len(utts["librispeech"]),
            "libri_speakers": len({u["speaker"] for u in utts["librispeech"]}),
            "libri_too_short": len(Path(args.heldout).read_text().split()) - len({u["speaker"] for u in utts["librispeech"]}), "piece_seconds": args.piece_seconds,
            "fsdd_utts": len(utts["fsdd"]), "fsdd_speakers": len({u["speaker"] for u in utts["fsdd"]}),
            "model": model, "backend": args.backend, "peer_rate": args.peer_rate,
            "peer_count_bounds": list(args.peer_count_bounds), "seed": args.seed, "command": " ".join(sys.argv)}
    table = markdown(rows, meta)
    print(table, end="")
    (out / "results.md").write_text(table)
    (out / "results.json").write_text(json.dumps({"meta": meta, "systems": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
