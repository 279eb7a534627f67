"""The speaker head: stacking, batch-norm folding, fitting on pseudo-labels, files, and its use by the embedder."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from unspeech import kaldi_io
from unspeech.context.speaker_head import (
    HEAD_NAME,
    SpeakerHead,
    fit_run_head,
    fold_batch_norm,
    load_run_head,
    read_utt2class,
    stack_rows,
)
from unspeech.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "unspeech" / "models" / "unspeech_dnn_w32_libri200"
DEMO_FEATS = REPO / "data" / "demo_utts" / "feats.ark"


def _class_rows(n_items: int = 12, n_classes: int = 4, rows: int = 30, dim: int = 6, seed: int = 0):
    """Items whose rows scatter around one centre per class."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (n_classes, dim))
    classes = [f"c{i % n_classes}" for i in range(n_items)]
    items = [centres[i % n_classes] + rng.normal(0, 1, (rows, dim)) for i in range(n_items)]
    return items, classes, centres


def test_stack_rows_repeats_the_edges():
    rows = np.arange(8, dtype=np.float32).reshape(4, 2)
    out = stack_rows(rows, 1)
    assert out.shape == (4, 6)
    np.testing.assert_array_equal(out[0], [0, 1, 0, 1, 2, 3])  # row -1 is row 0
    np.testing.assert_array_equal(out[3], [4, 5, 6, 7, 6, 7])  # row 4 is row 3
    np.testing.assert_array_equal(stack_rows(rows, 0), rows)
    assert stack_rows(rows[:1], 2).shape == (1, 10)


def test_folded_batch_norm_equals_batch_norm_then_dense():
    rng = np.random.default_rng(1)
    h = rng.normal(size=(5, 7))
    gamma, beta, mean, var = rng.normal(size=7), rng.normal(size=7), rng.normal(size=7), rng.uniform(0.5, 2, 7)
    weight, bias = rng.normal(size=(7, 3)), rng.normal(size=3)
    expected = ((h - mean) / np.sqrt(var + 1e-3) * gamma + beta) @ weight + bias
    w, b = fold_batch_norm(gamma, beta, mean, var, 1e-3, weight, bias)
    np.testing.assert_allclose(h @ w + b, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("loss", ["softmax", "am-softmax"])
def test_fit_separates_classes_and_transform_is_numpy(loss):
    items, classes, _ = _class_rows()
    head = SpeakerHead(context=1, hidden_units=32, dim=8, epochs=15, batch_size=64, loss=loss, random_state=0).fit(items, classes)
    assert head.input_dim_ == 6 and head.n_classes_ == 4 and head.output_dim == 8
    assert head.train_accuracy_ > 0.5
    test_items, test_classes, _ = _class_rows(n_items=8, seed=5)  # new rows around the same centres
    out = [head.transform(r) for r in test_items]
    assert all(o.shape == (30, 8) and o.dtype == np.float32 for o in out)
    means = np.stack([o.mean(axis=0) for o in out])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    cos = means @ means.T
    same = np.equal.outer(test_classes, test_classes) & ~np.eye(len(out), dtype=bool)
    assert cos[same].min() > cos[~np.equal.outer(test_classes, test_classes)].max()


def test_fit_is_seeded():
    items, classes, _ = _class_rows()
    a = SpeakerHead(hidden_units=16, dim=4, epochs=2, random_state=3).fit(items, classes).transform(items[0])
    b = SpeakerHead(hidden_units=16, dim=4, epochs=2, random_state=3).fit(items, classes).transform(items[0])
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rows, classes, message", [
    ([np.zeros((3, 2))] * 2, ["a", "a"], "at least two classes"),
    ([np.zeros((3, 2)), np.zeros((3, 4))], ["a", "b"], "different sizes"),
    ([np.zeros((3, 2))], ["a", "b"], "1 items of rows but 2 class labels"),
    ([np.full((3, 2), np.nan), np.zeros((3, 2))], ["a", "b"], "utt7"),
])
def test_fit_rejects_bad_training_data(rows, classes, message):
    with pytest.raises(DataError, match=message):
        SpeakerHead(epochs=1).fit(rows, classes, names=[f"utt{7 + i}" for i in range(len(rows))])


@pytest.mark.parametrize("params", [{"context": -1}, {"dim": 0}, {"loss": "triplet"}, {"dropout": 1.0}, {"margin": 2.0},
                                    {"members": 0}])
def test_bad_parameters_are_refused(params):
    with pytest.raises(ConfigError):
        SpeakerHead(**params).fit([np.zeros((3, 2)), np.ones((3, 2))], ["a", "b"])


