"""write_mats with RowBlocks: a matrix streamed in blocks is the same ark as the whole matrix."""

import kaldiio
import numpy as np
import pytest

from unspeech import kaldi_io
from unspeech.errors import DataError


def _blocks(mat, size):
    return kaldi_io.RowBlocks(mat.shape, (mat[i:i + size] for i in range(0, len(mat), size)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_streamed_matrix_is_byte_identical(tmp_path, dtype):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((1000, 7)).astype(np.float32), rng.standard_normal((3, 7)).astype(np.float32)
    kaldi_io.write_mats(tmp_path / "whole.ark", [("a", a), ("b", b)], tmp_path / "whole.scp", dtype=dtype)
    kaldi_io.write_mats(tmp_path / "blocks.ark", [("a", _blocks(a, 64)), ("b", _blocks(b, 2))],
                        tmp_path / "blocks.scp", dtype=dtype)
    assert (tmp_path / "whole.ark").read_bytes() == (tmp_path / "blocks.ark").read_bytes()
    read = dict(kaldiio.load_scp(str(tmp_path / "blocks.scp")))
    np.testing.assert_array_equal(read["a"], a)


@pytest.mark.parametrize("kwargs", [{"compress": True}, {"text": True}])
def test_compressed_and_text_output_join_the_blocks(tmp_path, kwargs):
    a = np.random.default_rng(1).standard_normal((50, 4)).astype(np.float32)
    kaldi_io.write_mats(tmp_path / "whole.ark", [("a", a)], **kwargs)
    kaldi_io.write_mats(tmp_path / "blocks.ark", [("a", _blocks(a, 16))], **kwargs)
    assert (tmp_path / "whole.ark").read_bytes() == (tmp_path / "blocks.ark").read_bytes()


@pytest.mark.parametrize("shape, blocks, message", [
    ((10, 4), [np.zeros((6, 4))], "add up to 6 rows, 10 were announced"),
    ((5, 4), [np.zeros((6, 4))], "more than the 5 rows"),
    ((6, 4), [np.zeros((6, 3))], "a block of shape (6, 3)"),
    ((6, 4), [np.zeros((2, 4)), np.full((4, 4), np.nan)], "NaN or Inf (first at row 2 + 0)"),
])
def test_wrong_blocks_are_one_error_and_nothing_is_published(tmp_path, shape, blocks, message):
    old = np.ones((2, 2), np.float32)
    kaldi_io.write_mats(tmp_path / "x.ark", [("old", old)], tmp_path / "x.scp")
    before = (tmp_path / "x.ark").read_bytes(), (tmp_path / "x.scp").read_bytes()
    with pytest.raises(DataError) as err:
        kaldi_io.write_mats(tmp_path / "x.ark", [("u1", kaldi_io.RowBlocks(shape, iter(blocks)))], tmp_path / "x.scp")
    assert message in str(err.value) and "x.ark" in str(err.value) and "'u1'" in str(err.value)
    assert ((tmp_path / "x.ark").read_bytes(), (tmp_path / "x.scp").read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ark", "x.scp"]
