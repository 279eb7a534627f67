"""``unspeech synth``: a synthetic multi-speaker corpus with ground truth (espeak-ng, flite, festival, sox).

Examples::

    unspeech synth utterances --out-dir data/synth_utts --num-speakers 20 --utts-per-speaker 10 --nj 2
    unspeech synth conversations --out-dir data/synth_conv --num-conversations 3 --speakers 2 4
    unspeech synth conversations --from-corpus LibriSpeech/train-clean-100 --out-dir exp/real_convs \
        --num-conversations 12 --speakers 2 4 --turns 14 --seed 11

``--from-corpus`` makes the conversations of real utterances of a Kaldi data dir or LibriSpeech
tree (:mod:`unspeech.corpus_conversations`) instead of TTS voices.
"""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger("unspeech.synth")


def _common(p: argparse.ArgumentParser, default_speakers: int) -> None:
    p.add_argument("--out-dir", required=True, help="output directory (created)")
    p.add_argument("--num-speakers", type=int, default=None,
                   help=f"number of synthetic speakers (pool size for conversations; default {default_speakers})")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same corpus (default 0)")
    p.add_argument("--nj", type=int, default=1, help="parallel synthesis jobs (default 1)")
    p.add_argument("--engines", default=None,
                   help="comma-separated subset of espeak-ng,flite,festival (default: all installed)")
    p.add_argument("--snr-db", type=float, nargs=2, default=(15.0, 30.0), metavar=("LOW", "HIGH"),
                   help="range of the drawn signal-to-noise ratio in dB (default 15 30)")
    p.add_argument("--clean", action="store_true", help="no channel variation (EQ, reverb, noise)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    p.add_argument("--plain-audio-paths", "--plain_audio_paths", action="store_true",
                   help="wav.scp lists the flac files as plain paths (for lhotse, torchaudio, ...) instead of "
                   "'sox FILE -t wav -b 16 - |' pipes, the only form Kaldi's binaries read")
    p.add_argument("--relative-paths", "--relative_paths", action="store_true",
                   help="wav.scp paths as --out-dir was given (a relocatable folder) instead of absolute ones")


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
    conv.add_argument("--overlap-prob", type=float, default=None,
                      help="probability that a turn overlaps the previous speech "
                           "(default 0.15; 0.1 with --from-corpus)")
    conv.add_argument("--pause", type=float, nargs=2, default=(0.2, 1.0), metavar=("MIN", "MAX"),
                      help="pause between turns in seconds (default 0.2 1.0)")
    real = conv.add_argument_group("real speech (--from-corpus)")
    real.add_argument("--from-corpus", "--from_corpus", metavar="DIR", default=None,
                      help="cut the turns from real utterances of a Kaldi data dir (wav.scp, utt2spk, optional "
                           "segments) or a LibriSpeech tree (<speaker>/<chapter>/*.flac), not TTS voices")
    real.add_argument("--turn-seconds", "--turn_seconds", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                      help="seconds of speech per turn (default 1.5 6)")
    real.add_argument("--gain-db", "--gain_db", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                      help="level of each speaker in a conversation, dB (default -6 0)")
    real.add_argument("--speaker-list", "--speaker_list", metavar="FILE", default=None,
                      help="only these corpus speakers (one id a line)")
    real.add_argument("--exclude-speakers", "--exclude_speakers", metavar="FILE", default=None,
                      help="never these corpus speakers (one id a line)")


_TTS_ONLY = {"engines": "--engines", "num_speakers": "--num-speakers"}
_CORPUS_ONLY = {"turn_seconds": "--turn-seconds", "gain_db": "--gain-db", "speaker_list": "--speaker-list",
                "exclude_speakers": "--exclude-speakers"}


def _given(args: argparse.Namespace, flags: dict[str, str]) -> list[str]:
    """The flags of ``flags`` (dest -> spelling) given on the command line (their defaults are None)."""
    return [flag for dest, flag in flags.items() if getattr(args, dest, None) is not None]


def _optional(args: argparse.Namespace, names: dict[str, str]) -> dict:
    """Keyword arguments (library name -> args dest) for the flags given; the library's defaults otherwise."""
    values = {name: getattr(args, dest, None) for name, dest in names.items()}
    return {name: tuple(v) if isinstance(v, list) else v for name, v in values.items() if v is not None}


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from unspeech import synth
    from unspeech.errors import ConfigError

    corpus = getattr(args, "from_corpus", None)
    if corpus is not None and _given(args, _TTS_ONLY):
        raise ConfigError(f"{', '.join(_given(args, _TTS_ONLY))}: TTS voices only; not with --from-corpus")
    if corpus is None and _given(args, _CORPUS_ONLY):
        raise ConfigError(f"{', '.join(_given(args, _CORPUS_ONLY))}: only with --from-corpus DIR")
    bar = tqdm(total=None, unit="conv" if corpus else "utt", desc=f"synth {args.product}", disable=args.quiet,
               dynamic_ncols=True)

    def _progress(done: int, total: int) -> None:
        if bar.total is None:
            bar.total = total
        bar.update(done - bar.n)

    common = dict(seed=args.seed, nj=args.nj, snr_db=tuple(args.snr_db), channel_variation=not args.clean,
                  progress=_progress, plain_audio_paths=args.plain_audio_paths, absolute_paths=not args.relative_paths,
                  **_optional(args, {"num_speakers": "num_speakers"}))
    if corpus is None:
        common["engines"] = None if args.engines is None else [e.strip() for e in args.engines.split(",") if e.strip()]
    try:
        if args.product == "utterances":
            summary = synth.synthesize_utterances(
                args.out_dir, utts_per_speaker=args.utts_per_speaker, audio_format=args.format, **common)
        else:
            conversations = dict(num_conversations=args.num_conversations,
                                 speakers_per_conversation=tuple(args.speakers), turns_per_conversation=args.turns,
                                 pause_s=tuple(args.pause), **_optional(args, {"overlap_prob": "overlap_prob"}))
            if corpus is None:
                summary = synth.synthesize_conversations(args.out_dir, **conversations, **common)
            else:
                from unspeech.corpus_conversations import simulate_conversations

                summary = simulate_conversations(
                    corpus, args.out_dir, speakers=args.speaker_list, exclude_speakers=args.exclude_speakers,
                    **_optional(args, {"turn_s": "turn_seconds", "gain_db": "gain_db"}), **conversations, **common)
    finally:
        bar.close()
    logger.info("wrote %d utterances of %d speakers in %d recordings (%.1f s of audio) to %s",
                summary.num_utterances, summary.num_speakers, summary.num_recordings, summary.seconds,
                summary.out_dir)
    return 0
