"""``unspeech uisrnn``: train / apply the supervised UIS-RNN diarization stage on Kaldi arks.

Examples::

    unspeech uisrnn train --input-ark exp/ivector_online.scp --rttm data/train/ref.rttm \\
        --ivector_period 10 --model exp/uisrnn.npz --observation_dim 100 -t 5000
    unspeech uisrnn predict --input-ark exp/test_ivector_online.scp --model exp/uisrnn.npz \\
        --ivector_period 10 --output_rttm exp/hyp.rttm --output_labels exp/labels.txt
    unspeech uisrnn convert saved_model.uisrnn exp/uisrnn.npz        # a uisrnn (torch) model -> ours
    unspeech uisrnn convert exp/uisrnn.npz exp/uisrnn.pt --to uisrnn  # ours -> uisrnn's format

``predict`` and ``--init-model`` read both formats directly; neither needs torch.

All model / training / inference flags of the ``uisrnn`` library are accepted with the same
defaults (see ``unspeech uisrnn train --help``).
"""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger("unspeech.uisrnn")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input-ark", "--input_ark", dest="input_ark", required=True,
                        help="frame-level embeddings: ark, scp, ark:PATH, scp:PATH or 'ark:CMD |'")
    parser.add_argument("--ivector_period", "--ivector-period", dest="ivector_period", type=int, default=10,
                        help="frames (10 ms each) per embedding row (default 10)")
    parser.add_argument("--frame_shift", type=float, default=0.01, help="seconds per frame (default 0.01)")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from unspeech.uisrnn.arguments import build_parsers

    model_parser, training_parser, inference_parser = build_parsers()
    sub = parser.add_subparsers(dest="action", required=True, metavar="{train,predict,convert}")
    train = sub.add_parser("train", parents=[model_parser, training_parser],
                           help="train from embedding arks + RTTM turns")
    _common(train)
    train.add_argument("--rttm", required=True, help="reference RTTM (file ids = utterance ids)")
    train.add_argument("--model", required=True, help="where to save the model (.npz)")
    train.add_argument("--init-model", "--init_model", dest="init_model",
                       help="continue training this saved model")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    from unspeech.command_parser import set_brief

    # the library's 19 model/training flags stay behind --help-all; these are the ones a first run needs
    set_brief(train, ("input_ark", "rttm", "model", "init_model", "ivector_period", "observation_dim",
                      "rnn_hidden_size", "train_iteration", "learning_rate", "enforce_cluster_id_uniqueness",
                      "seed", "quiet"))

    predict = sub.add_parser("predict", parents=[inference_parser],
                             help="diarize embedding arks with a trained model")
    _common(predict)
    predict.add_argument("--model", required=True, help="saved model (.npz)")
    predict.add_argument("--output_rttm", "--output-rttm", dest="output_rttm", help="hypothesis RTTM to write")
    predict.add_argument("--output_labels", "--output-labels", dest="output_labels",
                         help="write '<utt> <label per row>' lines here")
    predict.add_argument("--num_processes", "--nj", dest="num_processes", type=int, default=1,
                         help="decode utterances in this many processes (default 1)")

    convert = sub.add_parser("convert", help="convert a model between the uisrnn library's (torch) format and ours")
    convert.add_argument("source", help="model saved by unspeech (.npz) or by the uisrnn library (torch.save)")
    convert.add_argument("target", help="where to write the converted model")
    convert.add_argument("--to", choices=["unspeech", "uisrnn"], default="unspeech",
                         help="format to write: 'unspeech' (.npz, default) or 'uisrnn' (torch.save file that "
                              "uisrnn.UISRNN.load reads)")
    convert.add_argument("--quiet", action="store_true", help="only warnings and errors")


def _split(args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The options of one group (``parser``) taken from the full command line namespace."""
    return argparse.Namespace(**{name: getattr(args, name) for name in vars(parser.parse_args([]))})


def run(args: argparse.Namespace) -> int:
    from unspeech.errors import ConfigError
    from unspeech.extras import require_tensorflow
    from unspeech.uisrnn import glue
    from unspeech.uisrnn.arguments import build_parsers
    from unspeech.uisrnn.model import UISRNN

    if args.action == "convert":
        from unspeech.uisrnn.model_io import convert_model

        source_format = convert_model(args.source, args.target, to=args.to)
        logger.info("converted %s (%s format) to %s (%s format)", args.source, source_format, args.target, args.to)
        return 0
    model_parser, training_parser, inference_parser = build_parsers()
    if args.action == "train":
        require_tensorflow("unspeech uisrnn train")  # before reading or writing anything
        model_args = _split(args, model_parser)
        if args.quiet:
            model_args.verbosity = min(model_args.verbosity, 1)
        training_args = _split(args, training_parser)
        model = None
        if args.init_model:
            model = UISRNN(model_args, seed=args.seed).load(args.init_model)
        model = glue.train_from_arks(args.input_ark, args.rttm, args.ivector_period, model_args, training_args,
                                     frame_shift=args.frame_shift, model=model, seed=args.seed)
        model.save(args.model)
        logger.info("saved UIS-RNN model to %s (transition_bias=%.4f)", args.model, model.transition_bias)
        return 0

    if not args.output_rttm and not args.output_labels:
        raise ConfigError("give --output_rttm and/or --output_labels: nothing would be written")
    model = UISRNN.from_file(args.model, verbosity=1 if args.quiet else 2)
    inference_args = _split(args, inference_parser)
    result = glue.predict_arks(model, args.input_ark, inference_args, args.ivector_period,
                               out_rttm=args.output_rttm, out_labels=args.output_labels,
                               frame_shift=args.frame_shift, num_processes=args.num_processes)
    logger.info("diarized %d utterances", len(result))
    return 0
