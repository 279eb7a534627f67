"""Audio reading: formats, channels, sample rates, pipes, segments and every bad-input error."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from unspeech import audio
from unspeech.errors import AudioError


def _tone(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_freq(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


@pytest.fixture
def mono16k(tmp_path):
    x = _tone(440, 16000, 1.0)
    path = tmp_path / "mono.wav"
    sf.write(path, x, 16000, subtype="PCM_16")
    return str(path), sf.read(path, dtype="float32")[0]


def test_16k_mono_is_returned_unchanged(mono16k):
    path, ref = mono16k
    x = audio.load_audio(path)
    assert x.dtype == np.float32 and x.shape == (16000,)
    np.testing.assert_array_equal(x, ref)


def test_stereo_48k_is_downmixed_by_mean_and_resampled(tmp_path):
    left = _tone(1000, 48000, 1.0, amp=0.6)
    right = np.zeros_like(left)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 48000, subtype="FLOAT")
    x = audio.load_audio(str(path))
    assert x.shape == (16000,)
    assert _peak_freq(x, 16000) == pytest.approx(1000, abs=2)
    # mean of channels: half the amplitude of the left channel (away from the filter edges)
    assert np.max(np.abs(x[1000:-1000])) == pytest.approx(0.3, abs=0.01)


def test_8k_flac_is_upsampled_to_16k(tmp_path):
    path = tmp_path / "tel.flac"
    sf.write(path, _tone(700, 8000, 0.5), 8000, subtype="PCM_16")
    x = audio.load_audio(str(path))
    assert x.shape == (8000,)  # 0.5 s at 16 kHz
    assert _peak_freq(x, 16000) == pytest.approx(700, abs=3)


def test_resample_length_and_identity():
    x = np.ones(441, dtype=np.float32)
    assert audio.resample(x, 44100, 16000).shape == (160,)
    np.testing.assert_array_equal(audio.resample(x, 16000, 16000), x)
    with pytest.raises(AudioError, match="sample rates must be positive"):
        audio.resample(x, 0, 16000)


def test_to_mono_shapes():
    assert audio.to_mono(np.zeros(5)).shape == (5,)
    assert audio.to_mono(np.zeros((5, 1))).shape == (5,)
    np.testing.assert_allclose(audio.to_mono(np.array([[1.0, 0.0, 0.5]])), [0.5])


def test_pipe_source_equals_file(mono16k):
    path, ref = mono16k
    assert audio.is_pipe(f"cat {path} |") and not audio.is_pipe(path)
    np.testing.assert_array_equal(audio.load_audio(f"cat {path} |"), ref)
    np.testing.assert_array_equal(audio.load_audio(f"cat {path} |", 0.25, 0.5), ref[4000:8000])


def test_segments_cut_by_seconds(mono16k):
    path, ref = mono16k
    np.testing.assert_array_equal(audio.load_audio(path, 0.1, 0.35), ref[1600:5600])
    np.testing.assert_array_equal(audio.load_audio(path, 0.5, -1), ref[8000:])  # Kaldi: -1 = to the end
    np.testing.assert_array_equal(audio.load_audio(path, 0.5, 1.3), ref[8000:])  # small overshoot clipped
    # sample int(t * rate), truncated like Kaldi's extract-segments: 0.5005 s * 16 kHz = 8007.999... -> 8007
    assert 0.5005 * 16000 < 8008
    np.testing.assert_array_equal(audio.load_audio(path, 0.25, 0.5005), ref[4000:8007])


@pytest.mark.parametrize(
    "start, end, match",
    [
        (0.2, 1.8, "past the end"),
        (1.5, 1.9, "past the end"),
        (0.5, 0.4, "ends before it starts"),
        (-0.1, 0.4, "starts before 0"),
    ],
)
def test_bad_segments(mono16k, start, end, match):
    path, _ = mono16k
    with pytest.raises(AudioError, match=match):
        audio.load_audio(path, start, end)
    with pytest.raises(AudioError, match=match):
        audio.load_audio(f"cat {path} |", start, end)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioError, match=r"nope\.wav' does not exist"):
        audio.load_audio(str(tmp_path / "nope.wav"))
    with pytest.raises(AudioError, match=r"nope\.wav' does not exist"):
        audio.load_audio(str(tmp_path / "nope.wav"), 0.0, 1.0)
    with pytest.raises(AudioError, match="is a directory"):
        audio.load_audio(str(tmp_path))


@pytest.mark.parametrize("content, match", [(b"", r"audio file '.*bad\.wav' is empty \(0 bytes\)$"),
                                            (b"this is not audio at all" * 10, r"cannot read audio '.*bad\.wav'")],
                         ids=["empty", "garbage"])
def test_unreadable_files(tmp_path, content, match):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=match):
        audio.load_audio(str(path))
    with pytest.raises(AudioError, match=match):
        audio.load_audio(str(path), 0.0, 0.5)


def test_zero_length_audio(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"zero\.wav' contains no samples"):
        audio.load_audio(str(path))


def test_non_finite_samples(tmp_path):
    x = _tone(300, 16000, 0.1)
    x[10] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav' contains NaN"):
        audio.load_audio(str(path))


def test_failing_and_silent_pipes():
    with pytest.raises(AudioError, match="failed with exit code 3"):
        audio.load_audio("echo oops >&2; exit 3 |")
    with pytest.raises(AudioError, match="wrote no bytes"):
        audio.load_audio("true |")
    with pytest.raises(AudioError, match="empty pipe command"):
        audio.load_audio(" |")
    with pytest.raises(AudioError, match="cannot read audio"):
        audio.load_audio("echo not-a-wav |")


def test_write_audio_roundtrip_is_16bit(tmp_path):
    x = _tone(500, 16000, 0.2)
    for name in ("a.wav", "a.flac"):
        audio.write_audio(tmp_path / name, x)
        info = sf.info(tmp_path / name)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        np.testing.assert_allclose(audio.load_audio(str(tmp_path / name)), x, atol=1 / 32768)


def test_find_audio_files(tmp_path):
    (tmp_path / "sub").mkdir()
    for rel in ("b.wav", "sub/a.FLAC", "notes.txt", ".hidden.wav"):
        (tmp_path / rel).write_bytes(b"x")
    found = audio.find_audio_files(tmp_path)
    assert list(found) == ["a", "b"]
    assert found["a"] == os.path.join(str(tmp_path), "sub", "a.FLAC")


def test_find_audio_files_errors(tmp_path):
    with pytest.raises(AudioError, match="does not exist or is not a directory"):
        audio.find_audio_files(tmp_path / "missing")
    with pytest.raises(AudioError, match=r"no audio files \(.wav, .flac, .* found"):
        audio.find_audio_files(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "x.wav").write_bytes(b"")
    (tmp_path / "sub" / "x.flac").write_bytes(b"")
    with pytest.raises(AudioError, match="same id 'x'"):
        audio.find_audio_files(tmp_path)
    (tmp_path / "sub" / "x.flac").unlink()
    (tmp_path / "my file.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="contains whitespace"):
        audio.find_audio_files(tmp_path)