def test_save_load_round_trip_and_damaged_files(tmp_path):
    items, classes, _ = _class_rows()
    head = SpeakerHead(context=2, hidden_units=16, dim=5, epochs=1).fit(items, classes)
    head.info_ = {"model_id": "x", "period_frames": 10}
    path = head.save(tmp_path / HEAD_NAME)
    loaded = SpeakerHead.load(path)
    np.testing.assert_array_equal(loaded.transform(items[1]), head.transform(items[1]))
    assert loaded.get_params() == head.get_params() and loaded.info_ == head.info_
    assert not list(tmp_path.glob("*.tmp*"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz"):
        SpeakerHead.load(tmp_path / "junk.npz")
    with np.load(path) as data:
        arrays = dict(data)
    arrays["w2"] = arrays["w2"][:, :3]
    np.savez(tmp_path / "cut.npz", **arrays)
    with pytest.raises(DataError, match="cut.npz.*do not fit"):
        SpeakerHead.load(tmp_path / "cut.npz")
    with pytest.raises(DataError, match="no such"):
        SpeakerHead.load(tmp_path / "missing.npz")
    with pytest.raises(DataError, match=r"expects rows of shape \(n, 6\)"):
        loaded.transform(np.zeros((4, 3)))
    with pytest.raises(ConfigError, match="not fitted"):
        SpeakerHead().transform(items[0])


def test_members_join_unit_rows_and_average_their_cosines(tmp_path):
    items, classes, _ = _class_rows()
    params = dict(context=1, hidden_units=16, dim=4, epochs=2)
    one = [SpeakerHead(**params, random_state=seed).fit(items, classes) for seed in (3, 4)]
    both = SpeakerHead(**params, members=2, random_state=3).fit(items, classes)
    assert both.output_dim == 8 and both.weights_["w1"].shape == (2, 18, 16)
    out = both.transform(items[0])
    np.testing.assert_allclose(np.linalg.norm(out[:, :4], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out[:, 4:], axis=1), 1.0, rtol=1e-5)
    joined = SpeakerHead.join(one)
    assert joined.members == 2
    np.testing.assert_allclose(joined.transform(items[0]), out, rtol=1e-4, atol=1e-5)  # same seeds, same members
    # the cosine of joined rows is the mean of the members' cosines
    a, b = (np.concatenate([h.transform(items[i]) for h in one], axis=1) for i in (0, 5))
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    mean_cos = np.mean([(unit(a[:, k:k + 4]) * unit(b[:, k:k + 4])).sum(axis=1) for k in (0, 4)], axis=0)
    x, y = joined.transform(items[0]), joined.transform(items[5])
    np.testing.assert_allclose((x * y).sum(axis=1) / 2, mean_cos, rtol=1e-4, atol=1e-5)
    joined.info_ = {"model_id": "x", "period_frames": 10}
    loaded = SpeakerHead.load(joined.save(tmp_path / HEAD_NAME))
    np.testing.assert_array_equal(loaded.transform(items[2]), joined.transform(items[2]))
    other = SpeakerHead(**{**params, "dim": 5}).fit(items, classes)
    with pytest.raises(DataError, match="same rows with the same sizes"):
        SpeakerHead.join([one[0], other])


def test_a_one_network_file_of_before_ensembles_still_loads(tmp_path):
    items, classes, _ = _class_rows()
    head = SpeakerHead(context=1, hidden_units=16, dim=4, epochs=1).fit(items, classes)
    path = head.save(tmp_path / HEAD_NAME)
    with np.load(path) as data:
        arrays = {k: (v[0] if k in ("w1", "b1", "w2", "b2") else v) for k, v in data.items()}
    meta = json.loads(bytes(arrays["meta"]).decode("utf-8"))
    del meta["params"]["members"]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    np.savez(tmp_path / "old.npz", **arrays)  # 2-D weights, no `members` in the parameters
    old = SpeakerHead.load(tmp_path / "old.npz")
    assert old.members == 1
    np.testing.assert_array_equal(old.transform(items[0]), head.transform(items[0]))


def test_read_utt2class(tmp_path):
    good = tmp_path / "utt2class"
    good.write_text("a x\nb x\n\nc y\n")
    assert read_utt2class(good) == {"a": "x", "b": "x", "c": "y"}
    bad = tmp_path / "bad"
    bad.write_text("a x\nb\n")
    with pytest.raises(DataError, match="bad:2"):
        read_utt2class(bad)


# ------------------------------------------------------------------ heads of run directories


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A copy of the bundled model without its head, and 12 demo utterances of 4 speakers."""
    root = tmp_path_factory.mktemp("head_run")
    run = root / "model"
    shutil.copytree(BUNDLED, run, ignore=shutil.ignore_patterns(HEAD_NAME, "*.int8.onnx"))
    utts = [(k, m) for k, m in kaldi_io.iter_mats(str(DEMO_FEATS))][:12]
    kaldi_io.write_mats(str(root / "feats.ark"), utts, str(root / "feats.scp"))
    (root / "utt2class").write_text("".join(f"{k} {k.split('_')[0]}\n" for k, _ in utts))
    return run, root


def _ensure_head(run: Path, root: Path) -> None:
    if not (run / HEAD_NAME).exists():
        fit_run_head(run, str(root / "feats.scp"), epochs=1, dim=16, hidden_units=32)


def test_fit_run_head_is_used_by_the_embedder(small_run, caplog):
    from unspeech.diarize.embedders import ContextEmbedder

    run, root = small_run
    fit_run_head(run, str(root / "feats.scp"), utt2class=root / "utt2class", epochs=2, dim=16, hidden_units=32)
    head = load_run_head(run, 10)
    assert head is not None and head.output_dim == 16 and head.info_["utterances"] == 12
    fbank = next(kaldi_io.iter_mats(str(root / "feats.scp")))[1]
    with_head = ContextEmbedder(run, period_frames=10)
    without = ContextEmbedder(run, period_frames=10, speaker_head=False)
    assert with_head.dim == 16 and "speaker head" in with_head.name and without.dim == 100
    raw = without.embed(fbank)
    np.testing.assert_allclose(with_head.embed(fbank), head.transform(raw), rtol=1e-5, atol=1e-5)
    with caplog.at_level(logging.WARNING):
        assert ContextEmbedder(run, period_frames=5).head is None  # fitted for rows every 10 frames
    assert "not 5" in caplog.text


def test_head_of_another_checkpoint_is_not_used(small_run, tmp_path, caplog):
    run, root = small_run
    _ensure_head(run, root)
    other = tmp_path / "other"
    shutil.copytree(run, other)
    config = (other / "config.json").read_text()
    (other / "config.json").write_text(config.replace('"seed": 1', '"seed": 2'))  # another model id
    assert config != (other / "config.json").read_text()
    with caplog.at_level(logging.WARNING):
        assert load_run_head(other, 10) is None
    assert "another checkpoint" in caplog.text


def test_fit_run_head_needs_a_class_for_every_utterance(small_run, tmp_path):
    run, root = small_run
    partial = tmp_path / "utt2class"
    partial.write_text("".join((root / "utt2class").read_text().splitlines(keepends=True)[:5]))
    with pytest.raises(DataError, match="no class for utterance"):
        fit_run_head(run, str(root / "feats.scp"), utt2class=partial, epochs=1, output=tmp_path / "h.npz")
    assert not (tmp_path / "h.npz").exists()


def test_diarizer_uses_the_head_except_for_exported_row_spaces(small_run, tmp_path):
    from unspeech.diarize import Diarizer

    run, root = small_run
    _ensure_head(run, root)
    d = Diarizer(model=str(run))
    d._setup()
    assert d.embedder_.head is not None and "speaker head" in d.describe()
    d = Diarizer(model=str(run), speaker_head=False)
    d._setup()
    assert d.embedder_.head is None
    profiles = tmp_path / "profiles.ark"
    kaldi_io.write_mats(str(profiles), [("alice", np.ones((1, 100), np.float32))])
    d = Diarizer(model=str(run), backend="enroll", profiles=str(profiles))
    d._setup()  # profiles are vectors of exported rows (100-dim): no head, so the dimensions agree
    assert d.embedder_.head is None and d.embedder_.dim == 100


def test_bundled_model_ships_a_current_head():
    head = load_run_head(BUNDLED, 10)
    assert head is not None, "the bundled model's speaker_head.npz is missing or was fitted on another checkpoint"
    assert head.input_dim_ == 100


def test_train_head_command_errors_name_the_input(tmp_path, capsys):
    from unspeech.cli import main

    assert main(["train-head", str(tmp_path / "missing"), "feats.scp"]) == 1
    assert "RUN_DIR" in capsys.readouterr().err
    assert main(["train-head", str(BUNDLED), str(tmp_path / "none.scp")]) == 1
    assert "none.scp (FEATURES)" in capsys.readouterr().err
    assert main(["train-head", str(BUNDLED), str(DEMO_FEATS), "--utt2class", str(tmp_path / "u2c")]) == 1
    assert "--utt2class" in capsys.readouterr().err
    assert not (tmp_path / HEAD_NAME).exists()
