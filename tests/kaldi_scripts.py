"""Run Kaldi's own data-dir scripts (``../shared/kaldi-utils/utils``) against what the project writes.

The scripts are not part of the project: tests that use them skip when the folder is missing.
They run from a scratch "recipe" folder whose ``utils/`` mirrors the shared one through symlinks
(the shared copy stores Kaldi's in-tree symlinks, such as ``utils/data/combine_data.sh``, as small
text files naming their target; here they become real links). They need bash, perl, awk, sort,
join, cmp, diff and, for speed perturbation, sox.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

KALDI_UTILS = Path(__file__).resolve().parents[1].parent / "shared" / "kaldi-utils" / "utils"
_TOOLS = ("bash", "perl", "awk", "sort", "join", "cmp", "diff")

needs_kaldi_utils = pytest.mark.skipif(
    not KALDI_UTILS.is_dir() or not all(shutil.which(t) for t in _TOOLS),
    reason="needs Kaldi's utils/ in ../shared/kaldi-utils and bash/perl/coreutils",
)


def _link_target(path: Path) -> Path:
    """A file holding just a relative path to another file of the tree stands for a symlink."""
    if path.stat().st_size < 200:
        text = path.read_text(errors="replace").strip()
        if text and "\n" not in text and (path.parent / text).is_file():
            return (path.parent / text).resolve()
    return path


def make_recipe(root: Path) -> Path:
    """A folder with ``utils/`` (links into the shared copy) and an empty ``path.sh``; returns it."""
    root.mkdir(parents=True, exist_ok=True)
    for dirpath, _, files in os.walk(KALDI_UTILS):
        rel = Path(dirpath).relative_to(KALDI_UTILS)
        (root / "utils" / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            link = root / "utils" / rel / name
            if not link.exists():
                link.symlink_to(_link_target(Path(dirpath) / name))
    (root / "path.sh").write_text("")
    return root


def run_script(recipe: Path, *args: str | os.PathLike) -> subprocess.CompletedProcess:
    """Run ``bash utils/...`` in ``recipe`` with ``utils`` on PATH (as Kaldi's path.sh sets it)."""
    env = {**os.environ, "PATH": f"{recipe / 'utils'}{os.pathsep}{os.environ.get('PATH', '')}", "LC_ALL": "C"}
    return subprocess.run(["bash", *map(str, args)], cwd=recipe, env=env, capture_output=True, text=True)


def assert_valid(recipe: Path, data: Path, *flags: str) -> None:
    """``utils/validate_data_dir.sh [flags] data`` succeeds and ``fix_data_dir.sh`` keeps every utterance."""
    proc = run_script(recipe, "utils/validate_data_dir.sh", *flags, data)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    copy = recipe / "fixed" / data.name
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(data, copy, symlinks=True)
    before = (copy / "utt2spk").read_bytes()
    proc = run_script(recipe, "utils/fix_data_dir.sh", copy)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (copy / "utt2spk").read_bytes() == before, proc.stdout
    for name in ("wav.scp", "segments", "feats.scp", "utt2uniq", "utt2dur", "reco2dur", "spk2utt"):
        if (data / name).exists():
            assert (copy / name).read_bytes() == (data / name).read_bytes(), f"fix_data_dir.sh changed {name}"
