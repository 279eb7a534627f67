"""The bulk reader of one-row arks (utterance vectors): same result as the record reader, or a fallback."""

from __future__ import annotations

import numpy as np
import pytest

from unspeech import kaldi_io
from unspeech.cluster.vectors import read_utterance_vectors
from unspeech.errors import DataError


def _vectors(n: int = 300, dim: int = 7, seed: int = 0, as_vector: bool = False, dtype=np.float32, one_length=False):
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        # ids of several lengths (records walked one by one), or of one length (read as one byte grid)
        key = f"spk-{i:06d}" if one_length else "spk" + "x" * int(rng.integers(0, 4)) + f"-{i}"
        row = rng.standard_normal(dim).astype(dtype)
        items.append((key, row if as_vector else row[None]))
    return items


def _record_reader(path):
    ids, rows = zip(*((k, m.reshape(-1)) for k, m in kaldi_io.iter_mats(path)))
    return list(ids), np.stack(rows)


@pytest.mark.parametrize("one_length", [False, True])
@pytest.mark.parametrize("as_vector, dtype", [(False, np.float32), (True, np.float32), (False, np.float64), (True, np.float64)])
def test_equals_the_record_reader(tmp_path, as_vector, dtype, one_length):
    ark = tmp_path / "v.ark"
    kaldi_io.write_mats(ark, _vectors(as_vector=as_vector, dtype=dtype, one_length=one_length))
    ids, rows = kaldi_io.read_row_ark(ark)
    want_ids, want = _record_reader(ark)
    assert ids == want_ids
    np.testing.assert_array_equal(rows, want)
    assert rows.dtype == want.dtype and rows.flags.writeable


def test_one_record_and_constant_id_lengths(tmp_path):
    ark = tmp_path / "v.ark"
    kaldi_io.write_mats(ark, [(f"u{i:04d}", np.full((1, 3), i, np.float32)) for i in range(50)])
    ids, rows = kaldi_io.read_row_ark(ark)
    assert ids[-1] == "u0049" and rows[:, 0].tolist() == list(range(50))
    kaldi_io.write_mats(ark, [("only", np.ones((1, 3), np.float32))])
    assert kaldi_io.read_row_ark(ark)[0] == ["only"]


@pytest.mark.parametrize("case", ["text", "compressed", "two rows", "mixed dims", "trailing garbage", "empty", "cut short"])
@pytest.mark.parametrize("one_length", [False, True])
def test_anything_else_falls_back(tmp_path, case, one_length):
    ark = tmp_path / "v.ark"
    items = _vectors(20, one_length=one_length)
    if case == "text":
        kaldi_io.write_mats(ark, items, text=True)
    elif case == "compressed":
        kaldi_io.write_mats(ark, items, compress="two_byte_auto")
    elif case == "two rows":
        kaldi_io.write_mats(ark, items[:5] + [("long", np.ones((2, 7), np.float32))] + items[5:])
    elif case == "mixed dims":
        kaldi_io.write_mats(ark, items + [("wide", np.ones((1, 8), np.float32))])
    elif case == "trailing garbage":
        kaldi_io.write_mats(ark, items)
        ark.write_bytes(ark.read_bytes() + b"\0\0\0garbage")
    elif case == "empty":
        ark.write_bytes(b"")
    else:
        kaldi_io.write_mats(ark, items)
        ark.write_bytes(ark.read_bytes()[:-3])
    assert kaldi_io.read_row_ark(ark) is None


@pytest.mark.parametrize("one_length", [False, True])
def test_nan_is_an_error_naming_the_utterance(tmp_path, one_length):
    ark, scp = tmp_path / "v.ark", tmp_path / "v.scp"
    items = _vectors(10, one_length=one_length)
    kaldi_io.write_mats(ark, items, scp)  # (write_mats refuses NaN: put one in by hand)
    offset = int(scp.read_text().splitlines()[6].rsplit(":", 1)[1]) + len(b"\0BFM \x04....\x04....")
    data = bytearray(ark.read_bytes())
    data[offset: offset + 4] = np.array([np.nan], "<f4").tobytes()
    ark.write_bytes(bytes(data))
    with pytest.raises(DataError, match=f"v.ark: utterance '{items[6][0]}' at byte {offset}: .*NaN"):
        kaldi_io.read_row_ark(ark)


@pytest.mark.parametrize("one_length", [False, True])
def test_bit_flips_fall_back_or_read_what_the_record_reader_reads(tmp_path, one_length):
    clean_path = tmp_path / "clean.ark"
    kaldi_io.write_mats(clean_path, _vectors(12, dim=5, one_length=one_length))
    clean = clean_path.read_bytes()
    rng = np.random.default_rng(3)
    ark = tmp_path / "bad.ark"
    outcomes = {"bulk": 0, "fallback": 0, "error": 0}
    for _ in range(300):
        data = bytearray(clean)
        data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
        ark.write_bytes(bytes(data))
        try:
            bulk = kaldi_io.read_row_ark(ark)
        except DataError as exc:
            assert "bad.ark" in str(exc)
            outcomes["error"] += 1
            continue
        if bulk is None:
            outcomes["fallback"] += 1
            continue
        outcomes["bulk"] += 1
        ids, rows = _record_reader(ark)  # the record reader must read it too, to the same values
        assert bulk[0] == ids
        np.testing.assert_array_equal(bulk[1], rows)
    assert outcomes["fallback"] and outcomes["bulk"], outcomes


def test_read_utterance_vectors_takes_the_bulk_path_and_checks_ids(tmp_path):
    ark = tmp_path / "v.ark"
    items = _vectors(40)
    kaldi_io.write_mats(ark, items)
    got = read_utterance_vectors(ark)
    got_ark = read_utterance_vectors(f"ark:{ark}")
    want_ids, want = _record_reader(ark)
    assert got.utt_ids == want_ids == got_ark.utt_ids
    np.testing.assert_array_equal(got.vectors, want)
    assert got.vectors.dtype == np.float32
    twice = tmp_path / "twice.ark"
    twice.write_bytes(ark.read_bytes() + ark.read_bytes()[: ark.read_bytes().index(items[1][0].encode())])
    with pytest.raises(DataError, match=f"utterance '{items[0][0]}' appears twice"):
        read_utterance_vectors(twice)


def test_ids_of_one_length_are_read_without_walking_the_records(tmp_path, monkeypatch):
    ark = tmp_path / "v.ark"
    items = _vectors(64, one_length=True)
    kaldi_io.write_mats(ark, items)
    want_ids, want = _record_reader(ark)

    def walk(*args, **kwargs):
        raise AssertionError("walked record by record")

    monkeypatch.setattr(kaldi_io, "_read_row_records", walk)
    ids, rows = kaldi_io.read_row_ark(ark)
    assert ids == want_ids
    np.testing.assert_array_equal(rows, want)
