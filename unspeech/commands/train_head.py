"""``unspeech train-head RUN_DIR FEATURES``: fit the speaker head of a trained context model.

The head (:mod:`unspeech.context.speaker_head`) is a small network on the context model's rows,
trained with one pseudo-label per training utterance (no speaker labels), and saved as
``RUN_DIR/speaker_head.npz``. ``unspeech diarize`` and the ``Diarizer`` use it by default.
Needs TensorFlow (the ``train`` extra); a few minutes on two CPU cores for a few hours of speech.

Examples::

    unspeech train-head exp/run1 data/train/feats.scp
    unspeech train-head exp/run1 data/train/feats.scp --utt2class data/train/utt2class --epochs 30
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="training run directory of the context model (config.json + checkpoints or model.onnx)")
    parser.add_argument("features", help="training fbank features: feats.scp, an ark, or a Kaldi rspecifier")
    parser.add_argument("--utt2class", metavar="FILE",
                        help="'<utterance> <class>' per line: copies of one recording that keep its voice (a narrow-band "
                             "or noisy copy) share a class (default: every utterance is a class of its own)")
    parser.add_argument("--step", type=int, default=10,
                        help="frames between rows, as `unspeech diarize --step` (default 10 = 100 ms)")
    parser.add_argument("--context", type=int, default=2, help="neighbouring rows seen on each side (default 2)")
    parser.add_argument("--dim", type=int, default=128, help="output embedding size (default 128)")
    parser.add_argument("--hidden-units", "--hidden_units", dest="hidden_units", type=int, default=512,
                        help="hidden layer width (default 512)")
    parser.add_argument("--loss", choices=("am-softmax", "softmax"), default="am-softmax",
                        help="training loss: am-softmax (additive-margin cosine classifier, default) or softmax")
    parser.add_argument("--epochs", type=int, default=20, help="passes over the training rows (default 20)")
    parser.add_argument("--members", type=int, default=1,
                        help="networks trained from seeds SEED, SEED+1, ... and joined (an ensemble: the cosine of "
                             "two rows is the mean of the members'; default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("-o", "--output", default=None, help="output file (default: RUN_DIR/speaker_head.npz)")
    parser.add_argument("--runtime", choices=("auto", "onnx", "keras"), default="auto",
                        help="runtime of the context model (default auto)")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors")


def run(args: argparse.Namespace) -> int:
    import os

    from unspeech.diarize.embedders import check_model_dir, resolve_model
    from unspeech.errors import ConfigError
    from unspeech.extras import quiet_tensorflow, require_tensorflow
    from unspeech.kaldi_io import check_rspecifier_exists

    run_dir = resolve_model(args.run_dir)
    if run_dir == "stats":
        raise ConfigError("train-head needs a context model's run directory, not 'stats'")
    if not os.path.isdir(run_dir):
        raise ConfigError(f"RUN_DIR {run_dir} does not exist (a training run directory of the context model)")
    check_model_dir(run_dir)
    check_rspecifier_exists(args.features, "FEATURES")
    if args.utt2class is not None and not os.path.isfile(args.utt2class):
        raise ConfigError(f"--utt2class {args.utt2class} does not exist")
    if args.output is not None and os.path.isdir(args.output):
        raise ConfigError(f"--output {args.output} is a directory; give a file name such as {args.output}/speaker_head.npz")
    require_tensorflow("unspeech train-head")
    quiet_tensorflow()
    from unspeech.context.speaker_head import fit_run_head

    head = fit_run_head(run_dir, args.features, utt2class=args.utt2class, period_frames=args.step,
                        runtime=args.runtime, output=args.output, context=args.context, dim=args.dim,
                        hidden_units=args.hidden_units, epochs=args.epochs, loss=args.loss, members=args.members,
                        random_state=args.seed,
                        verbose=0 if args.quiet else 1)
    print(args.output or os.path.join(run_dir, "speaker_head.npz"))
    if not args.quiet:
        print(f"{head.n_classes_} classes, {head.info_['rows']} rows, training accuracy {head.train_accuracy_:.3f}")
    return 0
