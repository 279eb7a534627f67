"""``unspeech score``: DER (false alarm, missed speech, confusion) and JER of RTTM files.

Example::

    unspeech score --ref ref.rttm --hyp hyp.rttm --uem all.uem --collar 0.25 --skip-overlap

``--collar`` is md-eval's value: seconds forgiven on EACH side of every reference boundary
(pyannote.metrics' own ``collar`` argument is the total width; the conversion is done here).
Scores go to standard output as a table per file plus TOTAL; ``--json`` also writes them.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ref", required=True, help="reference RTTM")
    parser.add_argument("--hyp", required=True, help="hypothesis RTTM")
    parser.add_argument("--uem", help="UEM file: the scored regions (default: each file's extent in ref and hyp)")
    parser.add_argument("--collar", type=float, default=0.25,
                        help="seconds not scored on each side of reference boundaries, as md-eval -c (default 0.25)")
    parser.add_argument("--skip-overlap", action="store_true", help="do not score overlapped reference speech")
    parser.add_argument("--json", metavar="FILE", help="also write the scores as JSON")
    parser.add_argument("--quiet", action="store_true", help="no log lines")


def run(args: argparse.Namespace) -> int:
    import json

    from unspeech._fileutil import atomic_open
    from unspeech.diarize.scoring import score_rttm

    report = score_rttm(args.ref, args.hyp, args.uem, args.collar, args.skip_overlap)
    print(report.to_text())
    if args.json:
        with atomic_open(args.json) as fh:
            json.dump(report.to_dict(), fh, indent=1)
            fh.write("\n")
    return 0
