"""``unspeech export RUN_DIR``: write ``RUN_DIR/model.onnx``, the run's embedding towers for
inference without TensorFlow (ONNX Runtime). Training does this by itself at the end; run it
for older runs or after choosing another checkpoint.

Examples::

    unspeech export unspeech_models/runs/1700000000feats_transVgg16big...
    unspeech export RUN --checkpoint 12000 -o /tmp/step12000.onnx
    unspeech export RUN --int8          # + RUN/model.int8.onnx, for --runtime onnx-int8
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="training run directory (config.json + checkpoints/)")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint to export: a step number or a checkpoint prefix (default: the latest)")
    parser.add_argument("-o", "--output", default=None, help="output file (default: RUN_DIR/model.onnx)")
    parser.add_argument("--int8", action="store_true",
                        help="also write RUN_DIR/model.int8.onnx (int8 weights of the dense layers: faster on CPUs, "
                             "embeddings not bit-equal; used with --runtime onnx-int8)")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors")


def run(args: argparse.Namespace) -> int:
    import os

    from unspeech.context.rundir import CONFIG_NAME
    from unspeech.errors import ConfigError
    from unspeech.extras import require_onnx_export

    if not os.path.isdir(args.run_dir):
        raise ConfigError(f"run directory {args.run_dir} does not exist")
    if not os.path.isfile(os.path.join(args.run_dir, CONFIG_NAME)):
        raise ConfigError(f"{args.run_dir} is not a run dir of the context model (no {CONFIG_NAME})")
    if args.int8 and args.output is not None:
        raise ConfigError("--int8 quantizes RUN_DIR/model.onnx into RUN_DIR/model.int8.onnx: leave out --output")
    if args.output is not None and os.path.isdir(args.output):
        raise ConfigError(f"--output {args.output} is a directory; give a file name such as {args.output}/model.onnx")
    require_onnx_export()
    from unspeech.context.onnx_export import export_onnx
    from unspeech.extras import quiet_tensorflow

    quiet_tensorflow()
    checkpoint = int(args.checkpoint) if args.checkpoint is not None and args.checkpoint.isdigit() else args.checkpoint
    print(export_onnx(args.run_dir, checkpoint, args.output))
    if args.int8:
        from unspeech.context.onnx_export import quantize_int8

        print(quantize_int8(args.run_dir))
    return 0
