"""Long recordings block by block: the same samples and features as reading them whole."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from unspeech import audio, fbank
from unspeech.audio_stream import BlockResampler, audio_length, iter_audio_blocks
from unspeech.errors import AudioError
from unspeech.fbank_options import FbankOptions


def _noise(n: int, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 44100, 48000])
def test_block_resampler_equals_whole_signal_resampling(rate):
    x = _noise(rate * 3 + 77, rate)
    sizes = np.random.default_rng(1).integers(1, rate // 2, size=200)
    cuts = np.minimum(np.cumsum(np.concatenate([[0], sizes])), len(x))
    cuts = np.unique(np.concatenate([cuts, [len(x)]]))
    r = BlockResampler(rate, 16000)
    out = [r.push(x[a:b], final=b == len(x)) for a, b in zip(cuts[:-1], cuts[1:])]
    np.testing.assert_array_equal(np.concatenate(out), audio.resample(x, rate, 16000))


@pytest.mark.parametrize("rate, channel", [(44100, 1), (16000, None), (8000, -1)])
def test_file_blocks_equal_load_audio(tmp_path, rate, channel):
    path = tmp_path / "a.flac"
    x = _noise(rate * 4, 2)
    sf.write(path, np.stack([x, x[::-1]], axis=1), rate, subtype="PCM_16")
    for start, end in [(None, None), (0.3, 2.71)]:
        blocks = list(iter_audio_blocks(path, start, end, channel=channel, block_seconds=0.37))
        assert len(blocks) > 3 and max(len(b) for b in blocks) <= 0.37 * 16000 + 2 * 16000 // 100 + 1
        whole = audio.load_audio(path, start, end, channel=channel)
        np.testing.assert_array_equal(np.concatenate(blocks), whole)
        assert audio_length(path, start, end) == len(whole)


def test_stream_errors_name_the_file(tmp_path):
    with pytest.raises(AudioError, match="nope.wav"):
        next(iter_audio_blocks(tmp_path / "nope.wav"))
    path = tmp_path / "two.wav"
    sf.write(path, np.zeros((1600, 2), np.float32), 16000)
    with pytest.raises(AudioError, match="two.wav.*2 channel"):
        next(iter_audio_blocks(path, channel=3))


@pytest.mark.parametrize("snip_edges", [True, False])
def test_iter_fbank_equals_compute_fbank(snip_edges):
    x = _noise(16000 * 3 + 123, 4)
    opts = FbankOptions(snip_edges=snip_edges)
    blocks = [x[i:i + 5003] for i in range(0, len(x), 5003)]
    streamed = np.concatenate(list(fbank.iter_fbank(blocks, 16000, opts)))
    np.testing.assert_array_equal(streamed, fbank.compute_fbank(x, options=opts))


def test_iter_fbank_refuses_subtract_mean():
    with pytest.raises(Exception, match="subtract-mean"):
        list(fbank.iter_fbank([np.zeros(1600, np.float32)], 16000, FbankOptions(subtract_mean=True)))


@pytest.mark.parametrize("options", [FbankOptions(), FbankOptions(subtract_mean=True)])
@pytest.mark.parametrize("nj", [1, 2])
def test_long_utterances_are_spooled_and_give_the_same_data_dir(tmp_path, monkeypatch, options, nj):
    """Utterances over STREAM_SECONDS go through the block path; the data dir is byte-identical."""
    wavs = {}
    for name, rate, n in [("long1", 44100, 44100 * 5), ("long2", 16000, 16000 * 4), ("short", 16000, 8000)]:
        wavs[name] = str(tmp_path / f"{name}.flac")
        sf.write(wavs[name], _noise(n, len(name)), rate, subtype="PCM_16")
    segs = {"long1-a": ("long1", 0.2, 4.9), "long2-a": ("long2", 0.0, -1), "short-a": ("short", 0.0, 0.4)}
    from unspeech import datadir

    segments = {u: datadir.Segment(*v) for u, v in segs.items()}
    ref = fbank.make_fbank_datadir(wavs, tmp_path / "ref", segments=segments, options=options, nj=nj)
    monkeypatch.setattr(fbank, "STREAM_SECONDS", 1.0)
    spooled = []
    real = fbank._spool_if_long

    def spy(*args):
        result = real(*args)
        spooled.append((args[4], result is not None))
        return result

    monkeypatch.setattr(fbank, "_spool_if_long", spy)
    out = fbank.make_fbank_datadir(wavs, tmp_path / "out", segments=segments, options=options, nj=1 if nj == 1 else 2)
    if nj == 1:  # in the parent process the patched function is seen; worker processes may not see it
        assert spooled == [("long1-a", True), ("long2-a", True), ("short-a", False)]
    assert out.num_frames == ref.num_frames
    a = dict(kaldiio.load_scp(str(tmp_path / "ref" / "feats.scp")))
    b = dict(kaldiio.load_scp(str(tmp_path / "out" / "feats.scp")))
    assert list(a) == list(b)
    for utt in a:
        np.testing.assert_array_equal(a[utt], b[utt])
    assert (tmp_path / "ref" / "utt2num_frames").read_text() == (tmp_path / "out" / "utt2num_frames").read_text()
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")) == []
