"""Streaming gen-feat (issue 14): long utterances are embedded and written block by block, read lazily.

The streamed rows must be the array path's rows bit for bit, for every option; an export with a
small streaming threshold must write the same bytes as one without; the lazy matrix reader must
read the rows kaldiio reads and reject damaged archives naming the file.
"""

from __future__ import annotations

import gzip
import itertools
import os
import shutil
import struct
from pathlib import Path
from types import SimpleNamespace

import kaldiio
import numpy as np
import pytest

from unspeech import kaldi_io
from unspeech.context import embed as embed_module
from unspeech.context.embed import FrameEmbedder, speaker_vector
from unspeech.errors import DataError
from unspeech.kaldi_io import LazyMatrix, RowBlocks

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "unspeech" / "models" / "unspeech_dnn_w32_libri200"
DEMO_FEATS = REPO / "data" / "demo_utts" / "feats.ark"
F = 5
LENGTHS = (1, 3, 6, 8, 9, 41, 95, 200)


class FakeTowers:
    """Deterministic towers whose embedding of a window does not depend on the rest of its batch."""

    runtime = "fake"

    def __init__(self, window: int = 8, context_window: int = 6, dim: int = 4):
        self.config = SimpleNamespace(window_length=window, window_neg_length=context_window, feat_size=F,
                                      embedding_size=dim)
        rng = np.random.default_rng(1)
        self.weights = {"target": rng.standard_normal((window, dim)).astype(np.float32),
                        "context": rng.standard_normal((context_window, dim)).astype(np.float32)}
        self.columns = np.arange(dim) % F
        self.calls = 0

    def embed(self, windows: np.ndarray, tower: str = "target") -> np.ndarray:
        self.calls += 1
        return (windows[:, :, self.columns] * self.weights[tower][None]).sum(axis=1).astype(np.float32)


class SliceOnly:
    """Features that allow only what the streamed path may use: len, shape and contiguous row slices."""

    ndim = 2

    def __init__(self, feats: np.ndarray):
        self._feats = feats
        self.shape = feats.shape
        self.widest = 0

    def __len__(self) -> int:
        return len(self._feats)

    def __getitem__(self, index):
        assert isinstance(index, slice) and index.step is None and 0 <= index.start < index.stop <= len(self._feats)
        self.widest = max(self.widest, index.stop - index.start)
        return self._feats[index].copy()

    def __array__(self, *args, **kwargs):
        raise AssertionError("a streamed utterance was read whole")


@pytest.fixture()
def small_blocks(monkeypatch):
    """Blocks of 5 rows, reads of at most 11 frames: every boundary case shows up in short utterances."""
    monkeypatch.setattr(embed_module, "STREAM_BLOCK_ROWS", 5)
    monkeypatch.setattr(embed_module, "_READ_FRAMES", 11)


def _feats() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"u{n}": rng.standard_normal((n, F)).astype(np.float32) for n in LENGTHS}


def _rows(rows) -> np.ndarray:
    return np.concatenate(list(rows)) if isinstance(rows, RowBlocks) else rows


@pytest.mark.parametrize("alignment, interpolate, combine, normalize",
                         list(itertools.product(["start", "center"], [False, True], [False, True], [False, True])))
@pytest.mark.parametrize("windows", [(8, 6), (6, 9)])
def test_streamed_rows_equal_the_array_rows(monkeypatch, small_blocks, alignment, interpolate, combine, normalize,
                                            windows):
    towers = FakeTowers(*windows)
    feats = _feats()
    for period, batch_size in [(1, 5), (3, 1), (10, 128), (2, 7)]:
        embedder = FrameEmbedder(towers, period=period, alignment=alignment, interpolate_padding=interpolate,
                                 combine_contexts=combine, normalize_to_input_length=normalize, batch_size=batch_size)
        monkeypatch.setattr(embed_module, "STREAM_ROWS", 10**9)
        expected = dict(embedder.embed(feats.items()))
        assert all(isinstance(r, np.ndarray) for r in expected.values())
        monkeypatch.setattr(embed_module, "STREAM_ROWS", 0)
        inputs = {u: SliceOnly(x) for u, x in feats.items()}
        got = list(embedder.embed(inputs.items()))
        assert [u for u, _ in got] == list(feats)
        for utt, rows in got:
            assert isinstance(rows, RowBlocks) and rows.shape == expected[utt].shape
            blocks = list(rows)
            assert all(len(b) <= 5 for b in blocks)
            np.testing.assert_array_equal(np.concatenate(blocks), expected[utt], err_msg=f"{utt} period {period}")
            assert inputs[utt].widest <= max(11, windows[0] + windows[1])


