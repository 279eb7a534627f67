"""Energy VAD (Kaldi compute-vad rule and the noise-floor reference) and oracle speech masks."""

import numpy as np
import pytest

from unspeech.datadir import Turn
from unspeech.diarize.vad import (
    EnergyVAD,
    frame_log_energy,
    mask_from_spans,
    num_frames_of,
    oracle_speech_from_rttm,
    oracle_speech_from_uem,
    spans_from_mask,
)
from unspeech.errors import ConfigError

SR = 16000


def _bursts(seconds=4.0, on=((1.0, 2.0), (2.5, 3.2)), snr_db=20.0, seed=0):
    """Noise with loud 300 Hz-ish tone bursts at the given spans; returns samples and the true mask."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    signal = np.zeros(n)
    for a, b in on:
        sel = (t >= a) & (t < b)
        signal[sel] = 0.3 * np.sin(2 * np.pi * 300 * t[sel]) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t[sel]))
    noise = rng.standard_normal(n) * 0.3 / np.sqrt(2) / 10 ** (snr_db / 20)
    return (signal + noise).astype(np.float32), mask_from_spans(on, num_frames_of(n))


def test_frame_count_and_log_energy_follow_kaldi_framing():
    assert [num_frames_of(n) for n in (0, 399, 400, 559, 560, 16000)] == [0, 0, 1, 1, 2, 98]
    x = np.zeros(16000, np.float32)
    x[:400] = 0.5
    x[480:880] = np.where(np.arange(400) % 2, 0.5, -0.5)
    energy = frame_log_energy(x)
    assert energy.shape == (98,)
    # frame 0 is constant: DC removed -> floor; frame 3 (samples 480..880) alternates +-0.5: 400 * 16384^2
    assert energy[0] == pytest.approx(np.log(np.finfo(np.float32).eps))
    assert energy[3] == pytest.approx(np.log(400 * 16384.0**2), rel=1e-6)


def _away_from_edges(truth, frames=12):
    """Frames more than ``frames`` frames from any change of ``truth`` (where the context vote cannot blur)."""
    edges = np.flatnonzero(np.diff(truth.astype(int))) + 0.5
    t = np.arange(len(truth))
    return np.abs(t[:, None] - edges[None, :]).min(axis=1) > frames


def test_energy_vad_finds_bursts_in_noise():
    x, truth = _bursts()
    mask = EnergyVAD()(x)
    assert mask.shape == truth.shape
    sure = _away_from_edges(truth)
    np.testing.assert_array_equal(mask[sure], truth[sure])
    assert (mask != truth).sum() <= 4 * 12  # at most the context width at each of the 4 edges


def test_kaldi_mean_rule_marks_noise_as_speech_where_floor_rule_does_not():
    x, truth = _bursts(snr_db=25.0)
    kaldi = EnergyVAD(energy_threshold=5.0, energy_mean_scale=0.5, frames_context=0, proportion_threshold=0.6,
                      reference="mean")(x)
    floor = EnergyVAD()(x)
    sure = _away_from_edges(truth)
    assert kaldi[~truth & sure].mean() > 0.5  # the threshold 5 + 0.5 * mean lies below this noise
    assert not floor[~truth & sure].any()


def test_digital_silence_and_stationary_noise_have_no_speech():
    assert not EnergyVAD()(np.zeros(3 * SR, np.float32)).any()
    noise = np.random.default_rng(1).standard_normal(3 * SR).astype(np.float32) * 0.01
    assert EnergyVAD()(noise).mean() < 0.02
    assert EnergyVAD()(np.zeros(100, np.float32)).shape == (0,)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"reference": "median"}, "`reference` must be 'floor' or 'mean'"),
        ({"frames_context": -1}, "`frames_context` must be >= 0"),
        ({"proportion_threshold": 0.0}, r"`proportion_threshold` must lie in \(0, 1\]"),
        ({"floor_percentile": 120.0}, r"`floor_percentile` must lie in \[0, 100\]"),
    ],
)
def test_bad_vad_options_raise(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        EnergyVAD(**kwargs)(np.zeros(SR, np.float32))


def test_masks_from_spans_rttm_and_uem(tmp_path):
    mask = mask_from_spans([(0.05, 0.12), (0.3, float("inf"))], 40)
    assert spans_from_mask(mask) == [(5, 12), (30, 40)]
    turns = [Turn("a", "1", 0.1, 0.1, "x"), Turn("a", "1", 0.15, 0.1, "y"), Turn("b", "1", 0.0, 0.3, "x")]
    assert spans_from_mask(oracle_speech_from_rttm(turns, "a", 30)) == [(10, 25)]
    uem = tmp_path / "u.uem"
    uem.write_text("a 1 0.10 0.20\nb 1 0.00 0.05\n")
    assert spans_from_mask(oracle_speech_from_uem(uem, "a", 30)) == [(10, 20)]
    assert not oracle_speech_from_uem({"b": [(0.0, 0.1)]}, "a", 30).any()
