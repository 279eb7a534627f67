"""The ``uisrnn`` library's own test files, run against ``unspeech.uisrnn`` with only the imports changed.

The files are read from ``../shared/peers/uis-rnn`` at test time (skipped where it is absent).
The integration test imports torch to seed it; it runs here only where torch is installed, and
``benchmarks/uisrnn_conformance.py`` runs it with torch borrowed from a reference venv.
"""

from __future__ import annotations

import ast
import importlib.util

import pytest

import peer_suite

pytestmark = pytest.mark.skipif(not peer_suite.PEER_TESTS.is_dir(),
                                reason=f"{peer_suite.PEER_TESTS} not found (../shared is absent)")

# file -> number of tests in it (29 in all)
EXPECTED = {
    "contrib/contrib_template_test.py": 1,
    "contrib/range_search_crp_alpha_test.py": 4,
    "evals_test.py": 7,
    "utils_test.py": 11,
    "uisrnn_test.py": 5,
    "integration_test.py": 1,
}


def _test_names(path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{cls.name}.{fn.name}" for cls in tree.body if isinstance(cls, ast.ClassDef)
            for fn in cls.body if isinstance(fn, ast.FunctionDef) and fn.name.startswith("test")]


def test_rewrite_touches_import_lines_only():
    text = "import uisrnn\nfrom uisrnn import utils\nfrom uisrnn.contrib import x\n  import uisrnn\nx = 'import uisrnn'\n"
    new, changed = peer_suite.rewrite_imports(text)
    assert changed == 4
    assert new == ("from unspeech import uisrnn\nfrom unspeech.uisrnn import utils\n"
                   "from unspeech.uisrnn.contrib import x\n  from unspeech import uisrnn\nx = 'import uisrnn'\n")


def test_copies_hold_the_29_tests_and_differ_only_in_imports(tmp_path):
    rewritten = peer_suite.copy_suite(tmp_path)
    assert set(rewritten) == set(EXPECTED)
    for relative, count in EXPECTED.items():
        source = (peer_suite.PEER_TESTS / relative).read_text(encoding="utf-8").splitlines()
        copy = (tmp_path / relative).read_text(encoding="utf-8").splitlines()
        assert len(source) == len(copy)
        differing = [(a, b) for a, b in zip(source, copy) if a != b]
        assert len(differing) == rewritten[relative] >= 1
        assert all(a.lstrip().startswith(("import uisrnn", "from uisrnn")) and "unspeech" in b for a, b in differing)
        assert len(_test_names(tmp_path / relative)) == count


def _run(tmp_path, relative):
    peer_suite.copy_suite(tmp_path)
    result = peer_suite.run_file(tmp_path / relative)
    failures = {name: detail for name, (outcome, detail) in result["outcomes"].items() if outcome != "pass"}
    assert not failures, "\n".join(f"{name}:\n{detail}" for name, detail in failures.items())
    assert len(result["outcomes"]) == EXPECTED[relative]


@pytest.mark.parametrize("relative", ["contrib/contrib_template_test.py", "contrib/range_search_crp_alpha_test.py",
                                      "evals_test.py", "utils_test.py"])
def test_numpy_level_files_pass(tmp_path, relative):
    _run(tmp_path, relative)


@pytest.mark.slow
def test_uisrnn_test_file_passes(tmp_path):
    """Five tests, four of which train (about 30 s with TensorFlow on 2 cores)."""
    pytest.importorskip("tensorflow")
    _run(tmp_path, "uisrnn_test.py")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="the integration test imports torch to seed it; benchmarks/uisrnn_conformance.py runs it")
def test_integration_file_passes(tmp_path):
    pytest.importorskip("tensorflow")
    _run(tmp_path, "integration_test.py")
