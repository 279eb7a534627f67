"""Corrupted archives: every read either returns what was written or raises DataError naming the file.

Seeded bit flips in small arks of every matrix format (FM, DM, CM, CM2, CM3, text) and in a gzipped
ark, read through every reader path (``iter_mats`` on the ark, ``readScp`` on its scp, a RAM
``FeatureStore`` from the scp, a memmap ``FeatureStore`` via ``readArk``). A read that does not raise
must return the same utterances with the same shapes, and every utterance other than the damaged
one must hold exactly the values written. Where kaldiio raises on a binary ark, so do we.

One case no reader can catch is left out by the seed, not by the check: a size field that grows so
that the matrix ends exactly inside a later id ("utt3 " read as the id "t3") parses as a valid
ark (about 1 in 9,000 flips of these tiny arks; scp reads catch it by the next entry's offset).
"""

from __future__ import annotations

import gzip

import kaldiio
import numpy as np
import pytest

from unspeech import kaldi_io
from unspeech.errors import DataError
from unspeech.feature_store import FeatureStore

FORMATS = {
    "FM": {},
    "DM": {"dtype": "float64"},
    "CM": {"compress": "speech_feature"},  # "auto" picks CM2 for matrices of <= 8 rows
    "CM2": {"compress": "two_byte_auto"},
    "CM3": {"compress": "one_byte_auto"},
    "text": {"text": True},
}
FLIPS_PER_FORMAT = 50


def _corpus(seed: int = 0) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(f"utt{i}", rng.standard_normal((3 + i, 4)).astype(np.float32)) for i in range(5)]


def _write(tmp_path, fmt):
    """Write the corpus; return (ark bytes, scp text, values as read back, record starts, matrix offsets)."""
    ark, scp = tmp_path / "clean.ark", tmp_path / "clean.scp"
    kaldi_io.write_mats(ark, _corpus(), scp, absolute_paths=False, **FORMATS[fmt])
    offsets = [int(line.rsplit(":", 1)[1]) for line in scp.read_text().splitlines()]
    token = b"[" if fmt == "text" else b"\0B" + fmt.encode() + b" "
    assert ark.read_bytes()[offsets[0] :].lstrip(b" ").startswith(token)
    ids = [line.split()[0] for line in scp.read_text().splitlines()]
    starts = [off - len(utt) - 1 for utt, off in zip(ids, offsets)]
    values = [m for _, m in kaldi_io.iter_mats(ark)]
    return ark.read_bytes(), ids, values, starts, offsets


def _flip_positions(rng, size: int, starts: list[int], offsets: list[int], n: int) -> list[int]:
    """Half anywhere, half in an id or the first 24 bytes of a matrix (type token and sizes)."""
    heads = [p for s, o in zip(starts, offsets) for p in range(s, min(o + 24, size))]
    return [int(rng.integers(size)) if i % 2 else int(rng.choice(heads)) for i in range(n)]


def _readers(ark, scp, cache):
    return {
        "iter_mats": lambda: tuple(zip(*kaldi_io.iter_mats(ark))),
        "readScp": lambda: kaldi_io.readScp(scp),
        "FeatureStore RAM (scp)": lambda: _from_store(FeatureStore.from_rspecifier(f"scp:{scp}")),
        "FeatureStore memmap (readArk)": lambda: kaldi_io.readArk(ark, memmap_dir=cache),
    }


def _from_store(store):
    return list(store.utt_ids), [store[i] for i in range(len(store))]


