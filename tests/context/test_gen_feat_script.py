"""scripts/gen_feat_kaldi.sh on a small Kaldi data tree, with local parallel jobs."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from unspeech import kaldi_io  # noqa: E402
from unspeech.context.config import ContextConfig  # noqa: E402
from unspeech.context.rundir import init_run  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_recipe_exports_every_set_with_parallel_jobs(tmp_path):
    run_dir = tmp_path / "run"
    init_run(ContextConfig(feat_size=6, window_length=8, window_neg_length=8, embedding_transformation="BaselineDnn",
                           num_dnn_layers=1, fc_size=8, embedding_size=3), run_dir)
    rng = np.random.default_rng(0)
    for name, n in (("dev", 3), ("train", 7)):
        d = tmp_path / "data" / name
        d.mkdir(parents=True)
        mats = [(f"{name}-u{i}", rng.standard_normal((5 + 13 * i, 6)).astype(np.float32)) for i in range(n)]
        kaldi_io.write_mats(d / "feats.ark", mats, d / "feats.scp")
    env = dict(os.environ, PYTHON=sys.executable)
    res = subprocess.run(["bash", str(ROOT / "scripts" / "gen_feat_kaldi.sh"), "--nj", "2", str(run_dir),
                          str(tmp_path / "data"), str(tmp_path / "exp")], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "skipping test" in res.stderr
    for name, n in (("dev", 3), ("train", 7)):
        ids, rows = kaldi_io.load_mats(f"scp:{tmp_path / 'exp' / name / 'ivector_online.scp'}")
        assert ids == [f"{name}-u{i}" for i in range(n)]
        assert [len(r) for r in rows] == [max(1, -(-(5 + 13 * i) // 10)) for i in range(n)]
        assert (tmp_path / "exp" / name / "ivector_period").read_text() == "10\n"
    # one model, one iVector id in every set (what check_ivectors_compatible.sh compares)
    ids = {(tmp_path / "exp" / name / "final.ie.id").read_text() for name in ("dev", "train")}
    assert len(ids) == 1 and ids.pop().startswith("unspeech-")
    # no data at all: a clear failure
    res = subprocess.run(["bash", str(ROOT / "scripts" / "gen_feat_kaldi.sh"), str(run_dir), str(tmp_path / "nowhere"),
                          str(tmp_path / "exp2")], env=env, capture_output=True, text=True)
    assert res.returncode == 1 and "no set of" in res.stderr
