"""``unspeech fbank``: audio (a wav.scp or a folder of wav/flac files) → Kaldi fbank data dir.

Examples::

    unspeech fbank --wav-dir my_wavs/ --out-dir data/mine            # one command, folder in
    unspeech fbank --wav-scp data/train/wav.scp --segments data/train/segments \\
        --utt2spk data/train/utt2spk --out-dir data/train_fbank --nj 4 --speed-perturb
"""

from __future__ import annotations

import argparse
import logging
import os

logger = logging.getLogger("unspeech.fbank")


def add_arguments(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument("--dither", type=float, default=0.0,
                        help="dither on the 16-bit scale (Kaldi default 1.0); 0 = reproducible (default)")
    parser.add_argument("--num-bins", type=int, default=40, help="mel bins / feature dim (default 40)")
    parser.add_argument("--compress", action="store_true", help="Kaldi-compress the matrices")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or log lines")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from unspeech import audio
    from unspeech.fbank import make_fbank_datadir

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
            speed_perturb=args.speed_perturb, progress=_progress, dither=args.dither,
            num_bins=args.num_bins, compress=args.compress, always_include_prefix=args.always_include_prefix,
            plain_audio_paths=args.plain_audio_paths, absolute_paths=not args.relative_paths, text=args.text,
        )
    finally:
        bar.close()
    logger.info("wrote %d utterances of %d speakers (%d frames, %.1f s of audio) to %s",
                summary.num_utterances, summary.num_speakers, summary.num_frames, summary.seconds,
                os.path.join(args.out_dir, "feats.scp"))
    return 0