def test_mixed_utterances_keep_input_order_and_are_read_lazily(monkeypatch, small_blocks):
    towers = FakeTowers()
    feats = _feats()
    embedder = FrameEmbedder(towers, period=2, combine_contexts=True, batch_size=4)
    monkeypatch.setattr(embed_module, "STREAM_ROWS", 10**9)
    expected = dict(embedder.embed(feats.items()))
    monkeypatch.setattr(embed_module, "STREAM_ROWS", 40)  # u41, u95, u200 are streamed
    inputs = {u: (SliceOnly(x) if len(x) > 40 else x) for u, x in feats.items()}
    read: list[str] = []

    def items():
        for utt, x in inputs.items():
            read.append(utt)
            yield utt, x

    got = []
    for utt, rows in embedder.embed(items()):
        if isinstance(rows, RowBlocks):
            assert read[-1] == utt  # nothing after a streamed utterance is read before its rows
            calls = towers.calls
            first = next(iter(rows))
            assert towers.calls > calls  # rows are computed as the blocks are consumed
            rows = np.concatenate([first, *rows])
        got.append((utt, rows))
    assert [u for u, _ in got] == list(feats)
    assert [u for u, r in embedder.embed(inputs.items()) if isinstance(r, RowBlocks)] == ["u41", "u95", "u200"]
    for utt, rows in got:
        np.testing.assert_array_equal(rows, expected[utt])


def test_speaker_vector_and_embed_utterance_of_streamed_rows(monkeypatch, small_blocks):
    embedder = FrameEmbedder(FakeTowers(), period=1, batch_size=3)
    x = _feats()["u200"]
    monkeypatch.setattr(embed_module, "STREAM_ROWS", 10**9)
    whole = embedder.embed_utterance(x)
    monkeypatch.setattr(embed_module, "STREAM_ROWS", 10)
    np.testing.assert_array_equal(embedder.embed_utterance(SliceOnly(x)), whole)
    (_, streamed), = embedder.embed([("u", SliceOnly(x))])
    for l2 in (True, False):
        blocks = RowBlocks(whole.shape, [whole[:7], whole[7:100], whole[100:]])
        np.testing.assert_array_equal(speaker_vector(blocks, l2), speaker_vector(whole, l2))
    np.testing.assert_array_equal(speaker_vector(streamed), speaker_vector(whole))


