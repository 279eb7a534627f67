"""A newcomer's console (issue 15): TensorFlow's runtime noise stays off it, real stderr output is kept,
and log lines print above a running progress bar instead of inside it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from unspeech.extras import is_tensorflow_noise, tensorflow_stderr_filtered

REPO = Path(__file__).resolve().parents[1]

NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796173677.565098   31728 port.cc:153] oneDNN custom operations are on. You may see "
    "slightly different numerical results due to floating-point round-off errors.",
    "I0000 00:00:1796173677.601187   31728 cpu_feature_guard.cc:227] This TensorFlow binary is optimized "
    "to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with "
    "the appropriate compiler flags.",
    "E0000 00:00:1796173686.779550   31728 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: "
    "Mutation::Apply error: fanout 'StatefulPartitionedCall/gradient_tape/x/LeakyReluGrad' exist for missing node",
]
KEPT = [
    "E0000 00:00:1796173686.779550   31728 meta_optimizer.cc:967] layout failed: something else",
    "W0000 00:00:1796173686.779550   31728 op_kernel.cc:1857] OP_REQUIRES failed: out of memory",
    "Traceback (most recent call last):",
]


@pytest.mark.parametrize("line", NOISE)
def test_noise_lines_are_recognised(line):
    assert is_tensorflow_noise(line)


@pytest.mark.parametrize("line", KEPT)
def test_other_lines_are_not_noise(line):
    assert not is_tensorflow_noise(line)


def test_filtered_block_replays_everything_but_the_noise(capfd):
    with pytest.raises(RuntimeError):
        with tensorflow_stderr_filtered():
            os.write(2, ("\n".join(NOISE + KEPT) + "\n").encode())
            print("from python", file=sys.stderr)
            raise RuntimeError("replayed on errors too")
    lines = capfd.readouterr().err.splitlines()
    assert [line for line in lines if line != "from python"] == KEPT and "from python" in lines


@pytest.mark.slow
def test_a_command_that_imports_tensorflow_prints_none_of_its_noise():
    """run_command arms the quiet import; a TensorFlow lookup first (require_tensorflow) does not disarm it."""
    pytest.importorskip("tensorflow")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    script = (
        "import sys\n"
        "from unspeech.cli import run_command\n"
        "from unspeech.extras import require_tensorflow\n"
        "def work(args):\n"
        "    require_tensorflow('this test')\n"
        "    import tensorflow, keras\n"
        "    print('loaded', file=sys.stderr)\n"
        "sys.exit(run_command('t', work, None))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and proc.stderr == "loaded\n", proc.stderr


@pytest.mark.parametrize("quiet", [True, False])
def test_quiet_keeps_info_lines_off_the_console_even_when_a_log_file_wants_them(quiet):
    script = (
        "import argparse, logging, sys\n"
        "from unspeech.cli import run_command\n"
        "def work(args):\n"
        "    logging.getLogger('unspeech').setLevel(logging.DEBUG)  # as training does for RUN/train.log\n"
        "    logging.getLogger('unspeech.demo').info('an info line')\n"
        "    logging.getLogger('unspeech.demo').debug('a debug line')\n"
        "    logging.getLogger('unspeech.demo').warning('a warning')\n"
        f"sys.exit(run_command('t', work, argparse.Namespace(quiet={quiet})))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert ("an info line" in proc.stderr) is not quiet and "a warning" in proc.stderr
    assert "a debug line" not in proc.stderr


def test_log_lines_do_not_land_inside_a_progress_bar():
    script = (
        "import logging, sys\n"
        "from unspeech.cli import run_command\n"
        "def work(args):\n"
        "    from tqdm import tqdm\n"
        "    bar = tqdm(total=2, desc='reading')\n"
        "    bar.update()\n"
        "    logging.getLogger('unspeech.demo').info('halfway')\n"
        "    bar.update(); bar.close()\n"
        "sys.exit(run_command('t', work, None))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    pieces = [p for p in re.split(r"[\r\n]", proc.stderr) if "halfway" in p]
    assert len(pieces) == 1 and "reading" not in pieces[0], repr(proc.stderr)
    assert re.match(r"\d{4}-\d\d-\d\d [\d:,]+ unspeech.demo INFO: halfway$", pieces[0]), pieces[0]
