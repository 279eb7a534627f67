"""Frame-level embedders: the fbank-statistics baseline and the unspeech context model of a run dir."""

import numpy as np
import pytest

from unspeech.diarize.embedders import ContextEmbedder, Embedder, StatsEmbedder, load_embedder, window_starts
from unspeech.errors import ConfigError, DataError


def test_window_starts_centre_on_blocks_and_stay_inside():
    # row i's block is frames 10i..10i+9, centre 10i+5; windows of 20 start 10 frames before, clipped to [0, 80]
    np.testing.assert_array_equal(window_starts(100, 20, 10), [0, 5, 15, 25, 35, 45, 55, 65, 75, 80])
    np.testing.assert_array_equal(window_starts(7, 20, 10), [0])  # shorter than a window: all frames


def test_stats_rows_follow_the_row_convention():
    rng = np.random.default_rng(0)
    fbank = rng.standard_normal((95, 40)).astype(np.float32)
    emb = StatsEmbedder(window_frames=30, period_frames=10)
    assert isinstance(emb, Embedder)
    rows = emb.embed(fbank)
    assert rows.shape == (10, 80) and rows.dtype == np.float32
    x = (fbank - fbank.mean(0)) / (fbank.std(0) + 1e-5)
    window = x[40:70]  # row 5: block 50..59 (centre 55), window of 30 frames from 40
    np.testing.assert_allclose(rows[5, :40], window.mean(0), atol=1e-5)
    np.testing.assert_allclose(rows[5, 40:], np.log(window.std(0)), atol=1e-4)


def test_stats_bad_input_raises():
    with pytest.raises(DataError, match="features have 13 bins but the model expects 40"):
        StatsEmbedder().embed(np.zeros((50, 13)))
    with pytest.raises(DataError, match=r"expected features of shape \(T, F\) with T >= 1"):
        StatsEmbedder().embed(np.zeros((0, 40)))
    with pytest.raises(ConfigError, match="`period_frames` must be >= 1"):
        StatsEmbedder(period_frames=0)


def test_load_embedder_choices(tmp_path):
    assert isinstance(load_embedder("stats", 5), StatsEmbedder)
    bundled = load_embedder(None)  # the model shipped in the package, by default
    assert isinstance(bundled, ContextEmbedder) and bundled.period_frames == 10 and "unspeech_dnn_w32_libri200" in bundled.name
    assert load_embedder("unspeech_dnn_w32_libri200").name == bundled.name  # a bundled model by its name
    with pytest.raises(ConfigError, match="'.*nowhere' does not exist"):
        load_embedder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a run dir of the context model"):
        load_embedder(tmp_path / "empty")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run dir with an untrained tiny context model on 40-dim features (the layout training writes)."""
    pytest.importorskip("tensorflow")
    from unspeech.context.config import ContextConfig
    from unspeech.context.rundir import init_run

    run_dir = tmp_path_factory.mktemp("ctx") / "run"
    init_run(ContextConfig(feat_size=40, window_length=16, window_neg_length=16, embedding_transformation="BaselineDnn",
                           num_dnn_layers=1, fc_size=16, embedding_size=6, left_contexts=1, right_contexts=1,
                           negative_samples=2, batch_size=4), run_dir, seed=1)
    return run_dir


@pytest.mark.slow
def test_context_embedder_equals_gen_feat_rows(tiny_run):
    from unspeech.context.embed import FrameEmbedder
    from unspeech.context.rundir import load_run

    emb = load_embedder(tiny_run, period_frames=4)
    assert isinstance(emb, ContextEmbedder) and (emb.dim, emb.window_frames, emb.period_frames) == (6, 16, 4)
    fbank = np.random.default_rng(2).standard_normal((45, 40)).astype(np.float32)
    rows = emb.embed(fbank)
    _, model = load_run(tiny_run)
    np.testing.assert_allclose(rows, FrameEmbedder(model, period=4, alignment="center").embed_utterance(fbank), atol=1e-6)
    assert rows.shape == (12, 6)
    with pytest.raises(DataError, match="features have 20 bins but the model expects 40"):
        emb.embed(fbank[:, :20])