# ---------------------------------------------------------------------- gen-feat end to end


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Eight demo utterances (157..329 frames of 40 fbank bins) as ark + scp, and as a gzipped ark."""
    d = tmp_path_factory.mktemp("streaming")
    utts = list(itertools.islice(kaldi_io.iter_mats(str(DEMO_FEATS)), 8))
    kaldi_io.write_mats(d / "feats.ark", utts, d / "feats.scp")
    with open(d / "feats.ark", "rb") as src, gzip.open(d / "feats.ark.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    return d, dict(utts)


def _export(source: Path, prefix: Path, **options) -> tuple[dict, list]:
    from unspeech.context.export import GenFeatOptions, gen_feat

    seen: list = []
    summary = gen_feat(str(MODEL), str(source), GenFeatOptions(output_feat_file=str(prefix), runtime="onnx", quiet=True,
                                                               **options),
                       on_utterance=lambda utt, frames: seen.append((utt, frames)), threads=1)
    return summary, seen


@pytest.mark.parametrize("source", ["feats.scp", "feats.ark", "feats.ark.gz"])
@pytest.mark.parametrize("options", [
    {"genfeat_stride": 1, "genfeat_combine_contexts": True},
    {"genfeat_stride": 10, "genfeat_alignment": "center", "genfeat_interpolate_outputlength_padding": True,
     "kaldi_normalize_to_input_length": True},
])
def test_streamed_export_writes_the_same_bytes(demo, tmp_path, monkeypatch, source, options):
    pytest.importorskip("onnxruntime")
    d, utts = demo
    _, seen_whole = _export(d / source, tmp_path / "whole" / "ivector_online", **options)
    monkeypatch.setattr(embed_module, "STREAM_ROWS", 200)
    monkeypatch.setattr(embed_module, "STREAM_BLOCK_ROWS", 64)
    lazy = []
    real_read_rows = LazyMatrix.read_rows

    def spy(self, first, stop):
        lazy.append(self.where)
        return real_read_rows(self, first, stop)

    monkeypatch.setattr(LazyMatrix, "read_rows", spy)
    summary, seen = _export(d / source, tmp_path / "streamed" / "ivector_online", **options)
    assert (tmp_path / "streamed" / "ivector_online.ark").read_bytes() == \
        (tmp_path / "whole" / "ivector_online.ark").read_bytes()
    assert seen == seen_whole == [(u, len(x)) for u, x in utts.items()]
    assert summary["utterances"] == len(utts) and summary["frames"] == sum(len(x) for x in utts.values())
    long = {u for u, x in utts.items() if len(x) > 200}
    assert long, "the demo utterances must include some over the threshold"
    if source == "feats.ark.gz":
        assert not lazy  # a gzipped ark is a stream: read whole
    else:
        assert {w.split("'")[1] for w in lazy} == long


def test_streamed_speaker_vectors_npz_and_jobs(demo, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from unspeech.context.export import merge_jobs

    d, utts = demo
    _export(d / "feats.scp", tmp_path / "whole" / "spk", generate_speaker_vectors=True)
    _export(d / "feats.scp", tmp_path / "whole" / "rows", output_format="npz", genfeat_stride=3)
    monkeypatch.setattr(embed_module, "STREAM_ROWS", 150)
    monkeypatch.setattr(embed_module, "STREAM_BLOCK_ROWS", 16)
    _export(d / "feats.scp", tmp_path / "streamed" / "spk", generate_speaker_vectors=True)
    _export(d / "feats.scp", tmp_path / "streamed" / "rows", output_format="npz", genfeat_stride=3)
    assert (tmp_path / "streamed" / "spk.ark").read_bytes() == (tmp_path / "whole" / "spk.ark").read_bytes()
    with np.load(tmp_path / "whole" / "rows.npz") as a, np.load(tmp_path / "streamed" / "rows.npz") as b:
        assert a.files == b.files == list(utts)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])
    for j in (1, 2):  # a job reads its own scp lines, lazily too
        _export(d / "feats.scp", tmp_path / "jobs" / "ivector_online", job=j, num_jobs=2, genfeat_stride=1)
    merge_jobs(str(tmp_path / "jobs" / "ivector_online"), 2)
    monkeypatch.setattr(embed_module, "STREAM_ROWS", 10**9)
    _export(d / "feats.scp", tmp_path / "one" / "ivector_online", genfeat_stride=1)
    a = dict(kaldiio.load_scp(str(tmp_path / "one" / "ivector_online.scp")))
    b = dict(kaldiio.load_scp(str(tmp_path / "jobs" / "ivector_online.scp")))
    assert list(a) == list(b) == list(utts)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


# ---------------------------------------------------------------------- lazy matrices


@pytest.fixture()
def arks(tmp_path):
    rng = np.random.default_rng(2)
    mats = [("long32", rng.standard_normal((500, 7)).astype(np.float32)), ("short", np.ones((3, 7), np.float32)),
            ("long64", rng.standard_normal((300, 7)))]
    kaldi_io.write_mats(tmp_path / "f32.ark", mats[:2], tmp_path / "f32.scp")
    kaldi_io.write_mats(tmp_path / "f64.ark", mats[2:], tmp_path / "f64.scp", dtype="float64")
    (tmp_path / "all.scp").write_text((tmp_path / "f32.scp").read_text() + (tmp_path / "f64.scp").read_text())
    return tmp_path, dict(mats)


@pytest.mark.parametrize("spec", ["scp:{d}/all.scp", "{d}/f32.ark"])
def test_lazy_matrices_read_the_rows_kaldiio_reads(arks, spec):
    d, mats = arks
    reference = dict(kaldiio.load_scp(str(d / "all.scp")))
    got = list(kaldi_io.iter_mats_lazy(spec.format(d=d), min_rows=100))
    assert [u for u, _ in got] == (list(mats) if spec.startswith("scp") else ["long32", "short"])
    for utt, mat in got:
        if utt == "short":
            assert isinstance(mat, np.ndarray)
            np.testing.assert_array_equal(mat, reference[utt])
            continue
        assert isinstance(mat, LazyMatrix) and mat.ndim == 2 and len(mat) == len(reference[utt])
        assert mat.shape == reference[utt].shape and mat.dtype == reference[utt].dtype
        for rows in [slice(0, 1), slice(17, 123), slice(250, None), slice(None, None), slice(-5, None), slice(40, 30)]:
            np.testing.assert_array_equal(mat[rows], reference[utt][rows])
        np.testing.assert_array_equal(mat[-1], reference[utt][-1])
        np.testing.assert_array_equal(np.asarray(mat), reference[utt])
        np.testing.assert_array_equal(np.asarray(mat, dtype=np.float32), reference[utt].astype(np.float32))
        with pytest.raises(IndexError, match="step 1"):
            mat[::2]
    # below min_rows, everything is an array, as iter_mats reads it
    assert all(isinstance(m, np.ndarray) for _, m in kaldi_io.iter_mats_lazy(f"scp:{d}/all.scp", min_rows=10**6))


def test_compressed_ranged_and_streamed_inputs_are_read_whole(arks):
    d, mats = arks
    kaldi_io.write_mats(d / "cm.ark", [("long32", mats["long32"])], d / "cm.scp", compress=True)
    (d / "ranged.scp").write_text((d / "f32.scp").read_text().splitlines()[0] + "[10:19]\n")
    with open(d / "f32.ark", "rb") as src, gzip.open(d / "f32.ark.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    for spec in (f"scp:{d}/cm.scp", f"scp:{d}/ranged.scp", f"{d}/f32.ark.gz", f"ark:cat {d}/f32.ark |"):
        got = list(kaldi_io.iter_mats_lazy(spec, min_rows=1))
        want = list(kaldi_io.iter_mats(spec))
        assert [u for u, _ in got] == [u for u, _ in want]
        for (_, a), (_, b) in zip(got, want):
            assert isinstance(a, np.ndarray)
            np.testing.assert_array_equal(a, b)


def test_truncated_or_damaged_archives_are_one_error_naming_the_file(arks):
    d, mats = arks
    ark = d / "f32.ark"
    data = ark.read_bytes()
    (d / "cut.ark").write_bytes(data[:len(data) // 2])  # inside the long matrix
    (d / "cut.scp").write_text((d / "f32.scp").read_text().replace(str(ark), str(d / "cut.ark")))
    for spec in (f"scp:{d}/cut.scp", f"{d}/cut.ark"):
        with pytest.raises(DataError, match=r"cut\.(scp|ark).*'long32'.*needs 14000 bytes but only \d+ remain"):
            list(kaldi_io.iter_mats_lazy(spec, min_rows=100))
    # truncated after the lazy matrix was made: the read names the archive and the rows
    shutil.copy(ark, d / "later.ark")
    (d / "later.scp").write_text((d / "f32.scp").read_text().replace(str(ark), str(d / "later.ark")))
    (_, mat), *_ = kaldi_io.iter_mats_lazy(f"scp:{d}/later.scp", min_rows=100)
    os.truncate(d / "later.ark", 4000)
    np.testing.assert_array_equal(mat[0:10], mats["long32"][0:10])
    with pytest.raises(DataError, match=r"later\.scp: utterance 'long32'.*rows 100:200 at byte \d+ of .*later\.ark: "
                                        r"unexpected end of file"):
        mat[100:200]
    # NaN: found by the read that meets it, counted in rows of the matrix
    bad = mats["long32"].copy()
    bad[321, 4] = np.nan
    kaldi_io.write_mats(d / "nan.ark", [("ok", np.ones((2, 7), np.float32))])
    with open(d / "nan.ark", "ab") as fh:  # write_mats refuses NaN
        fh.write(b"long32 \0BFM " + struct.pack("<bibi", 4, 500, 4, 7) + bad.tobytes())
    (_, _), (_, mat) = kaldi_io.iter_mats_lazy(f"{d}/nan.ark", min_rows=100)
    np.testing.assert_array_equal(mat[:300], mats["long32"][:300])
    with pytest.raises(DataError, match=r"nan\.ark: utterance 'long32' at byte \d+: matrix contains NaN or Inf "
                                        r"\(first at row 321\)"):
        mat[300:400]
