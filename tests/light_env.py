"""Run Python code or ``unspeech`` commands in a subprocess where TensorFlow cannot be imported.

``sys.modules[name] = None`` makes ``import name`` raise ``ImportError`` (and
``importlib.util.find_spec`` raise ``ValueError``), which is what a default install without the
``train`` extra looks like to the package.
"""

from __future__ import annotations

import os
import subprocess
import sys

BLOCKED = ("tensorflow", "keras", "tf_keras", "tensorboard")
_PRELUDE = "import sys\nfor _m in {!r}: sys.modules[_m] = None\n".format(BLOCKED)


def run_python_without_tf(code: str, cwd=None, timeout: float = 300, env=None) -> subprocess.CompletedProcess:
    """Run ``code`` with TensorFlow/Keras unimportable; returns the completed process (text output)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-c", _PRELUDE + code], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def run_cli_without_tf(argv: list[str], cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``unspeech ARGV...`` with TensorFlow/Keras unimportable."""
    code = f"from unspeech.cli import main\nsys.exit(main({list(argv)!r}))\n"
    return run_python_without_tf(code, cwd=cwd, timeout=timeout)
