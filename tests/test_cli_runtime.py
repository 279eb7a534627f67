"""Process settings the command-line entry points make before NumPy loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "import unspeech.cli, numpy; print(numpy._core.multiarray._get_madvise_hugepage())"


@pytest.mark.parametrize("env_value, expected", [(None, "False"), ("1", "True"), ("0", "False")])
def test_numpy_huge_page_advice_is_off_unless_the_user_asks(env_value, expected):
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if env_value is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = env_value
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == expected
