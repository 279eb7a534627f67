"""Every command in README.md runs as written, on the bundled data (so the README cannot rot).

Each fenced ``bash`` block is run with ``bash -euo pipefail`` and each ``python`` block with the
test interpreter, in order, in one scratch folder that holds links to the repository's ``data``,
``models``, ``scripts`` and entry points: commands write their outputs there, as a newcomer's
would in a checkout. A block preceded by ``<!-- readme-test: skip (reason) -->`` is not run
(set-up commands, GPU, `make test` itself); the reason must be given.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
_BLOCK = re.compile(r"(<!-- readme-test: skip \(([^)]+)\) -->\s*\n)?```(bash|python)\n(.*?)```", re.S)
_LINKS = ("data", "unspeech/models", "scripts", "unsup_model_neg.py", "cluster.py", "benchmarks")


def readme_blocks() -> list[tuple[str, str, str | None]]:
    """(language, code, skip reason or None) of every bash/python block, in README order."""
    return [(m.group(3), m.group(4), m.group(2)) for m in _BLOCK.finditer(README.read_text(encoding="utf-8"))]


def test_readme_has_runnable_blocks():
    blocks = readme_blocks()
    assert blocks, "README.md has no bash/python blocks"
    assert any(skip is None for _, _, skip in blocks)
    for _, _, skip in blocks:
        assert skip is None or skip.strip(), "a skipped README block must say why"


@pytest.mark.slow
def test_readme_commands_run_as_written(tmp_path):
    work = tmp_path / "checkout"
    work.mkdir()
    for name in _LINKS:
        if (ROOT / name).exists():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).symlink_to(ROOT / name)
    bindir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONUNBUFFERED="1",
               MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    ran = 0
    for i, (lang, code, skip) in enumerate(readme_blocks()):
        if skip is not None:
            continue
        code = code.replace("python3 ", f"{sys.executable} ")
        cmd = ["bash", "-euo", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
        res = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, f"README block {i} ({lang}) failed:\n{code}\n--- stderr:\n{res.stderr[-4000:]}"
        ran += 1
    assert ran >= 3
