"""``unspeech diarize``: recordings in, RTTM (and the ``vad`` format, JSON, pictures) out.

Examples::

    unspeech diarize meeting.wav -o out/                          # out/meeting.rttm, meeting.vad
    unspeech diarize data/dev/wav.scp --segments data/dev/segments -o out/ --nj 4 --num_speakers 2
    unspeech diarize calls/ -o out/ --backend enroll --enroll alice.wav bob.wav --unknown-threshold 0.3
    unspeech diarize conv.flac -o out/ --plot --ref conv.rttm      # timeline picture, DER printed
    unspeech diarize talks/ -o out/ --count-rule threshold --threshold 0.4   # the old speaker-count rule

Inputs are audio files, folders (searched recursively for every format the reader takes:
wav, flac, ogg/opus, mp3, ...; see :data:`unspeech.audio.AUDIO_EXTENSIONS`) or Kaldi ``wav.scp``
files (``*.scp``), all converted to 16 kHz mono. Without ``--num_speakers`` the speaker count is
estimated per recording (``--count-rule``); the log names the model and the rule, and the count
of every recording. Every recording gets ``OUT/<id>.rttm`` (and ``.vad`` /
``.json`` / ``.png`` as asked); ``OUT/all.rttm`` holds every recording's turns. A recording that
fails is reported and the others go on; the exit code is 1 if any failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

logger = logging.getLogger("unspeech.diarize")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from unspeech.command_parser import set_brief
    from unspeech.context.towers import RUNTIMES
    from unspeech.diarize.clustering import COUNT_RULES
    from unspeech.diarize.outputs import OUTPUT_FORMATS
    from unspeech.diarize.pipeline import BACKENDS

    parser.add_argument("inputs", nargs="+", help="audio files, folders of audio files (wav, flac, ogg, mp3, ...), or wav.scp files")
    parser.add_argument("-o", "--out-dir", "--out_dir", required=True, help="folder for the outputs")
    parser.add_argument("--segments", help="Kaldi segments of a wav.scp: taken as the speech regions of each recording")
    parser.add_argument("--oracle-speech", "--oracle_speech", metavar="RTTM_OR_UEM",
                        help="take speech regions from a reference RTTM (union of turns) or a UEM instead of the VAD")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="who-is-who method (default: uisrnn with --uisrnn, enroll with --enroll/--profiles, else spectral)")
    parser.add_argument("--model", default=None,
                        help="context model: a training run directory, the name of a bundled model, or 'stats' "
                             "(windowed fbank statistics, a model-free baseline); default: the bundled model "
                             "(unspeech_dnn_w32_libri200, through ONNX Runtime)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="runtime of the context model: auto (default: MODEL/model.onnx through ONNX Runtime when it "
                             "matches the latest checkpoint, else TensorFlow), onnx, onnx-int8 (MODEL/model.int8.onnx "
                             "of `unspeech export --int8`: faster, not bit-equal) or keras (TensorFlow, the train extra)")
    parser.add_argument("--no-speaker-head", "--no_speaker_head", dest="speaker_head", action="store_false",
                        help="cluster the context model's own rows, not those of its speaker head (MODEL/speaker_head.npz, "
                             "used by default when the model has one; `unspeech train-head` fits one)")
    parser.add_argument("--step", type=int, default=10, help="frames between embeddings (default 10 = 100 ms)")
    parser.add_argument("--num_speakers", "--num-speakers", type=int, help="exact number of speakers")
    parser.add_argument("--min_speakers", "--min-speakers", type=int, help="at least this many speakers")
    parser.add_argument("--max_speakers", "--max-speakers", type=int, help="at most this many speakers")
    parser.add_argument("--count-rule", "--count_rule", dest="count_rule", choices=COUNT_RULES, default="consensus",
                        help="speaker count of ahc/spectral/enroll without --num_speakers: consensus (default; the "
                             "majority of 8 eigengap counts), eigengap (normalised maximum eigengap, NME-SC), relative "
                             "(AHC cut at 1.5x the recording's own within-turn distance) or threshold (the old fixed AHC "
                             "cut at --threshold)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="AHC cosine-distance cut of --count-rule threshold (default 0.5, tuned on synthetic voices)")
    parser.add_argument("--pool-rows", "--pool_rows", type=int, default=10,
                        help="average this many normalised embedding rows before clustering (default 10 = 1 s)")
    parser.add_argument("--min-cluster-size", "--min_cluster_size", type=int, default=20,
                        help="smallest speaker in embedding rows (default 20 = 2 s): smaller clusters and HDBSCAN noise "
                             "join the nearest speaker")
    parser.add_argument("--uisrnn", metavar="MODEL", help="UIS-RNN model file (backend uisrnn; implies it)")
    parser.add_argument("--enroll", nargs="+", metavar="WAV", help="enrollment audio, one speaker per file (backend enroll)")
    parser.add_argument("--profiles", metavar="RSPECIFIER", help="Kaldi ark/scp of speaker embeddings (backend enroll)")
    parser.add_argument("--unknown-threshold", "--unknown_threshold", type=float,
                        help="cosine similarity below which enrolled-speaker matching says 'unknown'")
    parser.add_argument("--smooth_size", "--smooth-size", type=int, default=83, help="label smoothing window, frames (83)")
    parser.add_argument("--dur_threshold", "--dur-threshold", type=int, default=10,
                        help="segments shorter than this many frames are merged or dropped (10)")
    parser.add_argument("--short-segments", "--short_segments", choices=("merge", "drop"), default="merge",
                        help="segments shorter than --dur-threshold: merge (default) gives each to the longer "
                             "neighbouring speaker, drop makes them non-speech")
    parser.add_argument("--vad-energy-threshold", "--vad_energy_threshold", type=float, default=1.0,
                        help="energy VAD: nats above the noise floor (or Kaldi's rule with --vad-reference mean)")
    parser.add_argument("--vad-reference", "--vad_reference", choices=("floor", "mean"), default="floor",
                        help="energy VAD threshold above: floor (default), the recording's noise floor, or mean, "
                             "Kaldi's compute-vad rule on the mean log energy (lets noise through on noisy audio)")
    parser.add_argument("--format", default="rttm,vad", help=f"comma list of {', '.join(OUTPUT_FORMATS)} (default rttm,vad)")
    parser.add_argument("--plot", action="store_true", help="write OUT/<id>.png timelines")
    parser.add_argument("--ref", metavar="RTTM", help="reference RTTM: drawn above the hypothesis and scored")
    parser.add_argument("--collar", type=float, default=0.25, help="scoring collar, md-eval seconds each side (0.25)")
    parser.add_argument("--nj", type=int, default=1, help="parallel worker processes (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    set_brief(parser, ("inputs", "out_dir", "backend", "model", "num_speakers", "min_speakers", "max_speakers",
                       "uisrnn", "enroll", "profiles", "format", "plot", "ref", "nj", "quiet"))


def _speech(args) -> dict | None:
    from unspeech import datadir
    from unspeech.diarize.batch import speech_from_segments
    from unspeech.errors import ConfigError

    if args.segments and args.oracle_speech:
        raise ConfigError("give either --segments or --oracle-speech, not both")
    if args.segments:
        return speech_from_segments(datadir.read_segments(args.segments))
    if args.oracle_speech:
        if args.oracle_speech.lower().endswith(".uem"):
            return datadir.read_uem(args.oracle_speech)
        spans: dict[str, list] = {}
        for t in datadir.read_rttm(args.oracle_speech):
            spans.setdefault(t.file_id, []).append((t.onset, t.onset + t.duration))
        return spans
    return None


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from unspeech import datadir
    from unspeech.diarize.batch import collect_inputs, diarize_batch
    from unspeech.diarize.embedders import check_model_dir, resolve_model
    from unspeech.diarize.vad import EnergyVAD
    from unspeech.errors import ConfigError

    backend = args.backend or ("uisrnn" if args.uisrnn else "enroll" if (args.enroll or args.profiles) else "spectral")
    if backend == "uisrnn" and not args.uisrnn:
        raise ConfigError("--backend uisrnn needs a trained UIS-RNN model: add --uisrnn MODEL, a file saved by "
                          "`unspeech uisrnn train` (or drop --backend for the default, spectral clustering)")
    params = dict(
        backend=backend, model=resolve_model(args.model), step=args.step, num_speakers=args.num_speakers,
        min_speakers=args.min_speakers, max_speakers=args.max_speakers, smooth_size=args.smooth_size,
        dur_threshold=args.dur_threshold, short_segments=args.short_segments, count_rule=args.count_rule,
        threshold=args.threshold,
        min_cluster_size=args.min_cluster_size, pool_rows=args.pool_rows, uisrnn=args.uisrnn, enroll=args.enroll, profiles=args.profiles,
        unknown_threshold=args.unknown_threshold, runtime=args.runtime,
        speaker_head=args.speaker_head,
        vad=EnergyVAD(energy_threshold=args.vad_energy_threshold, reference=args.vad_reference),
    )
    # flags, then the model folder, then the inputs: all before any audio is read or a runtime is loaded
    speech = _speech(args)
    if params["model"] != "stats":
        check_model_dir(params["model"])
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    recordings = collect_inputs(args.inputs)
    reference = datadir.read_rttm(args.ref) if args.ref else None
    out_dir = Path(args.out_dir)
    bar = tqdm(total=len(recordings), unit="rec", desc="diarize", disable=args.quiet, dynamic_ncols=True)

    def progress(done, total, result) -> None:
        bar.set_postfix(rtf=f"{result.real_time_factor:.4f}", failed=len(result.failed), refresh=False)
        bar.update(done - bar.n)

    def on_result(file_id, turns, duration) -> None:
        if args.plot:
            from unspeech.diarize.timeline_plot import save_timeline

            save_timeline(out_dir / f"{file_id}.png", turns, reference, file_id, duration or None, collar=args.collar)

    from unspeech._fileutil import output_lock

    with output_lock(out_dir, "diarize run"):  # one run per output folder
        try:
            result = diarize_batch(recordings, params, out_dir, formats, args.nj, speech, progress, on_result)
        finally:
            bar.close()
        all_turns = [t for rid in recordings if rid in result.turns for t in result.turns[rid]]
        datadir.write_rttm(out_dir / "all.rttm", all_turns)
    logger.info("%d recording(s), %.1f s of audio in %.1f s (real-time factor %.4f) -> %s (one file per recording) "
                "and %s (all of them)", len(result.turns), result.audio_seconds, result.elapsed, result.real_time_factor,
                out_dir / "<recording>.rttm", out_dir / "all.rttm")
    if reference is not None and result.turns:
        from unspeech.diarize.scoring import score_turns

        scored = [t for t in reference if t.file_id in result.turns]
        if scored:
            print(score_turns(scored, all_turns, collar=args.collar).to_text())
    if result.failed:
        for rid, message in result.failed.items():
            print(f"unspeech diarize: FAILED {rid}: {message}", file=sys.stderr)
        print(f"unspeech diarize: {len(result.failed)} of {len(recordings)} recording(s) failed", file=sys.stderr)
        return 1
    return 0
