"""Command-line style configuration of UIS-RNN: model, training and inference options.

The three option groups, their flag names, short aliases and defaults are those of the
``uisrnn`` library, so scripts written for it parse the same command lines.
:func:`parse_arguments` reads ``sys.argv`` like the library does, or an explicit list.
"""

from __future__ import annotations

import argparse
from typing import Sequence

__all__ = ["str2bool", "build_parsers", "parse_arguments", "default_arguments"]

from unspeech.context.config import parse_bool as str2bool  # the project's one boolean-flag reader

DEFAULT_OBSERVATION_DIM = 256


def _model_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="UIS-RNN model options", add_help=False)
    group = parser.add_argument_group("model")
    group.add_argument("--observation_dim", type=int, default=DEFAULT_OBSERVATION_DIM,
                       help="dimension of each input embedding (e.g. a d-vector)")
    group.add_argument("--rnn_hidden_size", type=int, default=512,
                       help="units in each GRU layer and in the hidden dense layer")
    group.add_argument("--rnn_depth", type=int, default=1, help="number of stacked GRU layers")
    group.add_argument("--rnn_dropout", type=float, default=0.2,
                       help="dropout between stacked GRU layers (only used when rnn_depth >= 2)")
    group.add_argument("--transition_bias", type=float, default=None,
                       help="probability p0 of a speaker change between adjacent entries; "
                            "estimated from the training labels when not given")
    group.add_argument("--crp_alpha", type=float, default=1.0,
                       help="concentration of the Chinese-restaurant-process prior on new speakers")
    group.add_argument("--sigma2", type=float, default=None,
                       help="fixed observation variance per dimension; learned when not given")
    group.add_argument("--verbosity", type=int, default=3,
                       help="0 silent, 1 errors, 2 main steps and training loss, 3 details, 4+ debug")
    group.add_argument("--enable_cuda", type=str2bool, default=True,
                       help="use a GPU when TensorFlow sees one; false pins the model to the CPU")
    return parser


def _training_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="UIS-RNN training options", add_help=False)
    group = parser.add_argument_group("training")
    group.add_argument("--optimizer", "-o", default="adam", choices=["adam"], help="optimizer")
    group.add_argument("--learning_rate", "-l", type=float, default=1e-3, help="learning rate")
    group.add_argument("--learning_rate_half_life", type=int, default=0,
                       help="halve the learning rate every this many iterations (0: constant)")
    group.add_argument("--train_iteration", "-t", type=int, default=20000,
                       help="number of optimizer steps per fit() call")
    group.add_argument("--batch_size", "-b", type=int, default=10,
                       help="speaker sub-sequences per step (sampled with replacement)")
    group.add_argument("--num_permutations", type=int, default=10,
                       help="block-permuted copies made of each speaker's entries per sequence")
    group.add_argument("--sigma_alpha", type=float, default=1.0,
                       help="shape of the inverse-gamma prior on sigma2")
    group.add_argument("--sigma_beta", type=float, default=1.0,
                       help="scale of the inverse-gamma prior on sigma2")
    group.add_argument("--regularization_weight", "-r", type=float, default=1e-5,
                       help="weight of the L2-norm penalty on the network weights")
    group.add_argument("--grad_max_norm", type=float, default=5.0,
                       help="clip the network gradients to this global norm")
    group.add_argument("--enforce_cluster_id_uniqueness", type=str2bool, default=True,
                       help="when fit() gets a list of sequences, treat equal labels in different "
                            "sequences as different speakers")
    return parser


def _inference_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="UIS-RNN inference options", add_help=False)
    group = parser.add_argument_group("inference")
    group.add_argument("--beam_size", "-s", type=int, default=10, help="beam width of the search")
    group.add_argument("--look_ahead", type=int, default=1,
                       help="entries decided jointly in each beam-search step")
    group.add_argument("--test_iteration", type=int, default=2,
                       help="decode the sequence repeated this many times and keep the labels "
                            "of the last copy")
    group.add_argument("--num_speakers", type=int, default=None,
                       help="exact number of speakers in each sequence (default: decoded)")
    group.add_argument("--max_speakers", type=int, default=None,
                       help="at most this many speakers in each sequence (default: no limit)")
    group.add_argument("--running_mean", default="uisrnn", choices=["uisrnn", "training"],
                       help="which network outputs predict a speaker's next entry while decoding: 'uisrnn' "
                            "(default) as the uisrnn library's decoder, 'training' the mean of all outputs "
                            "as in the training loss (measured less accurate; see benchmarks/RESULTS.md)")
    return parser


def build_parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser, argparse.ArgumentParser]:
    """Return the ``(model, training, inference)`` parsers (``add_help=False``, usable as parents)."""
    return _model_parser(), _training_parser(), _inference_parser()


def parse_arguments(argv: Sequence[str] | None = None):
    """Parse UIS-RNN options into ``(model_args, training_args, inference_args)``.

    Parameters
    ----------
    argv : list of str, optional
        The arguments to parse; ``sys.argv[1:]`` when omitted (as in the ``uisrnn`` library).
        Unknown options are an error, reported by argparse (exit code 2).

    Returns
    -------
    tuple of three argparse.Namespace
        Each namespace holds only the options of its group.
    """
    model_parser, training_parser, inference_parser = build_parsers()
    combined = argparse.ArgumentParser(
        description="UIS-RNN options",
        parents=[model_parser, training_parser, inference_parser])
    # The combined parser rejects typos and prints --help for all groups.
    combined.parse_args(argv)
    model_args, _ = model_parser.parse_known_args(argv)
    training_args, _ = training_parser.parse_known_args(argv)
    inference_args, _ = inference_parser.parse_known_args(argv)
    return model_args, training_args, inference_args


def default_arguments(**overrides):
    """The default ``(model_args, training_args, inference_args)`` with some values replaced.

    ``default_arguments(observation_dim=2, train_iteration=100)`` puts each keyword into the
    namespace of its group; an unknown name raises ``TypeError``.
    """
    namespaces = parse_arguments([])
    for name, value in overrides.items():
        for namespace in namespaces:
            if hasattr(namespace, name):
                setattr(namespace, name, value)
                break
        else:
            raise TypeError(f"unknown UIS-RNN option {name!r}")
    return namespaces
