"""``unspeech synth``: a synthetic multi-speaker corpus with ground truth (espeak-ng, flite, festival, sox).

Examples::

    unspeech synth utterances --out-dir data/synth_utts --num-speakers 20 --utts-per-speaker 10 --nj 2
    unspeech synth conversations --out-dir data/synth_conv --num-conversations 3 --speakers 2 4
"""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger("unspeech.synth")


def _common(p: argparse.ArgumentParser, default_speakers: int) -> None:
    p.add_argument("--out-dir", required=True, help="output directory (created)")
    p.add_argument("--num-speakers", type=int, default=default_speakers,
                   help=f"number of synthetic speakers (pool size for conversations; default {default_speakers})")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same corpus (default 0)")
    p.add_argument("--nj", type=int, default=1, help="parallel synthesis jobs (default 1)")
    p.add_argument("--engines", default=None,
                   help="comma-separated subset of espeak-ng,flite,festival (default: all installed)")
    p.add_argument("--snr-db", type=float, nargs=2, default=(15.0, 30.0), metavar=("LOW", "HIGH"),
                   help="range of the drawn signal-to-noise ratio in dB (default 15 30)")
    p.add_argument("--clean", action="store_true", help="no channel variation (EQ, reverb, noise)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or log lines")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="product", required=True, metavar="{utterances,conversations}")
    utts = sub.add_parser("utterances", help="a Kaldi data dir of single-speaker utterances")
    _common(utts, 6)
    utts.add_argument("--utts-per-speaker", type=int, default=4, help="utterances per speaker (default 4)")
    utts.add_argument("--format", choices=("flac", "wav"), default="flac", help="audio format (default flac)")
    conv = sub.add_parser("conversations", help="multi-speaker recordings + reference RTTM/UEM")
    _common(conv, 8)
    conv.add_argument("--num-conversations", type=int, default=3, help="recordings (default 3)")
    conv.add_argument("--speakers", type=int, nargs=2, default=(2, 4), metavar=("MIN", "MAX"),
                      help="speakers per conversation, within 2..6 (default 2 4)")
    conv.add_argument("--turns", type=int, default=10, help="turns per conversation (default 10)")
    conv.add_argument("--overlap-prob", type=float, default=0.15,
                      help="probability that a turn overlaps the previous speech (default 0.15)")
    conv.add_argument("--pause", type=float, nargs=2, default=(0.2, 1.0), metavar=("MIN", "MAX"),
                      help="pause between turns in seconds (default 0.2 1.0)")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from unspeech import synth

    engines = None if args.engines is None else [e.strip() for e in args.engines.split(",") if e.strip()]
    bar = tqdm(total=None, unit="utt", desc=f"synth {args.product}", disable=args.quiet, dynamic_ncols=True)

    def _progress(done: int, total: int) -> None:
        if bar.total is None:
            bar.total = total
        bar.update(done - bar.n)

    common = dict(seed=args.seed, nj=args.nj, engines=engines, snr_db=tuple(args.snr_db),
                  channel_variation=not args.clean, progress=_progress)
    try:
        if args.product == "utterances":
            summary = synth.synthesize_utterances(
                args.out_dir, num_speakers=args.num_speakers, utts_per_speaker=args.utts_per_speaker,
                audio_format=args.format, **common)
        else:
            summary = synth.synthesize_conversations(
                args.out_dir, num_conversations=args.num_conversations, num_speakers=args.num_speakers,
                speakers_per_conversation=tuple(args.speakers), turns_per_conversation=args.turns,
                overlap_prob=args.overlap_prob, pause_s=tuple(args.pause), **common)
    finally:
        bar.close()
    logger.info("wrote %d utterances of %d speakers in %d recordings (%.1f s of audio) to %s",
                summary.num_utterances, summary.num_speakers, summary.num_recordings, summary.seconds,
                summary.out_dir)
    return 0
