"""DER over several draws of `real_speech_bench.py` at once: each system's errors summed over every recording.

One draw is 20 recordings, where one recording with a wrong speaker count moves the DER by a point or
two; pooling the draws (each recording weighted by its scored speech, as a DER over one long list of
files) gives the figure with the least noise.

    python benchmarks/real_speech_pool.py --run exp/real_convs exp/rb_a --run exp/real_convs_s12 exp/rb_b

Prints one line per system: pooled DER with the count estimated (recordings with the right count)
and with the true count.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def scored_seconds(conversations: Path) -> dict[str, float]:
    """Reference speech each recording is scored on (collar 0.25 s, overlap not scored), as the bench scores."""
    from unspeech.datadir import read_rttm, read_uem
    from unspeech.diarize import score_turns

    ref = read_rttm(conversations / "rttm")
    report = score_turns(ref, ref, read_uem(conversations / "uem"), collar=0.25, skip_overlap=True)
    return {f.file_id: f.scored for f in report.files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs=2, action="append", metavar=("CONVERSATIONS", "OUT"), required=True,
                        help="a draw's conversations folder and the bench's --out folder (repeat per draw)")
    args = parser.parse_args()
    totals: dict[str, dict] = {}
    for conversations, out in args.run:
        scored = scored_seconds(Path(conversations))
        for system in json.loads((Path(out) / "results.json").read_text())["systems"]:
            entry = totals.setdefault(system["label"], {"est": [0.0, 0.0], "true": [0.0, 0.0], "right": 0, "files": 0})
            for kind in ("est", "true"):
                for file_id, f in system[kind]["per_file"].items():
                    entry[kind][0] += f["der"] * scored[file_id]
                    entry[kind][1] += scored[file_id]
                    if kind == "est":
                        entry["right"] += f["hyp"] == f["ref"]
                        entry["files"] += 1
    print(f"{len(args.run)} draws pooled (DER: collar 0.25 s, overlap not scored, oracle speech regions)")
    print("| system | DER, count estimated | DER, true count | recordings with the right count |")
    print("|---|---|---|---|")
    for label, t in totals.items():
        print(f"| {label} | {100 * t['est'][0] / t['est'][1]:.2f} % | {100 * t['true'][0] / t['true'][1]:.2f} % | "
              f"{t['right']}/{t['files']} |")


if __name__ == "__main__":
    main()
