"""ONNX export: every transformation's towers equal the Keras model's, and inference needs no TensorFlow."""

from __future__ import annotations

import json
import os
import textwrap

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("onnx")

from light_env import run_python_without_tf  # noqa: E402
from unspeech.context import ContextConfig  # noqa: E402
from unspeech.context.onnx_export import export_onnx  # noqa: E402
from unspeech.context.rundir import CHECKPOINT_DIR, embed_windows, init_run, load_run  # noqa: E402
from unspeech.context.towers import OnnxTowers, load_towers  # noqa: E402
from unspeech.errors import ConfigError  # noqa: E402

# the smallest windows / sizes each trunk accepts, so that the test stays fast
ARCHITECTURES = {
    "Vgg16big": dict(window_length=32, window_neg_length=32, feat_size=32, fc_size=16),
    "Vgg16": dict(window_length=17, window_neg_length=16, feat_size=18, fc_size=16),
    "Vgg16bigB": dict(window_length=32, window_neg_length=32, feat_size=32, fc_size=16),
    "BaselineDnn": dict(window_length=12, window_neg_length=8, feat_size=6, fc_size=24, num_dnn_layers=2,
                        tied_embeddings_transforms=False, tied_final_embeddings_transforms=False),
    "HighwayDnn": dict(window_length=8, window_neg_length=8, feat_size=6, fc_size=24, num_highway_layers=2),
    "ResNet": dict(window_length=15, window_neg_length=15, feat_size=11, fc_size=16),
    "LSTM": dict(window_length=9, window_neg_length=7, feat_size=5, rnn_hidden_cells=12, fc_size=16,
                 tied_embeddings_transforms=False, tied_final_embeddings_transforms=False),
    "BiLSTM": dict(window_length=9, window_neg_length=9, feat_size=5, rnn_hidden_cells=12, fc_size=16),
}


def _randomise_statistics(model, seed: int) -> None:
    """Give batch norms and input normalisation non-trivial values (training would)."""
    rng = np.random.default_rng(seed)
    for v in model.non_trainable_variables:
        shape = tuple(v.shape)
        if "variance" in v.path or "inv_std" in v.path:
            v.assign(rng.uniform(0.5, 2.0, shape).astype(np.float32))
        else:
            v.assign(rng.normal(0.0, 0.5, shape).astype(np.float32))


def _run_with_random_weights(tmp_path, name: str, **extra) -> str:
    import tensorflow as tf

    options = dict(ARCHITECTURES[name], embedding_transformation=name, embedding_size=7, **extra)
    run = tmp_path / name
    model = init_run(ContextConfig(**options), run, seed=3)
    _randomise_statistics(model, 4)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(run / CHECKPOINT_DIR), max_to_keep=1)
    manager.save()
    return str(run)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_exported_towers_equal_keras(tmp_path, name):
    bn = name in ("Vgg16", "ResNet", "BaselineDnn", "LSTM")
    run = _run_with_random_weights(tmp_path, name, batch_normalization=bn, normalize_input=name != "Vgg16big",
                                   unit_normalize_var=name in ("BaselineDnn", "BiLSTM"))
    path = export_onnx(run)
    assert os.path.basename(path) == "model.onnx" and path.is_file()
    config, model = load_run(run)
    towers = OnnxTowers(path, config)
    rng = np.random.default_rng(0)
    for tower, length in (("target", config.window_length), ("context", config.window_neg_length)):
        windows = rng.normal(0.0, 2.0, (11, length, config.feat_size)).astype(np.float32)
        expected = embed_windows(model, windows, tower=tower)
        got = towers.embed(windows, tower)
        assert got.shape == (11, 7)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_runtime_choice_follows_the_latest_checkpoint(tmp_path, caplog):
    import tensorflow as tf

    run = _run_with_random_weights(tmp_path, "BaselineDnn")
    with pytest.raises(ConfigError, match="no model.onnx"):
        load_towers(run, runtime="onnx")
    assert load_towers(run).runtime == "keras"  # not exported yet
    export_onnx(run)
    assert load_towers(run).runtime == "onnx"
    assert load_towers(run, checkpoint=1).runtime == "keras"  # a chosen checkpoint needs the checkpoint
    _, model = load_run(run)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), os.path.join(run, CHECKPOINT_DIR), max_to_keep=2).save(checkpoint_number=5)
    assert load_towers(run).runtime == "keras"  # model.onnx is older than the latest checkpoint
    assert "unspeech export" in caplog.text


def test_export_command_and_light_inference(tmp_path):
    """`unspeech export RUN` writes model.onnx; without TensorFlow the towers give the same numbers."""
    from unspeech.cli import main

    run = _run_with_random_weights(tmp_path, "HighwayDnn")
    assert main(["export", run]) == 0
    config, model = load_run(run)
    windows = np.random.default_rng(1).normal(size=(5, 8, 6)).astype(np.float32)
    np.save(tmp_path / "windows.npy", windows)
    code = textwrap.dedent(f"""
        import numpy as np
        from unspeech.context.towers import load_towers
        towers = load_towers({run!r})
        assert towers.runtime == "onnx", towers.runtime
        np.save({str(tmp_path / 'light.npy')!r}, towers.embed(np.load({str(tmp_path / 'windows.npy')!r})))
        assert "tensorflow" not in sys.modules or sys.modules["tensorflow"] is None
    """)
    proc = run_python_without_tf(code)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(np.load(tmp_path / "light.npy"), embed_windows(model, windows), atol=1e-4, rtol=0)
    meta = json.loads(__import__("onnx").load(os.path.join(run, "model.onnx")).metadata_props[0].value)
    assert meta["embedding_transformation"] == "HighwayDnn"


def test_missing_tensorflow_for_a_run_without_onnx_says_which_extra(tmp_path):
    run = _run_with_random_weights(tmp_path, "BaselineDnn")
    proc = run_python_without_tf(f"from unspeech.context.towers import load_towers\nload_towers({run!r})")
    assert proc.returncode != 0
    assert "unspeech export" in proc.stderr and "unspeech[train]" in proc.stderr


def test_int8_export_is_close_and_opt_in(tmp_path):
    """`unspeech export RUN --int8` adds model.int8.onnx; only --runtime onnx-int8 uses it."""
    from unspeech.cli import main

    run = _run_with_random_weights(tmp_path, "BaselineDnn", batch_normalization=True)
    assert main(["export", run, "--int8", "-o", str(tmp_path / "x.onnx")]) == 1  # --int8 writes next to model.onnx
    with pytest.raises(ConfigError, match="has no model.int8.onnx"):
        load_towers(run, runtime="onnx-int8")
    assert main(["export", run, "--int8", "--quiet"]) == 0
    assert os.path.isfile(os.path.join(run, "model.int8.onnx"))
    assert load_towers(run).runtime == "onnx"  # auto never picks the quantized file
    exact, quantized = load_towers(run, runtime="onnx"), load_towers(run, runtime="onnx-int8")
    assert quantized.runtime == "onnx-int8"
    rng = np.random.default_rng(2)
    for tower, length in (("target", 12), ("context", 8)):
        windows = rng.normal(0.0, 1.0, (32, length, 6)).astype(np.float32)
        a, b = exact.embed(windows, tower), quantized.embed(windows, tower)
        cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        assert cos.min() > 0.98 and not np.array_equal(a, b)
