#!/usr/bin/env python3
"""Seed-compatible entry point of the utterance clustering tool (same as ``unspeech cluster``).

    python3 cluster.py --input-ark feats.ark --half_index 100 --output_utt2spk clustered_utt2spk \\
        --utt2spk none --mode cluster_speaker

``--help`` lists the main flags, ``--help-all`` every flag (each also with dashes: ``--output-utt2spk``).
No TensorFlow is imported on this path.
"""

from __future__ import annotations

import sys
from typing import Sequence

PROG = "cluster.py"


def main(argv: Sequence[str] | None = None) -> int:
    from unspeech.cli import run_command
    from unspeech.command_parser import CommandParser
    from unspeech.commands import cluster as command

    parser = CommandParser(prog=PROG, description=(command.__doc__ or "").splitlines()[0])
    command.add_arguments(parser)
    args = parser.parse_args(argv)
    return run_command(PROG, command.run, args)


if __name__ == "__main__":
    sys.exit(main())
