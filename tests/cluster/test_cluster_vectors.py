"""Reading, pooling, dimension selection and normalisation of utterance vectors."""

import numpy as np
import pytest

from unspeech import kaldi_io
from unspeech.cluster.vectors import (
    UtteranceVectors,
    l2_normalize,
    parse_dims,
    pool_frames,
    prepare_vectors,
    read_utterance_vectors,
    select_dims,
    write_vectors_npz,
)
from unspeech.errors import ConfigError, DataError


def test_pool_frames_mean_and_std():
    mat = np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32)
    np.testing.assert_allclose(pool_frames(mat), [2.0, 4.0])
    np.testing.assert_allclose(pool_frames(mat, "mean+std"), [2.0, 4.0, 1.0, 2.0])
    np.testing.assert_allclose(pool_frames(np.array([5.0, 6.0])), [5.0, 6.0])  # already a vector


def test_pool_frames_errors():
    with pytest.raises(DataError, match="'u1' has 0 frames"):
        pool_frames(np.zeros((0, 4)), utt_id="u1")
    with pytest.raises(ConfigError, match="`pooling` must be one of"):
        pool_frames(np.zeros((2, 4)), "max")


def test_half_index_keeps_second_half_and_dims_slices():
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    np.testing.assert_array_equal(select_dims(x, half_index=4), x[:, 4:])
    np.testing.assert_array_equal(select_dims(x, half_index=-1), x)
    np.testing.assert_array_equal(select_dims(x, dims="1:3"), x[:, 1:3])
    np.testing.assert_array_equal(select_dims(x, dims=":2"), x[:, :2])
    assert parse_dims("-2:") == slice(-2, None)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"half_index": 6}, r"`half_index` must be in \[1, 5\]"),
        ({"half_index": 0}, r"`half_index` must be in"),
        ({"dims": "4:2"}, "selects no dimension"),
        ({"dims": "a:b"}, "must hold integers"),
        ({"dims": "3"}, "must look like 'a:b'"),
        ({"dims": "1:2", "half_index": 2}, "not both"),
    ],
)
def test_select_dims_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        select_dims(np.zeros((2, 6)), **kwargs)


def test_l2_normalize_rows_and_zero_rows(caplog):
    x = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    out = l2_normalize(x, utt_ids=["a", "zero-utt"])
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert "zero-utt" in caplog.text


def test_read_ark_frames_and_vectors(tmp_path):
    rng = np.random.default_rng(0)
    mats = {"utt-a": rng.standard_normal((7, 5)), "utt-b": rng.standard_normal((3, 5)), "ütt-c": rng.standard_normal((1, 5))}
    ark = tmp_path / "feats.ark"
    kaldi_io.write_mats(ark, mats.items(), scp_path=tmp_path / "feats.scp")
    for spec in (str(ark), f"scp:{tmp_path / 'feats.scp'}"):
        data = read_utterance_vectors(spec)
        assert data.utt_ids == list(mats)
        np.testing.assert_allclose(data.vectors, np.stack([m.mean(0) for m in mats.values()]), rtol=1e-5)
    both = read_utterance_vectors(ark, pooling="mean+std")
    assert both.dim == 10


def test_read_npz_both_layouts(tmp_path):
    vecs = np.eye(3, dtype=np.float32)
    write_vectors_npz(tmp_path / "v.npz", ["a", "b", "c"], vecs)
    data = read_utterance_vectors(tmp_path / "v.npz")
    assert data.utt_ids == ["a", "b", "c"]
    np.testing.assert_array_equal(data.vectors, vecs)
    np.savez(tmp_path / "per_utt.npz", x=np.ones((4, 2)), y=np.zeros((2, 2)))
    per = read_utterance_vectors(tmp_path / "per_utt.npz")
    assert per.utt_ids == ["x", "y"]
    np.testing.assert_array_equal(per.vectors, [[1, 1], [0, 0]])


def test_dimension_mismatch_names_both_utterances(tmp_path):
    ark = tmp_path / "mixed.ark"
    kaldi_io.write_mats(ark, [("first", np.ones((2, 4))), ("second", np.ones((2, 5)))])
    with pytest.raises(DataError, match=r"'second' gives a 5-dim vector, but 'first' gives 4 dims"):
        read_utterance_vectors(ark)


def test_nan_vectors_are_named(tmp_path):
    np.savez(tmp_path / "bad.npz", good=np.ones(3), broken=np.array([1.0, np.nan, 2.0]))
    with pytest.raises(DataError, match="NaN or Inf values in utterance 'broken'"):
        read_utterance_vectors(tmp_path / "bad.npz")
    data = UtteranceVectors(["u1", "u2"], np.array([[1.0, 2.0], [np.inf, 0.0]]), "mem")
    with pytest.raises(DataError, match="mem: NaN or Inf values in the vectors of 'u2'"):
        prepare_vectors(data)


def test_nan_in_ark_is_named(tmp_path):
    import kaldiio  # our writer refuses NaN, so write the bad archive with kaldiio itself

    ark = tmp_path / "nan.ark"
    kaldiio.save_ark(str(ark), {"ok": np.ones((2, 3), np.float32), "has-nan": np.array([[1.0, np.nan, 0.0]], np.float32)})
    with pytest.raises(DataError, match="has-nan"):
        read_utterance_vectors(ark)


def test_empty_missing_and_duplicate_inputs(tmp_path):
    np.savez(tmp_path / "empty.npz")
    with pytest.raises(DataError, match="no utterances found"):
        read_utterance_vectors(tmp_path / "empty.npz")
    with pytest.raises(DataError, match="file not found"):
        read_utterance_vectors(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read as .npz"):
        read_utterance_vectors(tmp_path / "junk.npz")
    write_vectors_npz(tmp_path / "dup.npz", ["a", "a"], np.ones((2, 2)))
    with pytest.raises(DataError, match="'a' appears twice"):
        read_utterance_vectors(tmp_path / "dup.npz")


def test_prepare_vectors_selects_then_normalises():
    data = UtteranceVectors(["a", "b"], np.array([[9.0, 3.0, 4.0], [9.0, 0.0, 2.0]], dtype=np.float32))
    out = prepare_vectors(data, half_index=1)
    np.testing.assert_allclose(out.vectors, [[0.6, 0.8], [0.0, 1.0]])
    assert data.vectors.shape == (2, 3)  # input untouched
    raw = prepare_vectors(data, dims="0:1", normalize=False)
    np.testing.assert_array_equal(raw.vectors, [[9.0], [9.0]])
