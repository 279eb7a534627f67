"""Kaldi fbank options: config files, flags, validation, their effect on features, --channel."""

from __future__ import annotations

import dataclasses

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from unspeech import audio, fbank
from unspeech.cli import main as cli_main
from unspeech.errors import AudioError, ConfigError
from unspeech.fbank_options import FbankOptions

TEDLIUM_CONF = """\
# TED-LIUM s5_r2 / AMI style conf/fbank.conf
--window-type=hamming   # Hamming window, not Povey
--use-energy=false
--num-mel-bins=40

--low_freq=20           # underscores spell the same option
--high-freq=-400
--snip-edges
"""


def _noise(n: int, seed: int = 0, amp: float = 0.1) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def test_reads_a_kaldi_config_file(tmp_path):
    conf = tmp_path / "fbank.conf"
    conf.write_text(TEDLIUM_CONF)
    opts = FbankOptions.from_kaldi_config(conf)
    assert (opts.window_type, opts.low_freq, opts.high_freq, opts.num_mel_bins) == ("hamming", 20.0, -400.0, 40)
    assert opts.snip_edges is True and opts.use_energy is False
    changed = {f.name for f in dataclasses.fields(opts) if getattr(opts, f.name) != f.default}
    assert changed == {"window_type", "high_freq"}
    # flags win over the file; booleans in every Kaldi spelling
    over = FbankOptions.from_kaldi_config(conf, overrides={"window-type": "povey", "snip_edges": "F", "dither": "1"})
    assert (over.window_type, over.snip_edges, over.dither) == ("povey", False, 1.0)


def test_written_config_reads_back_and_lists_every_option(tmp_path):
    opts = FbankOptions(window_type="hanning", low_freq=64.5, high_freq=7600, num_mel_bins=80, snip_edges=False,
                        dither=0.25, channel=1, use_energy=True)
    text = opts.to_kaldi_config()
    assert "--window-type=hanning\n" in text and "--snip-edges=false\n" in text and "--high-freq=7600\n" in text
    assert len(text.splitlines()) == len(dataclasses.fields(FbankOptions))
    (tmp_path / "c.conf").write_text(text)
    assert FbankOptions.from_kaldi_config(tmp_path / "c.conf") == opts
    assert opts.dim == 81


@pytest.mark.parametrize(
    "line, message",
    [
        ("--window-type=hann", r"c\.conf: --window-type must be one of hamming, .* Received: --window-type=hann"),
        ("--frobnicate=3", r"c\.conf:2: unknown fbank option --frobnicate \(known: --sample-frequency, "),
        ("--snip-edges=maybe", r"c\.conf:2: --snip-edges: expected true or false, got 'maybe'"),
        ("--num-mel-bins=40.5", r"c\.conf:2: --num-mel-bins: expected an integer"),
        ("--low-freq=9000", r"c\.conf: --low-freq=9000 and --high-freq=0 do not give a band inside 0..8000 Hz"),
        ("--high-freq=8001", r"do not give a band"),
        ("--num-mel-bins=2", r"--num-mel-bins must be >= 3"),
        ("--vtln-warp=0.9", r"c\.conf:2: --vtln-warp=0.9 is not supported by unspeech \(only --vtln-warp=1\)"),
        ("--vtln-map=ark:warps", r"c\.conf:2: --vtln-map=ark:warps is not supported by unspeech"),
        ("--min-duration=0.5", r"c\.conf:2: --min-duration=0.5 is not supported by unspeech \(only --min-duration=0\)"),
        ("window-type=hamming", r"c\.conf:2: expected '--name=value', got 'window-type=hamming'"),
        ("--channel=-2", r"--channel must be -1"),
    ],
)
def test_bad_config_names_the_file_and_option(tmp_path, line, message):
    (tmp_path / "c.conf").write_text(f"--num-mel-bins=40\n{line}\n")
    with pytest.raises(ConfigError, match=message):
        FbankOptions.from_kaldi_config(tmp_path / "c.conf")


def test_options_without_effect_are_accepted_with_a_warning(tmp_path, caplog):
    (tmp_path / "c.conf").write_text("--verbose=2\n--allow-downsample=true\n--vtln-warp=1.0\n--output-format=kaldi\n")
    with caplog.at_level("WARNING"):
        assert FbankOptions.from_kaldi_config(tmp_path / "c.conf") == FbankOptions()
    assert "c.conf:1: --verbose ignored" in caplog.text and "--allow-downsample ignored" in caplog.text
    with pytest.raises(ConfigError, match=r"fbank config .*missing\.conf does not exist"):
        FbankOptions.from_kaldi_config(tmp_path / "missing.conf")


def test_default_options_keep_todays_features():
    x = _noise(8000, seed=2)
    np.testing.assert_array_equal(fbank.compute_fbank(x, options=FbankOptions()), fbank.compute_fbank(x))


