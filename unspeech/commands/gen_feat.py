"""``unspeech gen-feat``: export a trained run's embeddings as Kaldi features (same flags as
``unsup_model_neg.py --gen_feat``)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from unspeech.command_parser import set_brief
    from unspeech.context.config import add_config_arguments
    from unspeech.context.export import add_export_arguments

    parser.epilog = (
        "Architecture flags are optional: they are read from TRAIN_DIR/config.json, and any given "
        "one must match it. Example: unspeech gen-feat --train_dir RUN --filelist data/dev/feats.scp "
        "--output_feat_file exp/dev/ivector_online"
    )
    add_config_arguments(parser)
    add_export_arguments(parser)
    set_brief(parser, BRIEF)


# what --help shows (--help-all: every flag, the training ones included)
BRIEF = ("train_dir", "filelist", "output_feat_file", "checkpoint", "genfeat_stride", "generate_speaker_vectors",
         "output_format", "nj", "runtime", "quiet", "gen_feat")


def run(args: argparse.Namespace) -> int:
    from unspeech.context.config import given_options
    from unspeech.context.export import gen_feat, options_from_args
    from unspeech.errors import ConfigError

    opts = options_from_args(args)
    given = given_options(args)
    if not opts.merge:
        for name in ("train_dir", "filelist"):
            if not given.get(name):
                raise ConfigError(f"--{name} is required for feature export")
    summary = gen_feat(given.get("train_dir", ""), given.get("filelist", ""), opts, given=given)
    for path in summary.get("outputs", []):
        print(path)
    if "accuracy" in summary:
        print(f"context accuracy {summary['accuracy']:.4f} (majority baseline {summary['majority_baseline']:.4f}, "
              f"{summary['pairs']} pairs)")
    return 0
