"""Run the ``uisrnn`` library's own unittest files against ``unspeech.uisrnn``.

The files stay in ``../shared/peers/uis-rnn/tests`` (never copied into this repository): each
run copies them to a scratch folder, rewrites only the lines that import ``uisrnn`` so that
they import ``unspeech.uisrnn`` instead, and runs every file in a fresh interpreter, one after
the other, as the library's ``run_tests.sh`` does (``parse_arguments()`` reads ``sys.argv``,
which then holds only the file name).

Used by ``tests/uisrnn/test_uisrnn_peer_suite.py`` and ``benchmarks/uisrnn_conformance.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

PEER_ROOT = Path(__file__).resolve().parents[3] / "shared" / "peers" / "uis-rnn"
PEER_TESTS = PEER_ROOT / "tests"

_IMPORT = re.compile(r"^(\s*)import uisrnn\s*$")
_FROM = re.compile(r"^(\s*)from uisrnn((?:\.\w+)*) import (.+)$")

# Runs in the child interpreter: argv = result_json test_file [extra_sys_path]
_RUNNER = r"""
import importlib.util, json, sys, time, traceback, unittest
out, path = sys.argv[1], sys.argv[2]
if len(sys.argv) > 3:
    sys.path.append(sys.argv[3])  # after our own packages: only what we lack (torch) comes from there
sys.argv = [path]
outcomes, started = {}, time.perf_counter()
name = path.rsplit("/", 1)[-1][:-3]
try:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
except Exception:
    outcomes[name] = ["import error", traceback.format_exc(limit=3)]
else:
    def walk(item):
        if isinstance(item, unittest.TestSuite):
            for sub in item:
                yield from walk(sub)
        else:
            yield item
    ids = [test.id() for test in walk(suite)]  # before running: a suite drops its tests as it runs them
    result = unittest.TestResult()
    suite.run(result)
    failed = {t.id(): ("fail", tb) for t, tb in result.failures}
    failed.update({t.id(): ("error", tb) for t, tb in result.errors})
    failed.update({t.id(): ("skip", why) for t, why in result.skipped})
    for test_id in ids:
        outcomes[test_id] = list(failed.get(test_id, ("pass", "")))
with open(out, "w") as handle:
    json.dump({"outcomes": outcomes, "seconds": time.perf_counter() - started}, handle)
"""


def rewrite_imports(text: str) -> tuple[str, int]:
    """``text`` with ``import uisrnn`` / ``from uisrnn[.x] import y`` pointed at ``unspeech.uisrnn``.

    Returns the new text and the number of lines changed; no other line is touched.
    """
    lines, changed = [], 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        ending = line[len(body):]
        new = _IMPORT.sub(r"\1from unspeech import uisrnn", body)
        new = _FROM.sub(r"\1from unspeech.uisrnn\2 import \3", new)
        changed += new != body
        lines.append(new + ending)
    return "".join(lines), changed


def copy_suite(destination: Path) -> dict[str, int]:
    """Copy every ``*_test.py`` of the peer suite under ``destination`` with rewritten imports.

    Returns ``{relative path: number of rewritten lines}``.
    """
    rewritten = {}
    for source in sorted(PEER_TESTS.rglob("*_test.py")):
        relative = source.relative_to(PEER_TESTS)
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        text, changed = rewrite_imports(source.read_text(encoding="utf-8"))
        target.write_text(text, encoding="utf-8")
        rewritten[str(relative)] = changed
    return rewritten


def run_file(test_file: Path, python: str = sys.executable, extra_path: str | None = None,
             timeout: float = 900, cwd: Path | None = None) -> dict:
    """Run one test file in a fresh interpreter.

    Returns ``{"outcomes": {test id: [outcome, detail]}, "seconds": float, "wall": float}``
    with outcome one of pass / fail / error / skip / import error.
    """
    import time

    result_path = test_file.with_suffix(".result.json")
    argv = [python, "-c", _RUNNER, str(result_path), str(test_file)] + ([extra_path] if extra_path else [])
    env = dict(os.environ, PYTHONHASHSEED="0")
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd or test_file.parent, capture_output=True, text=True, timeout=timeout, env=env)
    wall = time.perf_counter() - started
    if proc.returncode != 0 or not result_path.exists():
        raise RuntimeError(f"{test_file.name}: the runner failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(result_path.read_text())
    result["wall"] = wall
    return result
