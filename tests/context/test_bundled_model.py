"""The pretrained model shipped in unspeech/models/: loads from anywhere, embeds windows, is the diarizer's default."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from unspeech import kaldi_io
from unspeech.datadir import read_utt2spk

REPO = Path(__file__).resolve().parents[2]
NAME = "unspeech_dnn_w32_libri200"
MODEL = REPO / "unspeech" / "models" / NAME
DEMO = REPO / "data" / "demo_utts"


@pytest.fixture(scope="module")
def bundled():
    from unspeech.context.rundir import load_run

    return load_run(MODEL)


def test_bundle_holds_config_one_checkpoint_and_card():
    files = sorted(p.relative_to(MODEL).as_posix() for p in MODEL.rglob("*") if p.is_file())
    prefixes = {Path(f).name.split(".")[0] for f in files if f.startswith("checkpoints/ckpt-")}
    assert "config.json" in files and "MODEL_CARD.md" in files and "checkpoints/checkpoint" in files
    assert len(prefixes) == 1, files
    assert not any("tensorboard" in f for f in files)
    assert sum((MODEL / f).stat().st_size for f in files) < 20 * 2**20


def test_stored_paths_are_relative():
    config = json.loads((MODEL / "config.json").read_text())
    for key in ("train_dir", "filelist"):
        assert not Path(config[key]).is_absolute(), (key, config[key])
    state = (MODEL / "checkpoints" / "checkpoint").read_text()
    for line in state.splitlines():
        if "checkpoint_path" in line:
            path = line.split(":", 1)[1].strip().strip('"')
            assert "/" not in path and "\\" not in path, line


def test_loads_from_a_copy_elsewhere(tmp_path, bundled):
    from unspeech.context.rundir import embed_windows, load_run

    copy = tmp_path / "moved" / NAME
    shutil.copytree(MODEL, copy)
    _, original = bundled
    config, moved = load_run(copy)
    windows = np.random.default_rng(0).normal(10.0, 3.0, (3, config.window_length, config.feat_size)).astype(np.float32)
    np.testing.assert_allclose(embed_windows(moved, windows), embed_windows(original, windows), rtol=1e-5, atol=1e-6)


def test_embeds_a_demo_window(bundled):
    from unspeech.context.rundir import embed_windows

    config, model = bundled
    ids, feats = kaldi_io.load_mats(str(DEMO / "feats.ark"))
    window = feats[0][None, : config.window_length]
    emb = embed_windows(model, window)
    assert emb.shape == (1, config.embedding_size) and emb.dtype == np.float32
    # unit_normalize_var: every embedding has the length of the one trained scale
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), abs(float(model.scale.numpy())), rtol=1e-4)
    np.testing.assert_array_equal(emb, embed_windows(model, window))


def test_same_speaker_utterances_are_closer(bundled):
    """Mean-pooled embeddings of held-out demo speakers: within-speaker cosine > between-speaker."""
    from unspeech.context.embed import FrameEmbedder, speaker_vector

    _, model = bundled
    utt2spk = read_utt2spk(DEMO / "utt2spk")
    speakers = sorted(set(utt2spk.values()))[:6]
    items = [(u, m) for u, m in kaldi_io.iter_mats(str(DEMO / "feats.ark")) if utt2spk[u] in speakers]
    embedder = FrameEmbedder(model, period=10, alignment="center")
    vectors = np.stack([speaker_vector(rows) for _, rows in embedder.embed(items)])
    labels = np.array([utt2spk[u] for u, _ in items])
    sims = vectors @ vectors.T
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    assert sims[same & off_diagonal].mean() > sims[~same].mean() + 0.1


LIBRISPEECH = REPO.parent / "shared" / "data" / "librispeech-subset" / "train-clean-100"
HELD_OUT = REPO / "benchmarks" / "real_speech_heldout.txt"


@pytest.mark.slow
@pytest.mark.skipif(not LIBRISPEECH.is_dir(), reason="the shared LibriSpeech subset (../shared/data) is not here")
def test_separates_real_speakers_it_never_heard(bundled):
    """3-s pieces of 12 held-out LibriSpeech readers: same-speaker pairs score above different-speaker pairs."""
    from unspeech.audio import load_audio
    from unspeech.cluster.metrics import equal_error_rate
    from unspeech.context.embed import FrameEmbedder, speaker_vector
    from unspeech.fbank import compute_fbank

    _, model = bundled
    embedder = FrameEmbedder(model, period=10, alignment="center")
    vectors, labels = [], []
    for spk in HELD_OUT.read_text().split()[:12]:
        path = next(LIBRISPEECH.joinpath(spk).glob("*/*.flac"))
        fbank = compute_fbank(load_audio(str(path)))
        for start in range(0, len(fbank) - 299, 300):
            (_, rows), = embedder.embed([(spk, fbank[start:start + 300])])
            vectors.append(speaker_vector(rows))
            labels.append(spk)
    vectors = np.stack(vectors)
    labels = np.array(labels)
    assert len(set(labels)) >= 10 and len(labels) >= 30
    pairs = np.triu_indices(len(labels), 1)
    scores = (vectors @ vectors.T)[pairs]
    eer, _ = equal_error_rate(scores, (labels[:, None] == labels[None, :])[pairs])
    assert eer < 0.08  # the synthetic-only model scored about 0.2 on such pieces


def test_diarizer_defaults_to_the_bundled_model():
    from unspeech.diarize.embedders import bundled_model

    assert Path(bundled_model()).resolve() == MODEL.resolve()


def test_shipped_onnx_is_current_and_equals_the_checkpoint(bundled):
    """model.onnx (what the default install runs) comes from the shipped checkpoint and gives its numbers."""
    from unspeech.context.rundir import embed_windows
    from unspeech.context.towers import latest_checkpoint_name, load_towers, onnx_checkpoint_name

    assert onnx_checkpoint_name(MODEL / "model.onnx") == latest_checkpoint_name(MODEL)
    towers = load_towers(MODEL)
    assert towers.runtime == "onnx"
    config, model = bundled
    feats = next(kaldi_io.iter_mats(str(DEMO / "feats.ark")))[1]
    windows = np.stack([feats[i:i + config.window_length] for i in range(0, 200, 20)])
    for tower in ("target", "context"):
        np.testing.assert_allclose(towers.embed(windows, tower), embed_windows(model, windows, tower=tower), atol=1e-4, rtol=0)


def test_shipped_int8_model_is_current_and_close():
    """model.int8.onnx (--runtime onnx-int8) comes from the same checkpoint and stays close to float32."""
    from unspeech.context.towers import latest_checkpoint_name, load_towers, onnx_checkpoint_name

    assert onnx_checkpoint_name(MODEL / "model.int8.onnx") == latest_checkpoint_name(MODEL)
    exact, quantized = load_towers(MODEL, runtime="onnx"), load_towers(MODEL, runtime="onnx-int8")
    feats = next(kaldi_io.iter_mats(str(DEMO / "feats.ark")))[1]
    windows = np.stack([feats[i:i + 32] for i in range(0, len(feats) - 32, 8)])
    a, b = exact.embed(windows), quantized.embed(windows)
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() > 0.99
