"""FeatureStore: one contiguous array + offsets, in RAM or as one memmap file, with cache reuse."""

import os

import numpy as np
import pytest

from unspeech import kaldi_io
from unspeech.errors import ConfigError, DataError
from unspeech.feature_store import FeatureStore


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(1)
    mats = {f"spk{i % 3}-utt{i}": rng.standard_normal((5 + 3 * i, 8)).astype(np.float32) for i in range(10)}
    kaldi_io.write_mats(tmp_path / "feats.ark", mats.items(), tmp_path / "feats.scp")
    return tmp_path, mats


def _check(store, mats, atol=0.0):
    assert store.utt_ids == list(mats)
    assert store.dim == 8
    assert list(store.lengths) == [len(m) for m in mats.values()]
    assert store.offsets[0] == 0 and store.offsets[-1] == store.num_frames == sum(len(m) for m in mats.values())
    for i, (u, m) in enumerate(mats.items()):
        np.testing.assert_allclose(store[i], m, atol=atol)
        np.testing.assert_allclose(store.get(u), m, atol=atol)
        assert store.index(u) == i


@pytest.mark.parametrize("source", ["feats.ark", "feats.scp"])
def test_in_ram_and_memmap_agree(corpus, source):
    d, mats = corpus
    _check(FeatureStore.from_rspecifier(d / source), mats)
    store = FeatureStore.from_rspecifier(d / source, memmap_dir=d / "cache")
    assert isinstance(store.data, np.memmap)
    assert len(list((d / "cache").glob("*.feats"))) == 1
    _check(store, mats)


def test_views_not_copies(corpus):
    d, mats = corpus
    store = FeatureStore.from_rspecifier(d / "feats.ark")
    assert np.shares_memory(store[3], store.data)


def test_float16_storage(corpus):
    d, mats = corpus
    _check(FeatureStore.from_rspecifier(d / "feats.scp", dtype="float16"), mats, atol=1e-2)
    store = FeatureStore.from_rspecifier(d / "feats.ark", memmap_dir=d / "c16", dtype="float16")
    assert store.data.dtype == np.float16
    _check(store, mats, atol=1e-2)
    assert store.path.stat().st_size == store.num_frames * 8 * 2 + 16  # + the build token


def test_reuse_opens_without_reading(corpus, monkeypatch):
    d, mats = corpus
    FeatureStore.from_rspecifier(d / "feats.ark", memmap_dir=d / "cache")

    def boom(*a, **k):
        raise AssertionError("the ark must not be read again")

    monkeypatch.setattr(kaldi_io, "iter_mats", boom)
    _check(FeatureStore.from_rspecifier(d / "feats.ark", memmap_dir=d / "cache", reuse=True), mats)


def test_reuse_refuses_changed_source(corpus):
    d, mats = corpus
    FeatureStore.from_rspecifier(d / "feats.ark", memmap_dir=d / "cache")
    kaldi_io.write_mats(d / "feats.ark", list(mats.items())[:4])
    os.utime(d / "feats.ark", ns=(1, 1))
    with pytest.raises(DataError, match="built from a different version of .*feats.ark"):
        FeatureStore.from_rspecifier(d / "feats.ark", memmap_dir=d / "cache", reuse=True)
    # without reuse the cache is rebuilt
    assert len(FeatureStore.from_rspecifier(d / "feats.ark", memmap_dir=d / "cache")) == 4


def test_limit(corpus):
    d, mats = corpus
    store = FeatureStore.from_rspecifier(d / "feats.ark", memmap_dir=d / "cache", limit=3)
    assert store.utt_ids == list(mats)[:3]


def test_open_detects_corrupt_cache(corpus):
    d, _ = corpus
    store = FeatureStore.from_rspecifier(d / "feats.ark", memmap_dir=d / "cache")
    with open(store.path, "ab") as fh:
        fh.write(b"xx")
    with pytest.raises(DataError, match="expected"):
        FeatureStore.open(str(store.path)[: -len(".feats")])


def test_bad_inputs(tmp_path):
    kaldi_io.write_mats(tmp_path / "mixed.ark", [("a", np.zeros((2, 4))), ("b", np.zeros((2, 5)))])
    with pytest.raises(DataError, match=r"mixed\.ark: utterance 'b' has 5 columns, the corpus has 4"):
        FeatureStore.from_rspecifier(tmp_path / "mixed.ark", memmap_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.feats"))
    (tmp_path / "empty.ark").write_bytes(b"")
    with pytest.raises(DataError, match="no matrices found"):
        FeatureStore.from_rspecifier(tmp_path / "empty.ark", memmap_dir=tmp_path / "cache")
    with pytest.raises(ConfigError, match="memmap dtype must be one of"):
        FeatureStore.from_rspecifier(tmp_path / "empty.ark", dtype="int8")
    with pytest.raises(DataError, match="3 utterance ids but 2 matrices"):
        FeatureStore.from_arrays(["a", "b", "c"], [np.zeros((1, 2))] * 2)
    with pytest.raises(KeyError, match="'zzz' is not in the feature store"):
        FeatureStore.from_arrays(["a"], [np.zeros((1, 2))]).index("zzz")
