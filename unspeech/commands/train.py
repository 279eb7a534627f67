"""``unspeech train``: train or resume the context model (the flags of ``unsup_model_neg.py``).

Every flag comes from :class:`unspeech.context.config.ContextConfig`; ``--train_dir`` pointing
at an existing run dir (one with ``config.json``) resumes that run.
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("unspeech.commands.train")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from unspeech.command_parser import set_brief
    from unspeech.context.config import add_config_arguments

    parser.usage = "%(prog)s --filelist FEATS [options]   (see --help)"
    parser.description = (
        "Train the unspeech context model on Kaldi features: target windows, their left/right context "
        "windows (positive pairs) and windows of other utterances (negative pairs), two towers, dot product, "
        "logistic loss. A new run goes to TRAIN_DIR/runs/<timestamp><params>; pass a run dir as --train_dir "
        "to resume it. Ctrl-C saves a checkpoint."
    )
    add_config_arguments(parser)
    if "--quiet" not in parser._option_string_actions:
        parser.add_argument("--quiet", action="store_true", help="Only warnings and errors on the console.")
    set_brief(parser, BRIEF)


# what --help shows (--help-all: every flag)
BRIEF = ("filelist", "spk2utt", "train_dir", "memmap_dir", "embedding_transformation", "window_length",
         "window_neg_length", "left_contexts", "right_contexts", "embedding_size", "fc_size", "batch_size",
         "learn_rate", "max_steps", "seed", "quiet", "gen_feat")


def run(args: argparse.Namespace) -> int:
    from unspeech.context.config import config_from_args, given_options
    from unspeech.context.train import train

    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    config = config_from_args(args)
    result = train(config, given_options(args), progress=not getattr(args, "quiet", False))
    log.info("run dir: %s (step %d, %s)", result.run_dir, result.step, result.stop_reason)
    return 0
