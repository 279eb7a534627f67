"""ivector_period and final.ie.id for every export path: single job, job arrays + --merge, folder conflicts."""

import shutil
import subprocess

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from kaldi_scripts import KALDI_UTILS  # noqa: E402
from unspeech import kaldi_io  # noqa: E402
from unspeech.context import ivector_dir  # noqa: E402
from unspeech.context.config import ContextConfig  # noqa: E402
from unspeech.context.export import GenFeatOptions, gen_feat, merge_jobs  # noqa: E402
from unspeech.context.rundir import init_run  # noqa: E402
from unspeech.errors import ConfigError, DataError  # noqa: E402

CHECK_IVECTORS = KALDI_UTILS.parent / "steps" / "nnet2" / "check_ivectors_compatible.sh"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny untrained runs (different seeds) and 5 utterances of 5-dim features."""
    d = tmp_path_factory.mktemp("ivector_dir")
    config = dict(feat_size=5, window_length=8, window_neg_length=8, embedding_transformation="BaselineDnn",
                  num_dnn_layers=1, fc_size=8, embedding_size=4, negative_samples=2, batch_size=4)
    for name, seed in (("run_a", 3), ("run_b", 4)):
        init_run(ContextConfig(**config), d / name, seed=seed)
    rng = np.random.default_rng(0)
    kaldi_io.write_mats(d / "feats.ark", [(f"u{i}", rng.standard_normal((9 + 7 * i, 5)).astype(np.float32))
                                          for i in range(5)], d / "feats.scp")
    return d


def _export(run_dir, feats, prefix, **kw):
    return gen_feat(str(run_dir), str(feats), GenFeatOptions(output_feat_file=str(prefix), quiet=True, **kw))


def test_job_array_merge_writes_period_and_id(runs, tmp_path):
    one, arr = tmp_path / "one", tmp_path / "arr"
    _export(runs / "run_a", runs / "feats.scp", one / "ivector_online", genfeat_stride=5)
    for j in (1, 2):
        _export(runs / "run_a", runs / "feats.scp", arr / "ivector_online", genfeat_stride=5, job=j, num_jobs=2)
    assert not (arr / "ivector_period").exists() and (arr / "ivector_online.2.json").is_file()
    outputs = merge_jobs(str(arr / "ivector_online"), 2)
    assert str(arr / "final.ie.id") in outputs
    for folder in (one, arr):
        assert (folder / "ivector_period").read_text() == "5\n"
    ident = (one / "final.ie.id").read_text()
    assert (arr / "final.ie.id").read_text() == ident == ivector_dir.model_id(runs / "run_a") + "\n"
    # scp paths are absolute: the folder can be read from anywhere
    assert all(line.split()[1].startswith("/") for line in (arr / "ivector_online.scp").read_text().splitlines())
    # the id follows the model, not where the run dir lies
    moved = tmp_path / "elsewhere"
    shutil.copytree(runs / "run_a", moved)
    assert ivector_dir.model_id(moved) == ident.strip() != ivector_dir.model_id(runs / "run_b")


def test_one_folder_one_period_and_model(runs, tmp_path):
    folder = tmp_path / "dev"
    _export(runs / "run_a", runs / "feats.ark", folder / "ivector_online", genfeat_stride=10)
    before = (folder / "ivector_online.scp").read_bytes()
    with pytest.raises(ConfigError, match=r"ivector_period says 10 but this export writes 5: the folder also holds "
                                          r"ivector_online\.scp"):
        _export(runs / "run_a", runs / "feats.ark", folder / "other", genfeat_stride=5)
    with pytest.raises(ConfigError, match=r"final\.ie\.id says unspeech-.* folder also holds ivector_online\.scp"):
        _export(runs / "run_b", runs / "feats.ark", folder / "other", genfeat_stride=10)
    assert not list(folder.glob("other*")) and (folder / "ivector_period").read_text() == "10\n"
    assert (folder / "ivector_online.scp").read_bytes() == before
    # re-exporting the same prefix replaces the folder's files
    _export(runs / "run_b", runs / "feats.ark", folder / "ivector_online", genfeat_stride=5)
    assert (folder / "ivector_period").read_text() == "5\n"
    assert (folder / "final.ie.id").read_text().strip() == ivector_dir.model_id(runs / "run_b")


def test_merge_refuses_jobs_that_disagree(runs, tmp_path):
    prefix = tmp_path / "x" / "ivector_online"
    _export(runs / "run_a", runs / "feats.ark", prefix, job=1, num_jobs=2, genfeat_stride=10)
    _export(runs / "run_a", runs / "feats.ark", prefix, job=2, num_jobs=2, genfeat_stride=7)
    with pytest.raises(DataError, match=r"ivector_online\.2\.json: job 2 used period 7 .* job 1 used period 10"):
        merge_jobs(str(prefix), 2)
    assert not (tmp_path / "x" / "ivector_online.scp").exists()
    with pytest.raises(DataError, match=r"ran with --num_jobs 2, merging expects 1"):
        merge_jobs(str(prefix), 1)
    with pytest.raises(ConfigError, match="no checkpoint .*ckpt-999"):
        ivector_dir.model_id(runs / "run_a", "999")


@pytest.mark.skipif(not CHECK_IVECTORS.is_file(), reason="needs steps/nnet2/check_ivectors_compatible.sh in ../shared")
def test_kaldi_accepts_the_ids(runs, tmp_path):  # pragma: no cover - only where Kaldi's steps/ are shared
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    (recipe / "steps").symlink_to(KALDI_UTILS.parent / "steps")
    (recipe / "utils").symlink_to(KALDI_UTILS)
    for name, run in (("train", "run_a"), ("dev", "run_a"), ("other", "run_b")):
        _export(runs / run, runs / "feats.ark", recipe / name / "ivector_online")

    def check(a, b):
        return subprocess.run(["bash", "steps/nnet2/check_ivectors_compatible.sh", a, b], cwd=recipe,
                              capture_output=True, text=True)

    same = check("train", "dev")
    assert same.returncode == 0 and "WARNING" not in same.stderr
    assert check("train", "other").returncode == 1


def test_installed_copy_without_checkpoints_keeps_the_id(runs, tmp_path):
    """A run exported to ONNX and installed without its checkpoints (as the bundled model in a wheel)
    gives the same final.ie.id as the run itself, so Kaldi accepts features from either."""
    pytest.importorskip("onnx")
    from unspeech.context.onnx_export import export_onnx

    run = tmp_path / "run_a"
    shutil.copytree(runs / "run_a", run)
    export_onnx(run)
    installed = tmp_path / "installed"
    installed.mkdir()
    for name in ("config.json", "model.onnx"):
        shutil.copy(run / name, installed / name)
    assert ivector_dir.model_id(installed) == ivector_dir.model_id(run)
    assert ivector_dir.model_id(run) != ivector_dir.model_id(runs / "run_b")
