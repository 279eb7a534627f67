"""The default install runs without TensorFlow: diarize, gen-feat and cluster.py on ONNX Runtime and
NumPy give the TensorFlow path's results; commands that need TensorFlow say which extra to install,
before creating any file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from light_env import run_cli_without_tf, run_python_without_tf
from unspeech import datadir, kaldi_io

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "unspeech" / "models" / "unspeech_dnn_w32_libri200"
DEMO_UTTS = REPO / "data" / "demo_utts" / "feats.ark"
CONV = REPO / "data" / "demo_conversations" / "wav" / "conv000.flac"


def _one_error_line(proc) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.slow
def test_diarize_without_tensorflow_equals_the_tensorflow_path(tmp_path):
    pytest.importorskip("tensorflow")
    from unspeech.diarize import Diarizer

    light = run_cli_without_tf(["diarize", str(CONV), "-o", str(tmp_path / "light"), "--quiet"], cwd=tmp_path)
    assert light.returncode == 0, light.stderr
    hyp = datadir.read_rttm(tmp_path / "light" / "conv000.rttm")
    heavy = Diarizer(runtime="keras")(CONV)  # the same defaults, the checkpoint through TensorFlow
    assert [(t.onset, t.duration, t.speaker) for t in hyp] == [(t.onset, t.duration, t.speaker) for t in heavy]
    assert len({t.speaker for t in hyp}) >= 2


def test_gen_feat_without_tensorflow_equals_the_tensorflow_path(tmp_path):
    pytest.importorskip("tensorflow")
    from unspeech.context.export import GenFeatOptions, gen_feat

    argv = [sys.executable, "unsup_model_neg.py", "--gen_feat", "--train_dir", str(MODEL), "--filelist", str(DEMO_UTTS),
            "--output_feat_file", str(tmp_path / "light" / "ivector_online"), "--quiet"]
    code = f"import runpy\nsys.argv = {argv[1:]!r}\nrunpy.run_path({str(REPO / 'unsup_model_neg.py')!r}, run_name='__main__')"
    proc = run_python_without_tf(code, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    gen_feat(str(MODEL), str(DEMO_UTTS), GenFeatOptions(output_feat_file=str(tmp_path / "tf" / "ivector_online"),
                                                        runtime="keras", quiet=True))
    light = dict(kaldi_io.iter_mats(str(tmp_path / "light" / "ivector_online.scp")))
    heavy = dict(kaldi_io.iter_mats(str(tmp_path / "tf" / "ivector_online.scp")))
    assert list(light) == list(heavy) and len(light) > 100
    for utt in heavy:
        np.testing.assert_allclose(light[utt], heavy[utt], atol=1e-4, rtol=0)
    assert (tmp_path / "light" / "ivector_period").read_text().strip() == "10"


def test_cluster_py_without_tensorflow(tmp_path):
    from unspeech.cluster.synthetic import make_speaker_vectors

    X, y = make_speaker_vectors(5, 12, 20, random_state=3)
    ids = [f"s{lab}-{i:03d}" for i, lab in enumerate(y)]
    kaldi_io.write_mats(tmp_path / "vec.ark", zip(ids, X))
    code = (f"import runpy\nsys.argv = ['cluster.py', '-i', {str(tmp_path / 'vec.ark')!r}, '--utt2spk', 'none', "
            f"'--output_utt2spk', {str(tmp_path / 'utt2spk')!r}, '-q']\n"
            f"runpy.run_path({str(REPO / 'cluster.py')!r}, run_name='__main__')")
    proc = run_python_without_tf(code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    found = datadir.read_utt2spk(tmp_path / "utt2spk")
    assert sorted(found) == sorted(ids) and len(set(found.values())) == 5


def test_training_without_tensorflow_names_the_extra_and_writes_nothing(tmp_path):
    for argv in (["train", "--filelist", str(DEMO_UTTS), "--train_dir", str(tmp_path / "runs")],
                 ["export", str(MODEL), "-o", str(tmp_path / "x.onnx")]):
        line = _one_error_line(run_cli_without_tf(argv, cwd=tmp_path))
        assert "pip install 'unspeech[train]'" in line, line
    proc = run_python_without_tf("from unspeech import uisrnn\nargs = uisrnn.default_arguments()\n"
                                 "uisrnn.UISRNN(args[0]).fit([], [], args[1])")
    assert "unspeech[train]" in proc.stderr
    assert sorted(os.listdir(tmp_path)) == []


def test_missing_inputs_are_reported_before_any_model_loads(tmp_path):
    for argv in (["diarize", str(tmp_path / "missing.wav"), "-o", str(tmp_path / "out")],
                 ["gen-feat", "--train_dir", str(MODEL), "--filelist", str(tmp_path / "missing.ark"),
                  "--output_feat_file", str(tmp_path / "out" / "ivector_online")]):
        line = _one_error_line(run_cli_without_tf(argv, cwd=tmp_path))
        assert "missing" in line and ("does not exist" in line or "not found" in line), line
    assert not (tmp_path / "out").exists()


def test_every_command_helps_without_tensorflow():
    from unspeech.cli import COMMANDS

    for name in sorted(COMMANDS):
        proc = run_cli_without_tf([name, "--help"])
        assert proc.returncode == 0 and "usage: unspeech" in proc.stdout, (name, proc.stderr[-500:])