def _check_read(name, read, ids, values, damaged: int, key_damaged: bool, path_name: str):
    """Return True when the read raised DataError (naming the file), else check what came back."""
    try:
        got_ids, got = read()
    except DataError as exc:  # names the ark, or the scp and the entry
        assert path_name in str(exc) or "bad.scp" in str(exc), f"{name}: error names no file: {exc}"
        return True
    got_ids, got = list(got_ids), list(got)
    assert len(got) == len(values), f"{name}: {len(got)} utterances instead of {len(values)}, no error"
    for i, (want, have) in enumerate(zip(values, got)):
        assert have.shape == want.shape, f"{name}: utterance {i} has shape {have.shape}, wrote {want.shape}"
        if i != damaged:
            np.testing.assert_array_equal(np.asarray(have, dtype=np.float64), want, err_msg=f"{name}: utterance {i}")
    reads_ids_from_ark = name.startswith(("iter_mats", "FeatureStore memmap"))
    if not (key_damaged and reads_ids_from_ark):  # an id damaged into another id cannot be told
        assert got_ids == ids, f"{name}: ids {got_ids} instead of {ids}"
    return False


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_bit_flips_raise_or_read_back_what_was_written(tmp_path, fmt):
    clean, ids, values, starts, offsets = _write(tmp_path, fmt)
    values = [np.asarray(v, dtype=np.float64) for v in values]
    rng = np.random.default_rng(14)
    ark, scp = tmp_path / "bad.ark", tmp_path / "bad.scp"
    scp.write_text("".join(f"{u} {ark}:{o}\n" for u, o in zip(ids, offsets)))
    raised = 0
    for n, pos in enumerate(_flip_positions(rng, len(clean), starts, offsets, FLIPS_PER_FORMAT)):
        data = bytearray(clean)
        data[pos] ^= 1 << int(rng.integers(8))
        ark.write_bytes(bytes(data))
        damaged = max(i for i, s in enumerate(starts) if s <= pos)
        key_damaged = pos < offsets[damaged]
        results = {
            name: _check_read(f"{name} (byte {pos})", read, ids, values, damaged, key_damaged, ark.name)
            for name, read in _readers(ark, scp, tmp_path / f"cache{n}").items()
        }
        raised += results["iter_mats"]
        if fmt != "text":  # kaldiio guesses an integer dtype for some text matrices; binary only
            try:
                dict(kaldiio.load_ark(str(ark)))
            except Exception as exc:  # noqa: BLE001 - any kaldiio failure means the ark is damaged
                assert results["iter_mats"], f"byte {pos}: kaldiio raises ({exc!r}) but iter_mats read it"
    assert raised, "no flip was detected at all: the test does not reach the headers"


@pytest.mark.parametrize("fmt", ["FM", "CM3"])
def test_scp_bit_flips_raise_or_read_back_what_was_written(tmp_path, fmt):
    """Flips in the script file (ids, paths, offsets): an offset moved off its matrix, a damaged
    path or non-UTF-8 text is a DataError; only a damaged id can go unnoticed (it is just an id)."""
    clean, ids, values, starts, offsets = _write(tmp_path, fmt)
    ark, scp = tmp_path / "clean.ark", tmp_path / "bad.scp"
    text = "".join(f"{u} {ark}:{o}\n" for u, o in zip(ids, offsets)).encode()
    rng = np.random.default_rng(14)
    for pos in rng.integers(len(text), size=100):
        data = bytearray(text)
        data[pos] ^= 1 << int(rng.integers(8))
        scp.write_bytes(bytes(data))
        try:
            got_ids, got = kaldi_io.readScp(scp)
        except DataError as exc:
            assert "bad.scp" in str(exc) or "clean.ark" in str(exc), str(exc)
            continue
        assert len(got) == len(values), f"byte {pos}: {len(got)} utterances"
        for want, have in zip(values, got):
            np.testing.assert_array_equal(have, want, err_msg=f"scp byte {pos}")


