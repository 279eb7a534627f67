"""Kaldi ark/scp reading and writing: round trips, kaldiio agreement, and every bad-input path."""

import gzip
import shutil

import kaldiio
import numpy as np
import pytest

from unspeech import kaldi_io
from unspeech.errors import ConfigError, DataError


def _mats(n=4, dim=5, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return {f"utt{i}": rng.standard_normal((3 + i, dim)).astype(dtype) for i in range(n)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("ids", [["a", "b"], ["spk-ä-1", "說話人-2"]])
def test_round_trip_ark_and_scp(tmp_path, dtype, ids):
    mats = {u: np.arange(12, dtype=dtype).reshape(3, 4) + i for i, u in enumerate(ids)}
    mats["empty"] = np.zeros((0, 4), dtype=dtype)
    n = kaldi_io.write_mats(tmp_path / "x.ark", mats.items(), tmp_path / "x.scp", dtype=dtype)
    assert n == 3
    for spec in (tmp_path / "x.ark", f"scp:{tmp_path / 'x.scp'}", f"ark:{tmp_path / 'x.ark'}"):
        ids_read, feats = kaldi_io.load_mats(spec)
        assert ids_read == list(mats)
        for u, f in zip(ids_read, feats):
            assert f.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(f, mats[u])
    # kaldiio reads what we write
    for u, f in kaldiio.load_scp(str(tmp_path / "x.scp")).items():
        np.testing.assert_array_equal(f, mats[u])


def test_vectors_and_text_ark(tmp_path):
    items = [("m", np.ones((2, 3), np.float32)), ("v", np.arange(3, dtype=np.float32))]
    kaldi_io.write_mats(tmp_path / "t.ark", items, text=True)
    ids, feats = kaldi_io.load_mats(f"ark,t:{tmp_path / 't.ark'}", same_dim=False)
    assert ids == ["m", "v"]
    assert feats[0].shape == (2, 3) and feats[1].shape == (3,)
    np.testing.assert_array_equal(feats[1], [0, 1, 2])
    # kaldiio's text writer agrees with our reader
    kaldiio.save_ark(str(tmp_path / "k.ark"), {"m": np.full((2, 2), 2.5)}, text=True)
    np.testing.assert_array_equal(kaldi_io.load_mats(tmp_path / "k.ark")[1][0], np.full((2, 2), 2.5))


@pytest.mark.parametrize("method", [1, 2, 3, 5])
def test_gzipped_compressed_ark_matches_kaldiio(tmp_path, method):
    mats = _mats(dim=40)
    kaldiio.save_ark(str(tmp_path / "c.ark"), mats, compression_method=method)
    with open(tmp_path / "c.ark", "rb") as src, gzip.open(tmp_path / "c.ark.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    expected = dict(kaldiio.load_ark(str(tmp_path / "c.ark")))
    utts, feats = kaldi_io.readArk(str(tmp_path / "c.ark.gz"))
    assert utts == list(mats)
    for u, f in zip(utts, feats):
        np.testing.assert_allclose(f, expected[u], rtol=0, atol=1e-6)
        # within compression error of the originals
        assert np.abs(f - mats[u]).max() < 0.1 * np.abs(mats[u]).max()


def test_pipe_rspecifier(tmp_path):
    kaldi_io.write_mats(tmp_path / "x.ark", _mats().items())
    ids, _ = kaldi_io.load_mats(f"ark:cat {tmp_path / 'x.ark'} |")
    assert ids == list(_mats())


def test_write_compressed_and_append(tmp_path):
    mats = _mats(dim=40)
    items = list(mats.items())
    kaldi_io.write_mats(tmp_path / "x.ark", items[:2], tmp_path / "x.scp", compress=True)
    kaldi_io.write_mats(tmp_path / "x.ark", items[2:], tmp_path / "x.scp", compress="speech_feature", append=True)
    got = kaldiio.load_scp(str(tmp_path / "x.scp"))
    assert list(got) == list(mats)
    for u in mats:
        assert np.abs(got[u] - mats[u]).max() < 0.05


def test_original_api_round_trip(tmp_path):
    mats = _mats()
    pointers = kaldi_io.writeArk(str(tmp_path / "o.ark"), list(mats.values()), list(mats))
    assert pointers[0].startswith(str(tmp_path / "o.ark") + ":")
    kaldi_io.writeScp(str(tmp_path / "o.scp"), list(mats), pointers)
    utts, feats = kaldi_io.readScp(str(tmp_path / "o.scp"))
    assert utts == list(mats)
    np.testing.assert_array_equal(feats[2], mats["utt2"])
    utts, feats = kaldi_io.readArk(str(tmp_path / "o.ark"), limit=2)
    assert utts == ["utt0", "utt1"]


def test_readark_memmap_uses_one_file(tmp_path):
    mats = _mats(n=20)
    kaldi_io.write_mats(tmp_path / "x.ark", mats.items())
    utts, feats = kaldi_io.readArk(str(tmp_path / "x.ark"), memmap_dir=str(tmp_path / "cache"), memmap_dtype="float32")
    assert utts == list(mats)
    assert len(list((tmp_path / "cache").glob("*.feats"))) == 1
    np.testing.assert_array_equal(feats[5], mats["utt5"])


# ---------------------------------------------------------------- bad input


def _write(tmp_path, name="x.ark", mats=None):
    kaldi_io.write_mats(tmp_path / name, (mats or _mats()).items(), tmp_path / (name + ".scp"))
    return tmp_path / name


def test_truncated_ark(tmp_path):
    ark = _write(tmp_path)
    data = ark.read_bytes()
    (tmp_path / "cut.ark").write_bytes(data[: len(data) - 7])
    with pytest.raises(DataError, match=r"cut\.ark: utterance 'utt3'.*truncated"):
        kaldi_io.load_mats(tmp_path / "cut.ark")


def test_wrong_binary_header(tmp_path):
    (tmp_path / "bad.ark").write_bytes(b"utt1 \0BXYZ \x04\x01\x00\x00\x00")
    with pytest.raises(DataError, match=r"bad\.ark: utterance 'utt1'.*unknown binary matrix type"):
        kaldi_io.load_mats(tmp_path / "bad.ark")
    (tmp_path / "junk.ark").write_bytes(b"utt1 garbage")
    with pytest.raises(DataError, match=r"junk\.ark: utterance 'utt1'.*bad matrix header"):
        kaldi_io.load_mats(tmp_path / "junk.ark")


def test_mixed_dimensions(tmp_path):
    mats = {"a": np.zeros((3, 40), np.float32), "b": np.zeros((3, 13), np.float32)}
    ark = _write(tmp_path, mats=mats)
    with pytest.raises(DataError, match=r"utterance 'b' has dimension \(13,\), but 'a' has \(40,\)"):
        kaldi_io.load_mats(ark)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_values(tmp_path, bad):
    m = np.zeros((4, 3), np.float32)
    m[2, 1] = bad
    kaldiio.save_ark(str(tmp_path / "n.ark"), {"ok": np.zeros((2, 3), np.float32), "broken": m})
    with pytest.raises(DataError, match=r"n\.ark: utterance 'broken'.*NaN or Inf \(first at row 2\)"):
        kaldi_io.load_mats(tmp_path / "n.ark")
    with pytest.raises(DataError, match="utterance 'broken'.*NaN or Inf"):
        kaldi_io.write_mats(tmp_path / "out.ark", [("broken", m)])
    assert not (tmp_path / "out.ark").exists()


def test_empty_ark(tmp_path):
    (tmp_path / "e.ark").write_bytes(b"")
    with pytest.raises(DataError, match=r"e\.ark: no matrices found"):
        kaldi_io.load_mats(tmp_path / "e.ark")
    assert list(kaldi_io.iter_mats(tmp_path / "e.ark")) == []


def test_scp_missing_file_and_bad_offset(tmp_path):
    (tmp_path / "m.scp").write_text(f"u1 {tmp_path / 'nowhere.ark'}:5\n")
    with pytest.raises(DataError, match=r"m\.scp: utterance 'u1'.*nowhere\.ark not found"):
        kaldi_io.load_mats(tmp_path / "m.scp")
    ark = _write(tmp_path)
    (tmp_path / "o.scp").write_text(f"u1 {ark}:10\n")
    with pytest.raises(DataError, match=r"o\.scp: utterance 'u1'"):
        kaldi_io.load_mats(tmp_path / "o.scp")
    (tmp_path / "p.scp").write_text(f"u1 {ark}:99999999\n")
    with pytest.raises(DataError, match=r"p\.scp: utterance 'u1'.*past the end"):
        kaldi_io.load_mats(tmp_path / "p.scp")


def test_missing_ark_file(tmp_path):
    with pytest.raises(DataError, match=r"file not found: .*absent\.ark"):
        kaldi_io.load_mats(tmp_path / "absent.ark")


def test_failed_write_leaves_nothing(tmp_path):
    def items():
        yield "good", np.zeros((2, 2), np.float32)
        raise RuntimeError("producer died")

    with pytest.raises(RuntimeError):
        kaldi_io.write_mats(tmp_path / "x.ark", items(), tmp_path / "x.scp")
    assert list(tmp_path.iterdir()) == []


def test_failed_append_restores_old_ark(tmp_path):
    ark = _write(tmp_path)
    before = ark.read_bytes()
    scp_before = (tmp_path / "x.ark.scp").read_bytes()
    with pytest.raises(DataError, match="invalid utterance id"):
        kaldi_io.write_mats(ark, [("new", np.ones((2, 5))), ("has space", np.ones((2, 5)))],
                            tmp_path / "x.ark.scp", append=True)
    assert ark.read_bytes() == before
    assert (tmp_path / "x.ark.scp").read_bytes() == scp_before


def test_bad_options(tmp_path):
    with pytest.raises(ConfigError, match="unknown compression 'zip'"):
        kaldi_io.write_mats(tmp_path / "x.ark", [], compress="zip")
    with pytest.raises(ConfigError, match="gzipped ark cannot have an scp"):
        kaldi_io.write_mats(tmp_path / "x.ark.gz", [], tmp_path / "x.scp")
    with pytest.raises(DataError, match="written twice"):
        kaldi_io.write_mats(tmp_path / "y.ark", [("a", np.ones((1, 1))), ("a", np.ones((1, 1)))])


def test_written_files_get_normal_permissions(tmp_path):
    import os
    import stat

    kaldi_io.write_mats(tmp_path / "x.ark", _mats().items(), tmp_path / "x.scp")
    mask = os.umask(0)
    os.umask(mask)
    for name in ("x.ark", "x.scp"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask


# --------------------------------------------------------------------------- scp row/column ranges


def _ranged_scp(tmp_path, compress=None, text=False):
    """An ark of 3 matrices (12 x 40 ... ) and an scp of range entries over it, as
    subsegment_data_dir.sh / limit_feature_dim.sh write them (plus kaldiio's other forms)."""
    mats = _mats(n=3, dim=40, seed=3)
    mats = {u: np.vstack([m] * 4) for u, m in mats.items()}  # 12, 16, 20 rows
    kwargs = {"compress": compress} if compress else {}
    kaldi_io.write_mats(tmp_path / "x.ark", mats.items(), tmp_path / "full.scp", text=text, **kwargs)
    loc = dict(kaldi_io.read_scp_entries(tmp_path / "full.scp"))
    ranges = {
        "utt0-a": ("utt0", "[3:10]"),
        "utt0-b": ("utt0", "[3:10,0:19]"),
        "utt1-c": ("utt1", "[:,0:19]"),
        "utt1-d": ("utt1", "[,5:5]"),
        "utt2-e": ("utt2", "[0:19,:]"),
        "utt2-f": ("utt2", "[7]"),
        "utt2-g": ("utt2", "[ 2:4 , 1:2 ]"),
    }
    lines = [f"{new} {loc[src]}{rng}\n" for new, (src, rng) in ranges.items()]
    (tmp_path / "r.scp").write_text("".join(lines))
    return mats


@pytest.mark.parametrize("compress", [None, "auto", "two_byte_auto", "one_byte_auto"])
def test_scp_ranges_match_kaldiio(tmp_path, compress):
    _ranged_scp(tmp_path, compress)
    expected = kaldiio.load_scp(str(tmp_path / "r.scp"))
    ids, feats = kaldi_io.load_mats(tmp_path / "r.scp", same_dim=False)
    assert ids == list(expected)
    shapes = [f.shape for f in feats]
    assert shapes == [(8, 40), (8, 20), (16, 20), (16, 1), (20, 40), (1, 40), (3, 2)]
    for u, f in zip(ids, feats):
        np.testing.assert_array_equal(f, expected[u])
        assert f.flags.c_contiguous


def test_scp_ranges_in_text_ark_and_offsetless_file(tmp_path):
    mats = _ranged_scp(tmp_path, text=True)
    got = dict(kaldi_io.iter_mats(f"scp:{tmp_path / 'r.scp'}"))
    np.testing.assert_allclose(got["utt0-b"], mats["utt0"][3:11, 0:20], rtol=1e-6)
    # a file holding one matrix, addressed without an offset (Kaldi: x.mat[3:10])
    kaldiio.save_mat(str(tmp_path / "one.mat"), mats["utt1"])
    (tmp_path / "m.scp").write_text(f"u {tmp_path / 'one.mat'}[3:10,2:3]\n")
    ids, feats = kaldi_io.readScp(tmp_path / "m.scp")
    np.testing.assert_array_equal(feats[0], mats["utt1"][3:11, 2:4])
    np.testing.assert_array_equal(feats[0], kaldiio.load_scp(str(tmp_path / "m.scp"))["u"])


def test_scp_ranges_through_feature_store(tmp_path):
    """readArk with and without memmap (FeatureStore's two sinks) applies the ranges too."""
    mats = _ranged_scp(tmp_path)
    (tmp_path / "rows.scp").write_text(
        "".join(l for l in (tmp_path / "r.scp").read_text().splitlines(True) if "-a " in l or "-e " in l))
    for memmap_dir in (None, tmp_path / "cache"):
        ids, feats = kaldi_io.readArk(f"scp:{tmp_path / 'rows.scp'}", memmap_dir=memmap_dir)
        assert ids == ["utt0-a", "utt2-e"]
        np.testing.assert_array_equal(feats[0], mats["utt0"][3:11])
        np.testing.assert_array_equal(feats[1], mats["utt2"][0:20])


def test_scp_range_row_tolerance_like_kaldi(tmp_path, caplog):
    """A last row up to rows + 2 is clipped with a warning (Kaldi: last < rows + 3); rows + 3 is an error."""
    mats = _ranged_scp(tmp_path)
    loc = dict(kaldi_io.read_scp_entries(tmp_path / "full.scp"))["utt0"]  # 12 rows
    (tmp_path / "t.scp").write_text(f"ok {loc}[8:14]\n")
    with caplog.at_level("WARNING"):
        _, feats = kaldi_io.readScp(tmp_path / "t.scp")
    np.testing.assert_array_equal(feats[0], mats["utt0"][8:])
    assert "clipped" in caplog.text
    np.testing.assert_array_equal(feats[0], kaldiio.load_scp(str(tmp_path / "t.scp"))["ok"])
    (tmp_path / "t.scp").write_text(f"bad {loc}[8:15]\n")
    with pytest.raises(DataError, match=r"t\.scp: utterance 'bad' .*row range 8:15 lies outside the matrix of 12 rows"):
        kaldi_io.readScp(tmp_path / "t.scp")


@pytest.mark.parametrize(
    "rng, message",
    [
        ("[3:10,0:40]", r"column range 0:40 lies outside the matrix of 12 rows x 40 columns"),
        ("[12:12]", r"row range 12:12 lies outside"),
        ("[5:3]", r"invalid range \[5:3\]"),
        ("[-1:3]", r"invalid range"),
        ("[a:b]", r"malformed range \[a:b\]"),
        ("[1:2,3:4,5:6]", r"malformed range"),
        ("[]", r"malformed range"),
        ("[1:2:3:4]", r"malformed range .*too many ':'"),
    ],
)
def test_scp_bad_ranges_name_the_entry(tmp_path, rng, message):
    _ranged_scp(tmp_path)
    loc = dict(kaldi_io.read_scp_entries(tmp_path / "full.scp"))["utt0"]
    (tmp_path / "b.scp").write_text(f"u0 {loc}[0:1]\nbroken {loc}{rng}\n")
    with pytest.raises(DataError, match=r"b\.scp: utterance 'broken' \(.*\): " + message):
        kaldi_io.load_mats(tmp_path / "b.scp")
    with pytest.raises(DataError, match=r"utterance 'broken'"):  # the memmap path checks before reading
        kaldi_io.readArk(tmp_path / "b.scp", memmap_dir=tmp_path / "cache")


def test_scp_range_on_a_vector(tmp_path):
    kaldi_io.write_mats(tmp_path / "v.ark", [("v", np.arange(6, dtype=np.float32))], tmp_path / "v.scp")
    loc = (tmp_path / "v.scp").read_text().split()[1]
    (tmp_path / "r.scp").write_text(f"a {loc}[1:3]\nb {loc}[1:3,0:0]\n")
    utt, vec = next(kaldi_io.iter_mats(tmp_path / "r.scp"))
    np.testing.assert_array_equal(vec, [1, 2, 3])
    np.testing.assert_array_equal(vec, kaldiio.load_mat(f"{loc}[1:3]"))
    with pytest.raises(DataError, match=r"utterance 'b' .*needs a matrix, but this entry is a vector of 6"):
        kaldi_io.load_mats(tmp_path / "r.scp", same_dim=False)
