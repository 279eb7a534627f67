#!/usr/bin/env python3
"""Seed-compatible entry point of the unspeech context model.

Training (default)::

    python3 unsup_model_neg.py --filelist feats.ark --embedding_transformation Vgg16big ...

Feature export: add ``--gen_feat`` (flags of ``unspeech gen-feat``). ``--help`` lists the main
flags, ``--help-all`` all of them; ``--gen_feat --help`` the export flags. Every flag also parses
with dashes (``--window-length``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from unspeech.command_parser import CommandParser

PROG = "unsup_model_neg.py"


class _Parser(CommandParser):
    """argparse with a one-line error (the full usage of ~60 flags would bury the message)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _wants_gen_feat(argv: Sequence[str]) -> bool:
    from unspeech.context.config import parse_bool

    value = False
    for i, arg in enumerate(argv):
        if arg.startswith(("--gen-feat", "--nogen-feat")):  # both spellings
            arg = "--" + arg[2:].replace("-", "_")
        if arg == "--gen_feat":
            value = True
            nxt = argv[i + 1] if i + 1 < len(argv) else ""
            if nxt.lower() in ("true", "false", "1", "0", "yes", "no"):
                value = parse_bool(nxt)
        elif arg.startswith("--gen_feat="):
            value = parse_bool(arg.split("=", 1)[1])
        elif arg == "--nogen_feat":
            value = False
    return value


def build_parser(argv: Sequence[str]):
    """The parser for ``argv`` and the command module that will run it: ``unspeech.commands.gen_feat``
    when ``--gen_feat`` is set, else ``unspeech.commands.train``. Raises ModuleNotFoundError when
    export is asked for but not installed."""
    from unspeech.context.config import parse_bool

    gen_feat = _wants_gen_feat(argv)
    module = importlib.import_module("unspeech.commands.gen_feat" if gen_feat else "unspeech.commands.train")
    parser = _Parser(prog=PROG, allow_abbrev=False)
    module.add_arguments(parser)
    if "--gen_feat" not in parser._option_string_actions:
        parser.add_argument("--gen_feat", nargs="?", const=True, type=parse_bool, default=False, metavar="BOOL",
                            help="Export features with a trained run instead of training (see --gen_feat --help).")
        parser.add_argument("--nogen_feat", dest="gen_feat", action="store_const", const=False, help=argparse.SUPPRESS)
    parser.usage = f"{PROG} [--gen_feat] --filelist FEATS [options]   (see --help)"
    if gen_feat:
        parser.help_all_hint = f"{PROG} --gen-feat --help-all"
    return parser, module


def main(argv: Sequence[str] | None = None) -> int:
    from unspeech.cli import run_command

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser, module = build_parser(argv)
    except ModuleNotFoundError as exc:
        if exc.name != "unspeech.commands.gen_feat":
            raise
        print(f"{PROG}: error: feature export (--gen_feat) is not available in this installation", file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    return run_command(PROG, module.run, args)


if __name__ == "__main__":
    sys.exit(main())