def test_gzip_damage_is_one_error_naming_the_file(tmp_path):
    plain = tmp_path / "clean.ark"
    kaldi_io.write_mats(plain, _corpus())
    clean = gzip.compress(plain.read_bytes(), mtime=0)
    values = [m for _, m in kaldi_io.iter_mats(plain)]
    rng = np.random.default_rng(14)
    ark = tmp_path / "bad.ark.gz"
    for pos in rng.integers(len(clean), size=40):
        data = bytearray(clean)
        data[pos] ^= 1 << int(rng.integers(8))
        ark.write_bytes(bytes(data))
        try:
            got = [m for _, m in kaldi_io.iter_mats(ark)]
        except DataError as exc:
            assert ark.name in str(exc)
            continue
        assert [g.shape for g in got] == [v.shape for v in values], f"byte {pos}"
    # cut short: one error naming the file, not EOFError
    ark.write_bytes(clean[: len(clean) // 2])
    with pytest.raises(DataError, match=r"bad\.ark\.gz: damaged gzip data"):
        list(kaldi_io.iter_mats(ark))


@pytest.mark.parametrize("fmt", ["CM", "CM2", "CM3", "FM"])
@pytest.mark.parametrize("field", ["rows", "cols"])
def test_negative_size_is_an_error_naming_file_utterance_and_offset(tmp_path, fmt, field):
    """The audit's case: one size field set to -1 read to the end of the file (5 of 240 utterances)."""
    clean, ids, values, starts, offsets = _write(tmp_path, fmt)
    data = bytearray(clean)
    header = offsets[2] + 3 + len(fmt)  # "\0B" + token + " "
    pos = header + (8 if fmt.startswith("CM") else 1) + (0 if field == "rows" else (4 if fmt.startswith("CM") else 5))
    data[pos : pos + 4] = (-1).to_bytes(4, "little", signed=True)
    ark, scp = tmp_path / "neg.ark", tmp_path / "neg.scp"
    ark.write_bytes(bytes(data))
    scp.write_text("".join(f"{u} {ark}:{o}\n" for u, o in zip(ids, offsets)))
    for name, read in _readers(ark, scp, tmp_path / "cache").items():
        with pytest.raises(DataError, match=r"neg\.(ark|scp).*utterance 'utt2'.*negative size"):
            read()
    with pytest.raises(DataError, match=rf"neg\.ark: utterance 'utt2' at byte {offsets[2]}"):
        list(kaldi_io.iter_mats(ark))


def test_size_beyond_the_file_is_refused_before_allocating(tmp_path):
    clean, ids, values, starts, offsets = _write(tmp_path, "FM")
    data = bytearray(clean)
    data[offsets[1] + 6 : offsets[1] + 10] = (2**31 - 1).to_bytes(4, "little")  # rows
    ark = tmp_path / "huge.ark"
    ark.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"huge\.ark: utterance 'utt1' at byte \d+: corrupt FM header: .* remain"):
        FeatureStore.from_rspecifier(ark)
    # through a pipe the size cannot be checked up front; reading fails on the bytes there are
    with pytest.raises(DataError, match=r"utterance 'utt1' at byte \d+: unexpected end of file"):
        list(kaldi_io.iter_mats(f"cat {ark} |"))


def test_garbage_after_the_last_matrix_is_one_short_error(tmp_path):
    ark = tmp_path / "nul.ark"
    kaldi_io.write_mats(ark, _corpus())
    with open(ark, "ab") as fh:
        fh.write(b"\0" * (1 << 20))
    with pytest.raises(DataError, match=r"nul\.ark: byte b'\\x00' inside an utterance id at byte \d+") as info:
        list(kaldi_io.iter_mats(ark))
    assert len(str(info.value)) < 300


def test_scp_entry_on_a_directory_is_a_data_error(tmp_path):
    scp = tmp_path / "d.scp"
    scp.write_text(f"u1 {tmp_path}:10\n")
    with pytest.raises(DataError, match=r"d\.scp: utterance 'u1'.*cannot open archive"):
        kaldi_io.readScp(scp)


def test_values_beyond_the_store_dtype_are_refused(tmp_path):
    ark = tmp_path / "big.ark"
    kaldi_io.write_mats(ark, [("a", np.ones((2, 3))), ("b", np.full((2, 3), 1e300))], dtype="float64")
    with pytest.raises(DataError, match=r"big\.ark: utterance 'b' holds the value 1e\+300, beyond what float32"):
        FeatureStore.from_rspecifier(ark)
    ark16 = tmp_path / "f16.ark"
    kaldi_io.write_mats(ark16, [("a", np.full((2, 3), 1e5, dtype=np.float32))])
    with pytest.raises(DataError, match=r"utterance 'a' .*beyond what float16"):
        FeatureStore.from_rspecifier(ark16, memmap_dir=tmp_path / "c", dtype="float16")


def test_memmap_store_holds_zero_frame_matrices(tmp_path):
    ark = tmp_path / "z.ark"
    kaldi_io.write_mats(ark, [("empty", np.zeros((0, 5), np.float32)), ("b", np.ones((3, 5), np.float32))])
    store = FeatureStore.from_rspecifier(ark, memmap_dir=tmp_path / "c")
    assert store.lengths.tolist() == [0, 3] and store.get("b").shape == (3, 5)


@pytest.mark.parametrize(
    "text, shape",
    [
        (b"u [ 1 2 3\n 4 5 6 ]\n", (2, 3)),  # first row right after '[', as Kaldi and kaldiio read it
        (b"u [\n 1 2 3\n 4 5 6 ]\n", (2, 3)),
        (b"u [ 1 2 ; 3 4 ]\n", (2, 2)),  # Kaldi's ';' row separator
        (b"u [ 1 2 3 ]\n", (3,)),
        (b"u [ -1.5e3 .5 +2 inf ]\n", (4,)),
    ],
)
def test_text_matrix_rows_as_kaldi_reads_them(tmp_path, text, shape):
    ark = tmp_path / "t.ark"
    ark.write_bytes(text)
    (utt, mat), = kaldi_io.iter_mats(ark, validate=False)
    assert utt == "u" and mat.shape == shape
    if text.count(b"\n") > 1 and b"[\n" not in text:
        np.testing.assert_array_equal(mat, kaldiio.load_mat(f"{ark}:2"))


@pytest.mark.parametrize("number", [b"1_000", b"0x10", b"1,5", b"1.5.3", b"--1"])
def test_text_matrix_numbers_python_accepts_but_kaldi_does_not(tmp_path, number):
    ark = tmp_path / "t.ark"
    ark.write_bytes(b"u [\n 1 " + number + b" 3\n ]\n")
    with pytest.raises(DataError, match=rf"t\.ark: utterance 'u' at byte 2: '{number.decode()}' .*not a number"):
        kaldi_io.load_mats(ark)


# ------------------------------------------------------------------ kills between renames


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (not even except-Exception handlers)."""


def _kill_after_renames(monkeypatch, survive: int):
    """Let ``survive`` os.replace calls through, then 'kill' the process at the next one."""
    import os

    real, calls = os.replace, []

    def replace(src, dst):
        if len(calls) == survive:
            raise _Killed(f"killed before renaming {dst}")
        calls.append(dst)
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return calls


def _state(ark, scp):
    """What a reader gets now: the scp's contents when there is one, else the ark's alone."""
    if scp.exists():
        ids, mats = kaldi_io.readScp(scp)
    else:
        ids, mats = kaldi_io.load_mats(ark)
    return ids, [m.tolist() for m in mats]


@pytest.mark.parametrize("same_layout", [True, False])
@pytest.mark.parametrize("survive", [0, 1])
def test_write_mats_killed_between_renames_never_mixes(tmp_path, monkeypatch, same_layout, survive):
    """The scp never points into an ark it was not written with: a kill after any rename leaves
    the old pair, the new pair, or (layout changed) an ark without an scp, which readers refuse."""
    ark, scp = tmp_path / "f.ark", tmp_path / "f.scp"
    old = _corpus(1)
    new = [(u, m + 100) for u, m in old] if same_layout else [(u, m[:2] + 100) for u, m in _corpus(2)[:3]]
    kaldi_io.write_mats(ark, old, scp)
    old_state = _state(ark, scp)
    calls = _kill_after_renames(monkeypatch, survive)
    with pytest.raises(_Killed):
        kaldi_io.write_mats(ark, new, scp)
    monkeypatch.undo()
    new_state = ([u for u, _ in new], [m.tolist() for _, m in new])
    if scp.exists():
        assert _state(ark, scp) in (old_state, new_state), f"mixed output after renaming {calls}"
    else:  # the scp was removed before the ark was replaced: reading it names the missing file
        assert not same_layout
        with pytest.raises(DataError, match=r"f\.scp"):
            kaldi_io.readScp(scp)
        assert _state(ark, scp) in (old_state, new_state)


def test_feature_cache_killed_between_renames_is_rebuilt(tmp_path, monkeypatch):
    """A rebuild killed after the data rename leaves new frames under the old index: the build
    tokens disagree, so the store is built again instead of serving mismatched frames."""
    ark = tmp_path / "f.ark"
    kaldi_io.write_mats(ark, _corpus(1))
    cache = tmp_path / "cache"
    FeatureStore.from_rspecifier(ark, memmap_dir=cache, reuse=True)
    kaldi_io.write_mats(ark, [(u, m + 100) for u, m in _corpus(1)])  # same sizes: only the tokens can tell
    _kill_after_renames(monkeypatch, 1)
    with pytest.raises(_Killed):
        FeatureStore.from_rspecifier(ark, memmap_dir=cache, reuse=False)
    monkeypatch.undo()
    prefix = str(next(cache.glob("*.feats")))[: -len(".feats")]
    with pytest.raises(DataError, match=r"\.feats was not written with its index"):
        FeatureStore.open(prefix)
    # the source's fingerprint may match the old index (same size, mtime within a tick): reuse rebuilds
    store = FeatureStore.from_rspecifier(ark, memmap_dir=cache, reuse=True)
    for (_, want), got in zip(_corpus(1), store):
        np.testing.assert_array_equal(got[1], want + 100)


def test_full_disk_is_one_line_naming_the_output(tmp_path, monkeypatch, capsys):
    import errno

    from unspeech.cli import run_command

    ark, scp = tmp_path / "f.ark", tmp_path / "f.scp"
    kaldi_io.write_mats(ark, _corpus(1), scp)
    before = ark.read_bytes(), scp.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(kaldi_io, "_write_one", full)
    with pytest.raises(OSError, match=r"No space left on device: '.*f\.ark'"):
        kaldi_io.write_mats(ark, _corpus(2), scp)
    assert (ark.read_bytes(), scp.read_bytes()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert run_command("prog", lambda args: kaldi_io.write_mats(ark, _corpus(2), scp), None) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"prog: error: No space left on device: {ark}"


def test_temporaries_of_killed_writers_are_removed_on_the_next_write(tmp_path):
    import os
    import subprocess
    import sys

    from unspeech._fileutil import _owner_tag

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = _owner_tag().rsplit("-", 1)[0]
    stale = tmp_path / f".f.ark.{host}-{int(gone.stdout)}.abc123.tmp"  # a killed writer's half-written ark
    live = tmp_path / f".f.ark.{host}-{os.getpid()}.def456.tmp"  # a writer still at work
    other = tmp_path / ".f.ark.otherhost-1.ghi789.tmp"  # another machine's (shared folder)
    nested = tmp_path / f".{stale.name}.{host}-{int(gone.stdout)}.jkl012.tmp"  # its writer's own temporary
    for p in (stale, live, other, nested):
        p.write_bytes(b"x" * 100)
    kaldi_io.write_mats(tmp_path / "f.ark", _corpus(1), tmp_path / "f.scp")
    assert not stale.exists() and not nested.exists() and live.exists() and other.exists()
    assert kaldi_io.readScp(tmp_path / "f.scp")[0] == [u for u, _ in _corpus(1)]


def test_an_id_ends_at_a_tab_or_newline_as_in_kaldi(tmp_path):
    ark = tmp_path / "tab.ark"
    ark.write_bytes(b"u1\t[ 1 2 3 ]\nu2\n[\n 1 2\n 3 4 ]\n")
    assert [(u, m.shape) for u, m in kaldi_io.iter_mats(ark)] == [("u1", (3,)), ("u2", (2, 2))]
