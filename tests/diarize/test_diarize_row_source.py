"""Rows that may live on disk (issue 14): spool, views, gathering, and the block-wise steps of the
rows stage giving the results of the whole-array computation."""

import os

import numpy as np
import pytest

from unspeech.diarize import postprocess, vad
from unspeech.diarize.clustering import cluster_rows
from unspeech.diarize.pipeline import moving_average
from unspeech.diarize.profiles import l2_normalize
from unspeech.diarize.row_source import RowSpool, RowView, block_mean, take
from unspeech.diarize.speaker_count import estimate_num_speakers
from unspeech.errors import DataError


def _spooled(tmp_path, x, dtype=np.float32, block=37):
    spool = RowSpool(tmp_path, "rows", x.shape[1], dtype)
    for a in range(0, len(x), block):
        spool.append(x[a:a + block])
    return spool.rows()


def test_spool_reads_back_what_was_written_by_slice_and_by_index(tmp_path):
    x = np.random.default_rng(0).normal(size=(1000, 6)).astype(np.float32)
    rows = _spooled(tmp_path, x)
    assert rows.shape == (1000, 6) and os.path.getsize(tmp_path / "rows.bin") == x.nbytes
    np.testing.assert_array_equal(rows[10:20], x[10:20])
    idx = np.array([0, 0, 3, 500, 501, 999])  # sorted, with a repeat and a far jump
    np.testing.assert_array_equal(take(rows, idx), x[idx])
    with pytest.raises(ValueError, match="sorted"):
        take(rows, np.array([5, 1]))
    with pytest.raises(ValueError, match=r"\(n, 6\)"):
        RowSpool(tmp_path, "bad", 6).append(np.zeros((2, 5)))


def test_row_view_centres_and_normalises_only_the_rows_asked_for(tmp_path):
    x = np.random.default_rng(1).normal(size=(300, 4))
    rows = _spooled(tmp_path, x, np.float64)
    core = np.flatnonzero(np.arange(300) % 3 != 0)
    mean = x[core].mean(axis=0)
    view = RowView(rows, core, mean=mean, normalise=True)
    want = l2_normalize(x[core] - mean)
    assert len(view) == len(core) and view.shape == (len(core), 4)
    np.testing.assert_allclose(view[5:50], want[5:50], atol=1e-12)
    np.testing.assert_allclose(view[np.array([0, 7, 199])], want[[0, 7, 199]], atol=1e-12)
    mask = np.zeros(len(core), bool)
    mask[[1, 2, 150]] = True
    np.testing.assert_allclose(view[mask], want[mask], atol=1e-12)
    np.testing.assert_allclose(np.asarray(view), want, atol=1e-12)
    np.testing.assert_allclose(block_mean(RowView(rows, core)), mean, atol=1e-12)


def test_moving_average_of_rows_on_disk_equals_the_array_result(tmp_path):
    x = np.random.default_rng(2).normal(size=(20000, 3))  # more than one block of the moving average
    rows = _spooled(tmp_path, x, np.float64, block=4096)
    np.testing.assert_array_equal(moving_average(rows, 10), moving_average(x, 10))


def test_clustering_and_count_read_a_view_like_the_array(tmp_path):
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(3, 16)) * 3
    truth = np.repeat(np.arange(3), 120)
    x = centres[truth] + rng.normal(size=(len(truth), 16))
    rows = _spooled(tmp_path, x, np.float64)
    view = RowView(rows)
    for method in ("spectral", "ahc"):
        on_disk = cluster_rows(view, method, count_rule="eigengap")
        in_memory = cluster_rows(x, method, count_rule="eigengap")
        np.testing.assert_array_equal(on_disk, in_memory)
        assert len(np.unique(on_disk)) == 3
    assert estimate_num_speakers(view, rule="eigengap")[0] == estimate_num_speakers(x, rule="eigengap")[0] == 3
    bad = x.copy()
    bad[200, 3] = np.nan
    (tmp_path / "bad").mkdir()
    with pytest.raises(DataError, match="NaN"):
        estimate_num_speakers(RowView(_spooled(tmp_path / "bad", bad, np.float64)), rule="eigengap")


def test_smoothing_and_vad_voting_in_blocks_equal_one_block(monkeypatch):
    rng = np.random.default_rng(4)
    labels = np.repeat(rng.integers(-1, 3, size=400), rng.integers(1, 60, size=400)).astype(np.int8)
    energy = np.log(rng.uniform(1, 1e9, size=len(labels)))
    whole_labels = postprocess.smooth_labels(labels, 83)
    whole_mask = vad.EnergyVAD().from_log_energy(energy)
    monkeypatch.setattr(postprocess, "_FRAME_BLOCK", 997)
    monkeypatch.setattr(vad, "_FRAME_BLOCK", 991)
    blocked = postprocess.smooth_labels(labels, 83)
    np.testing.assert_array_equal(blocked, whole_labels)
    assert blocked.dtype == np.int8  # small frame labels stay small
    np.testing.assert_array_equal(vad.EnergyVAD().from_log_energy(energy), whole_mask)


def test_gathering_scattered_rows_reads_bounded_ranges(tmp_path, monkeypatch):
    """Rows of one speaker spread over a whole recording are read range by range, never the span."""
    from unspeech.diarize import row_source

    x = np.arange(20000 * 2, dtype=np.float32).reshape(20000, 2)
    rows = _spooled(tmp_path, x, block=5000)
    reads = []
    real = type(rows).read_rows
    monkeypatch.setattr(type(rows), "read_rows", lambda self, a, b: reads.append(b - a) or real(self, a, b))
    idx = np.sort(np.random.default_rng(5).choice(20000, 3000, replace=False))
    np.testing.assert_array_equal(take(rows, idx), x[idx])
    assert max(reads) <= row_source._SPAN and sum(reads) <= 20000
