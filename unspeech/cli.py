"""The ``unspeech`` console entry point.

Each subcommand lives in ``unspeech/commands/<name>.py`` and provides
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when their
command runs, so ``unspeech cluster`` never pays for TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Sequence

# NumPy asks the kernel to back each large array with huge pages (madvise). Where transparent huge
# pages run with defrag=madvise (the default of several distributions) and memory is fragmented,
# every first touch of such an array can stall in direct compaction: on the 2-core test machine that
# cost 9 s of a 59 s million-vector `cluster.py` run (benchmarks/RESULTS.md). The commands run
# without the advice unless the user sets NUMPY_MADVISE_HUGEPAGE=1 (read when NumPy is imported,
# which this module does not do).
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

from unspeech.command_parser import CommandParser
from unspeech.errors import UnspeechError

DESCRIPTION = (
    "Speaker and channel embeddings learned from unlabeled speech, for Kaldi users: audio -> fbank features -> "
    "context embeddings (Kaldi ivector_online features) -> utterance clusters (pseudo speakers) or "
    "speaker diarization (RTTM). Start with `unspeech diarize my.wav -o out/` or `unspeech fbank --wav-dir DIR "
    "--out-dir data/mine`."
)

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "fbank": ("unspeech.commands.fbank", "audio (wav.scp / folder) -> Kaldi fbank feats.ark/scp"),
    "synth": ("unspeech.commands.synth", "generate a synthetic multi-speaker corpus with ground truth"),
    "train": ("unspeech.commands.train", "train the context model (same flags as unsup_model_neg.py)"),
    "gen-feat": ("unspeech.commands.gen_feat", "export embeddings as Kaldi features (ivector_online)"),
    "cluster": ("unspeech.commands.cluster", "cluster utterances into pseudo-speakers (same flags as cluster.py)"),
    "uisrnn": ("unspeech.commands.uisrnn", "train / apply the supervised UIS-RNN diarization stage"),
    "export": ("unspeech.commands.export", "write a run's towers to RUN/model.onnx (inference without TensorFlow)"),
    "train-head": ("unspeech.commands.train_head", "fit a context model's speaker head (pseudo-labels, no speaker labels)"),
    "diarize": ("unspeech.commands.diarize", "audio in, RTTM out"),
    "score": ("unspeech.commands.score", "DER / JER of hypothesis RTTM against reference RTTM"),
}


def _load(name: str):
    module, _ = COMMANDS[name]
    return importlib.import_module(module)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``unspeech <command> ...``; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="unspeech", description=DESCRIPTION)
    parser.add_argument("command", choices=sorted(COMMANDS), help="subcommand")
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        print("\ncommands:")
        for name, (_, text) in sorted(COMMANDS.items()):
            print(f"  {name:10s} {text}")
        print("\n`unspeech COMMAND --help` lists a command's main options, --help-all every option.")
        return 0 if argv else 2
    name = argv[0]
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r}; choose from {', '.join(sorted(COMMANDS))}")
    module = _load(name)
    sub = CommandParser(prog=f"unspeech {name}", description=COMMANDS[name][1])
    module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    return run_command(f"unspeech {name}", module.run, args)


class _ConsoleHandler(logging.StreamHandler):
    """Log lines to stderr through ``tqdm.write``: printed above a running progress bar, not into it."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # pragma: no cover - logging's own policy
            self.handleError(record)


def _console_logging(level: int) -> None:
    """Log records of ``level`` and above to the console, as logging.basicConfig would (and, like it,
    nothing when the caller has configured logging). The level sits on the handler too, so that a
    logger lowered for a log file (training's RUN/train.log) does not reach the console."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _ConsoleHandler)]
    if root.handlers and not ours:
        return
    if not ours:
        ours = [_ConsoleHandler(sys.stderr)]
        ours[0].setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
        root.addHandler(ours[0])
    ours[0].setLevel(level)
    root.setLevel(level)


def run_command(prog: str, func, args) -> int:
    """Call ``func(args)``; turn user errors into one line on stderr and exit code 1."""
    from unspeech.extras import quiet_tensorflow_on_import

    quiet_tensorflow_on_import()  # TensorFlow's start-up lines stay off the console, if it is loaded at all
    _console_logging(logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    try:
        code = func(args)
    except UnspeechError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # disk full, no permission, a vanished file: one line, not a traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(f"{prog}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
