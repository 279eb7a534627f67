"""``unspeech fbank``: audio (a wav.scp or a folder of wav/flac files) → Kaldi fbank data dir.

Examples::

    unspeech fbank --wav-dir my_wavs/ --out-dir data/mine            # one command, folder in
    unspeech fbank --wav-scp data/train/wav.scp --segments data/train/segments \\
        --utt2spk data/train/utt2spk --out-dir data/train_fbank --nj 4 --speed-perturb
    unspeech fbank --wav-scp data/dev/wav.scp --out-dir data/dev_fbank \
        --fbank-config conf/fbank.conf --dither 0 --channel 1   # a recipe's Kaldi options; flags win
"""

from __future__ import annotations

import argparse
import logging
import os

logger = logging.getLogger("unspeech.fbank")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from unspeech.command_parser import set_brief

    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--wav-scp", help="Kaldi wav.scp: 'id path' or 'id command |' lines")
    src.add_argument("--wav-dir", help="folder of audio files (wav, flac, ogg, mp3, ...; searched recursively); ids are "
                     "the file names without extension; a wav.scp is written to --out-dir")
    parser.add_argument("--segments", help="Kaldi segments file (utt recording start end)")
    parser.add_argument("--utt2spk", help="utt2spk; without it each utterance is its own speaker")
    parser.add_argument("--text", help="Kaldi text (transcripts), copied to the output (also for perturbed copies)")
    parser.add_argument("--out-dir", required=True, help="output data dir: feats.ark/scp, "
                        "utt2num_frames, utt2spk, spk2utt, wav.scp, utt2dur, reco2dur (+ segments, utt2uniq)")
    parser.add_argument("--nj", type=int, default=1, help="parallel worker processes (default 1)")
    parser.add_argument("--speed-perturb", "--speed_perturb", action="store_true",
                        help="add sp0.9-/sp1.1- speed-perturbed copies exactly as Kaldi's "
                        "perturb_data_dir_speed_3way.sh (sox pipes in wav.scp, utt2uniq; needs sox)")
    parser.add_argument("--always-include-prefix", "--always_include_prefix", action="store_true",
                        help="with --speed-perturb: prefix the original data with sp1.0- too (Kaldi's option)")
    parser.add_argument("--plain-audio-paths", "--plain_audio_paths", action="store_true",
                        help="wav.scp lists flac/ogg/mp3 files as plain paths (for lhotse, torchaudio, ...) "
                        "instead of 'sox FILE -t wav -b 16 - |' pipes; Kaldi's binaries read only WAV and pipes")
    parser.add_argument("--relative-paths", "--relative_paths", action="store_true",
                        help="keep paths in feats.scp/wav.scp as given instead of absolute ones")
    parser.add_argument("--compress", action="store_true", help="Kaldi-compress the matrices")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    _add_fbank_options(parser)
    set_brief(parser, ("wav_scp", "wav_dir", "segments", "utt2spk", "text", "out_dir", "nj", "speed_perturb",
                       "compress", "quiet", "fbank_config", "fbank_num_mel_bins", "fbank_sample_frequency",
                       "fbank_dither", "fbank_channel"))


def _add_fbank_options(parser: argparse.ArgumentParser) -> None:
    """``--fbank-config`` and one flag per Kaldi fbank option (Kaldi's names; flags win over the file)."""
    from unspeech.fbank_options import FbankOptions

    group = parser.add_argument_group(
        "Kaldi fbank options", "as compute-fbank-feats takes them: --name=value (booleans also bare or "
        "'--name false'); given flags override --fbank-config, the rest keep the file's or the defaults "
        "(which are Kaldi's except --num-mel-bins 40 and --dither 0). The effective options are written to "
        "OUT_DIR/conf/fbank.conf")
    group.add_argument("--fbank-config", metavar="CONF",
                       help="Kaldi option file, e.g. conf/fbank.conf ('--name=value' lines, '#' comments)")
    group.add_argument("--fbank_config", dest="fbank_config", help=argparse.SUPPRESS)
    for name in FbankOptions.option_names():
        kind = FbankOptions.option_type(name)
        extra = {"nargs": "?", "const": "true", "metavar": "BOOL"} if kind == "bool" else {"metavar": kind.upper()}
        dest = f"fbank_{name.replace('-', '_')}"
        group.add_argument(f"--{name}", dest=dest, default=None, help=FbankOptions.option_help(name), **extra)
        hidden = [f"--{name.replace('-', '_')}"] if "-" in name else []
        if name == "num-mel-bins":
            hidden.append("--num-bins")  # the flag's earlier name
        for flag in hidden:  # other spellings parse the same, --help shows one
            group.add_argument(flag, dest=dest, default=None, help=argparse.SUPPRESS, **extra)


def fbank_options_from_args(args: argparse.Namespace):
    """The :class:`~unspeech.fbank_options.FbankOptions` of ``--fbank-config`` and the option flags."""
    from unspeech.fbank_options import FbankOptions

    given = {name: getattr(args, f"fbank_{name.replace('-', '_')}") for name in FbankOptions.option_names()}
    given = {name: value for name, value in given.items() if value is not None}
    if args.fbank_config:
        return FbankOptions.from_kaldi_config(args.fbank_config, overrides=given)
    return FbankOptions().with_kaldi_options(given)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from unspeech import audio
    from unspeech.errors import DataError
    from unspeech.fbank import make_fbank_datadir

    options = fbank_options_from_args(args)  # bad options fail before any audio is read
    wav_scp = args.wav_scp
    if args.wav_dir is not None:
        wav_scp = audio.find_audio_files(args.wav_dir)
        logger.info("found %d audio files in %s", len(wav_scp), args.wav_dir)
    elif args.segments is None and os.path.isfile(os.path.join(os.path.dirname(args.wav_scp), "segments")):
        logger.warning("a segments file lies next to %s but --segments was not given: "
                       "each recording becomes one utterance", args.wav_scp)

    bar = tqdm(total=None, unit="utt", desc="fbank", disable=args.quiet, dynamic_ncols=True)

    def _progress(done: int, total: int) -> None:
        if bar.total is None:
            bar.total = total
        bar.update(done - bar.n)

    try:
        summary = make_fbank_datadir(
            wav_scp, args.out_dir, segments=args.segments, utt2spk=args.utt2spk, nj=args.nj,
            speed_perturb=args.speed_perturb, progress=_progress, options=options,
            compress=args.compress, always_include_prefix=args.always_include_prefix,
            plain_audio_paths=args.plain_audio_paths, absolute_paths=not args.relative_paths, text=args.text,
            keep_going=True,
        )
    finally:
        bar.close()
    if summary.failed:
        for recording, reason in summary.failed.items():
            logger.error("left out %s: %s", recording, reason)
        raise DataError(
            f"{len(summary.failed)} recording(s) could not be read (listed above) and were left out; "
            f"{args.out_dir} is a complete data dir of the other {summary.num_utterances} utterance(s)")
    logger.info("wrote %d utterances of %d speakers (%d frames, %.1f s of audio) to %s",
                summary.num_utterances, summary.num_speakers, summary.num_frames, summary.seconds,
                os.path.join(args.out_dir, "feats.scp"))
    return 0