def test_each_option_reaches_the_features():
    x = _noise(16000, seed=4)
    base = fbank.compute_fbank(x)
    for change in ({"window_type": "hamming"}, {"low_freq": 100.0}, {"high_freq": -400.0},
                   {"preemphasis_coefficient": 0.0}, {"remove_dc_offset": False}, {"use_power": False},
                   {"round_to_power_of_two": False}):
        got = fbank.compute_fbank(x, options=FbankOptions(**change))
        assert got.shape == base.shape and not np.allclose(got, base, atol=1e-3), change
    assert fbank.compute_fbank(x, options=FbankOptions(snip_edges=False)).shape == (100, 40)
    energy = fbank.compute_fbank(x, options=FbankOptions(use_energy=True))
    np.testing.assert_allclose(energy[:, 1:], base, atol=1e-5)  # log energy first, then the bins
    htk = fbank.compute_fbank(x, options=FbankOptions(use_energy=True, htk_compat=True))
    np.testing.assert_allclose(htk[:, -1], energy[:, 0], atol=1e-5)  # HTK order: energy last
    silence = np.zeros(1600, np.float32)
    floored = fbank.compute_fbank(silence, options=FbankOptions(use_energy=True, energy_floor=1.0))
    np.testing.assert_allclose(floored[:, 0], 0.0)  # log(1.0)
    centred = fbank.compute_fbank(x, options=FbankOptions(subtract_mean=True))
    np.testing.assert_allclose(centred.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(centred, base - base.mean(axis=0), atol=1e-4)


def test_sample_frequency_option():
    x = _noise(8000, seed=5)
    feats = fbank.compute_fbank(x, 8000, options=FbankOptions(sample_frequency=8000, high_freq=3800, num_mel_bins=23))
    assert feats.shape == (98, 23)  # 25 ms = 200 samples, 10 ms = 80 samples at 8 kHz
    with pytest.raises(ConfigError, match=r"utt9: samples at 16000 Hz but the fbank options say --sample-frequency=8000"):
        fbank.compute_fbank(x, options=FbankOptions(sample_frequency=8000), name="utt9")


# --------------------------------------------------------------------------- channels


@pytest.fixture()
def stereo(tmp_path):
    left, right = _noise(16000, 1), _noise(16000, 2, amp=0.3)
    path = tmp_path / "st.wav"
    sf.write(path, np.stack([left, right], 1), 16000, subtype="PCM_16")
    return path, audio.load_audio(str(path), channel=0), audio.load_audio(str(path), channel=1)


def test_channel_selection_like_kaldi(stereo, caplog):
    path, left, right = stereo
    assert not np.allclose(left, right)
    with caplog.at_level("WARNING"):
        np.testing.assert_array_equal(audio.load_audio(str(path), channel=-1), left)
    assert "has 2 channels and no channel was chosen: using channel 0" in caplog.text
    mean = audio.load_audio(str(path))  # the readers' own default (diarization) stays the mean
    np.testing.assert_allclose(mean, (left + right) / 2, atol=1e-6)
    with pytest.raises(AudioError, match=r"st\.wav' has 2 channel\(s\) but channel 2 was asked for"):
        audio.load_audio(str(path), channel=2)
    mono = audio.to_mono(left, channel=-1)
    np.testing.assert_array_equal(mono, left)


def test_cli_config_flags_channel_and_recorded_conf(tmp_path, stereo):
    path, left, right = stereo
    (tmp_path / "wav.scp").write_text(f"st {path}\n")
    conf = tmp_path / "fbank.conf"
    conf.write_text(TEDLIUM_CONF)
    out = tmp_path / "out"
    assert cli_main(["fbank", "--wav-scp", str(tmp_path / "wav.scp"), "--out-dir", str(out), "--quiet",
                     "--fbank-config", str(conf), "--high_freq", "-300", "--snip-edges", "false",
                     "--channel", "1"]) == 0
    written = FbankOptions.from_kaldi_config(out / "conf" / "fbank.conf")
    expected = FbankOptions(window_type="hamming", high_freq=-300, snip_edges=False, channel=1)
    assert written == expected
    feats = kaldiio.load_scp(str(out / "feats.scp"))["st"]
    np.testing.assert_array_equal(feats, fbank.compute_fbank(right, options=expected))
    # the earlier flag names still work; without options the default conf is recorded
    out2 = tmp_path / "out2"
    assert cli_main(["fbank", "--wav-scp", str(tmp_path / "wav.scp"), "--out-dir", str(out2), "--quiet",
                     "--num-bins", "23", "--dither", "0"]) == 0
    assert FbankOptions.from_kaldi_config(out2 / "conf" / "fbank.conf") == FbankOptions(num_mel_bins=23)
    np.testing.assert_array_equal(kaldiio.load_scp(str(out2 / "feats.scp"))["st"],
                                  fbank.compute_fbank(left, num_bins=23))


def test_cli_bad_option_fails_before_writing(tmp_path, capsys, stereo):
    path, _, _ = stereo
    (tmp_path / "wav.scp").write_text(f"st {path}\n")
    conf = tmp_path / "bad.conf"
    conf.write_text("--num-mel-bins=40\n--sample-frequncy=8000\n")
    out = tmp_path / "out"
    args = ["fbank", "--wav-scp", str(tmp_path / "wav.scp"), "--out-dir", str(out), "--quiet"]
    assert cli_main(args + ["--fbank-config", str(conf)]) == 1
    assert "bad.conf:2: unknown fbank option --sample-frequncy" in capsys.readouterr().err
    assert cli_main(args + ["--window-type", "hann"]) == 1
    assert "command line: --window-type must be one of" in capsys.readouterr().err
    assert cli_main(args + ["--channel", "3"]) == 1
    assert "has 2 channel(s) but channel 3 was asked for" in capsys.readouterr().err
    assert not (out / "feats.scp").exists() and not (out / "conf").exists()
