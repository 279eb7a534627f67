"""scripts/augment_copies.py: one noisy, babble or reverberant copy per utterance, seeded, at the source's level."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from unspeech import audio, datadir

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("augment_copies", REPO / "scripts" / "augment_copies.py")
augment_copies = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(augment_copies)


def _corpus(tmp_path: Path, n: int = 6) -> Path:
    rng = np.random.default_rng(0)
    wavs = {}
    for i in range(n):
        t = np.arange(16000 + 800 * i) / 16000
        x = 0.3 * np.sin(2 * np.pi * (120 + 30 * i) * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(len(t))
        path = tmp_path / "in" / f"u{i}.wav"
        path.parent.mkdir(exist_ok=True)
        audio.write_audio(path, x.astype(np.float32))
        wavs[f"u{i}"] = str(path)
    datadir.write_wav_scp(tmp_path / "wav.scp", wavs)
    datadir.write_utt2spk(tmp_path / "utt2spk", {u: f"s{int(u[1:]) // 2}" for u in wavs})
    return tmp_path / "wav.scp"


def test_copies_keep_length_level_and_speaker_and_follow_the_seed(tmp_path):
    scp = _corpus(tmp_path)
    for out, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert augment_copies.main([str(scp), str(tmp_path / out), "--utt2spk", str(tmp_path / "utt2spk"),
                                    "--seed", str(seed)]) == 0
    copies = datadir.read_wav_scp(tmp_path / "a" / "wav.scp")
    assert sorted(copies) == [f"aug-u{i}" for i in range(6)]
    assert datadir.read_utt2spk(tmp_path / "a" / "utt2spk")["aug-u3"] == "s1"
    kinds = {fields[0] for fields in datadir.read_table(tmp_path / "a" / "utt2kind", max_split=0).values()}
    assert kinds and kinds <= set(augment_copies.KINDS)
    for i in range(6):
        x = audio.load_audio(tmp_path / "in" / f"u{i}.wav")
        y = audio.load_audio(copies[f"aug-u{i}"])
        assert len(y) == len(x)
        assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=0.05)
        assert not np.allclose(x, y, atol=1e-3)  # something was added
    a, b, c = ((tmp_path / d / "wav" / "aug-u0.wav").read_bytes() for d in "abc")
    assert a == b and a != c


@pytest.mark.parametrize("kind", augment_copies.KINDS)
def test_each_kind_changes_the_signal_at_its_level(kind):
    rng = np.random.default_rng(1)
    x = np.sin(np.arange(32000) / 7.0) * 0.2
    others = [rng.standard_normal(20000) * 0.1 for _ in range(5)]
    y = augment_copies.augment(x, kind, others, rng)
    assert y.shape == x.shape and np.isfinite(y).all()
    assert np.mean(y**2) == pytest.approx(np.mean(x**2), rel=1e-6)
    assert np.corrcoef(x, y)[0, 1] < 0.999


def test_bad_input_is_one_line_naming_it_and_writes_nothing(tmp_path, capsys):
    scp = _corpus(tmp_path, n=3)
    datadir.write_utt2spk(tmp_path / "short_utt2spk", {"u0": "s0", "u1": "s1"})
    assert augment_copies.main([str(scp), str(tmp_path / "out"), "--utt2spk", str(tmp_path / "short_utt2spk")]) == 1
    assert "no speaker for utterance u2" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    datadir.write_wav_scp(tmp_path / "bad.scp", {"u0": str(tmp_path / "in" / "gone.wav")})
    assert augment_copies.main([str(tmp_path / "bad.scp"), str(tmp_path / "out")]) == 1
    assert "gone.wav" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_one_speaker_gets_no_babble(tmp_path):
    scp = _corpus(tmp_path, n=4)
    datadir.write_utt2spk(tmp_path / "one", {f"u{i}": "s0" for i in range(4)})
    assert augment_copies.main([str(scp), str(tmp_path / "out"), "--utt2spk", str(tmp_path / "one"), "--seed", "1"]) == 0
    kinds = {fields[0] for fields in datadir.read_table(tmp_path / "out" / "utt2kind", max_split=0).values()}
    assert kinds and "babble" not in kinds
