"""Embedding arks + RTTM in, labels and RTTM out; the ``unspeech uisrnn`` command."""

from __future__ import annotations

import numpy as np
import pytest

from unspeech import cli, datadir, kaldi_io, uisrnn
from unspeech.errors import ConfigError, DataError
from unspeech.uisrnn import glue
from unspeech.uisrnn import model as model_module

from uisrnn_testdata import CENTRES

ROW = 0.1  # seconds per row with ivector_period 10


def test_rows_take_the_speaker_who_covers_most_of_them():
    turns = [datadir.Turn("u", "1", 0.0, 0.32, "A"), datadir.Turn("u", "1", 0.32, 0.28, "B"),
             datadir.Turn("u", "1", 0.8, 0.2, "A"), datadir.Turn("u", "1", 5.0, 1.0, "C")]
    assert glue.rows_to_speakers(turns, 10, ROW) == ["A", "A", "A", "B", "B", "B", None, None, "A", "A"]


def test_runs_of_labels_become_turns():
    turns = glue.labels_to_turns("rec", [0, 0, 1, 1, 1, 0], ROW)
    assert [(t.onset, t.duration, t.speaker) for t in turns] == [
        (0.0, pytest.approx(0.2), "spk0"), (pytest.approx(0.2), pytest.approx(0.3), "spk1"),
        (pytest.approx(0.5), pytest.approx(0.1), "spk0")]
    assert glue.labels_to_turns("rec", [], ROW) == []


def make_recording(rng, name, order, turn_rows=6, gap_rows=0):
    """Rows of a recording (2-D embeddings) and its RTTM turns; a silent gap between turns."""
    rows, turns, labels = [], [], []
    for speaker in order:
        start = len(rows)
        for _ in range(turn_rows):
            rows.append(np.array(CENTRES[speaker]) + 0.15 * rng.standard_normal(2))
            labels.append(speaker)
        turns.append(datadir.Turn(name, "1", start * ROW, turn_rows * ROW, speaker))
        for _ in range(gap_rows):
            rows.append(rng.standard_normal(2) * 0.01)
            labels.append(None)
    return np.array(rows, np.float32), turns, labels


def write_corpus(tmp_path, rng, count, prefix, gap_rows=0):
    mats, turns, labels = [], [], {}
    for index in range(count):
        name = f"{prefix}{index:02d}"
        order = list(rng.permutation(list("ABCD"))) * 2
        rows, rec_turns, rec_labels = make_recording(rng, name, order, gap_rows=gap_rows)
        mats.append((name, rows))
        turns.extend(rec_turns)
        labels[name] = rec_labels
    ark = tmp_path / f"{prefix}.ark"
    kaldi_io.write_mats(ark, mats, tmp_path / f"{prefix}.scp")
    rttm = tmp_path / f"{prefix}.rttm"
    datadir.write_rttm(rttm, turns)
    return ark, rttm, labels


def test_train_and_predict_on_arks_write_labels_and_rttm(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    ark, rttm, labels = write_corpus(tmp_path, rng, 3, "train", gap_rows=2)
    model_args, training_args, inference_args = uisrnn.default_arguments(
        observation_dim=2, rnn_hidden_size=8, verbosity=0, enable_cuda=False, train_iteration=3, batch_size=4)
    seen = []
    original = model_module.UISRNN._train

    def spy(self, sequence, codes, args):
        seen.append(len(sequence))
        return original(self, sequence, codes, args)

    monkeypatch.setattr(model_module.UISRNN, "_train", spy)
    model = glue.train_from_arks(f"scp:{tmp_path / 'train.scp'}", rttm, 10, model_args, training_args)
    # gap rows are silent: the model trains on the 48 speech rows of each recording only
    assert seen == [3 * 48]
    assert 0 < model.transition_bias < 1
    out_rttm, out_labels = tmp_path / "hyp.rttm", tmp_path / "labels.txt"
    result = glue.predict_arks(model, str(ark), inference_args, 10, out_rttm=out_rttm, out_labels=out_labels)
    assert list(result) == ["train00", "train01", "train02"]
    assert all(len(result[utt]) == len(labels[utt]) for utt in result)
    lines = out_labels.read_text().splitlines()
    assert lines[0].split()[0] == "train00" and len(lines[0].split()) == 1 + len(labels["train00"])
    turns = datadir.read_rttm(out_rttm)
    for utt in result:
        mine = [t for t in turns if t.file_id == utt]
        assert sum(t.duration for t in mine) == pytest.approx(len(result[utt]) * ROW, abs=0.01)
    parallel = glue.predict_arks(model, str(ark), inference_args, 10, num_processes=2)
    assert parallel == result
    calls = []
    hooked = glue.predict_arks(model, str(ark), inference_args, 10,
                               hook=lambda step, utt, **progress: calls.append((step, utt, progress)))
    assert hooked == result
    assert calls[-1] == ("predict", "train02", {"completed": 3, "total": 3})


def test_glue_errors(tmp_path):
    rng = np.random.default_rng(1)
    ark, rttm, _ = write_corpus(tmp_path, rng, 1, "x")
    model_args, training_args, inference_args = uisrnn.default_arguments(
        observation_dim=3, rnn_hidden_size=4, verbosity=0, train_iteration=1)
    with pytest.raises(DataError, match="has dimension 2 but the UIS-RNN observation_dim is 3"):
        glue.train_from_arks(str(ark), rttm, 10, model_args, training_args)
    with pytest.raises(ConfigError, match="`ivector_period` must be a positive integer"):
        glue.train_from_arks(str(ark), rttm, 0, model_args, training_args)
    other = tmp_path / "other.rttm"
    datadir.write_rttm(other, [datadir.Turn("elsewhere", "1", 0.0, 1.0, "A")])
    model_args.observation_dim = 2
    with pytest.raises(DataError, match="has speaker turns in"):
        glue.train_from_arks(str(ark), other, 10, model_args, training_args)
    empty = tmp_path / "empty.rttm"
    empty.write_text("")
    with pytest.raises(DataError, match="no SPEAKER turns"):
        glue.train_from_arks(str(ark), empty, 10, model_args, training_args)


def test_uisrnn_command_trains_and_diarizes(tmp_path, trained_2d):
    _, _, _, trained_path = trained_2d
    rng = np.random.default_rng(2)
    write_corpus(tmp_path, rng, 2, "train")
    _, _, truth = write_corpus(tmp_path, rng, 2, "test")
    model_path = tmp_path / "model.npz"
    # a few more steps from the trained model, at a small learning rate
    code = cli.main(["uisrnn", "train", "--input-ark", f"scp:{tmp_path / 'train.scp'}",
                     "--rttm", str(tmp_path / "train.rttm"), "--model", str(model_path), "--quiet",
                     "--init-model", str(trained_path), "--observation_dim", "2", "--rnn_hidden_size", "32",
                     "-t", "3", "-l", "1e-5", "--enable_cuda", "false"])
    assert code == 0 and model_path.exists()
    hyp = tmp_path / "hyp.rttm"
    code = cli.main(["uisrnn", "predict", "--input-ark", str(tmp_path / "test.ark"), "--model", str(model_path),
                     "--output_rttm", str(hyp), "--ivector_period", "10", "--quiet", "-s", "5"])
    assert code == 0
    turns = datadir.read_rttm(hyp)
    for utt, labels in truth.items():
        rows = glue.rows_to_speakers([t for t in turns if t.file_id == utt], len(labels), ROW)
        assert uisrnn.compute_sequence_match_accuracy(labels, rows) == 1.0


def test_uisrnn_command_failures(tmp_path, capsys):
    code = cli.main(["uisrnn", "predict", "--input-ark", str(tmp_path / "x.ark"), "--model",
                     str(tmp_path / "missing.npz"), "--output_rttm", str(tmp_path / "o.rttm")])
    assert code == 1
    assert "UIS-RNN model file not found" in capsys.readouterr().err
    code = cli.main(["uisrnn", "predict", "--input-ark", "x.ark", "--model", "m.npz"])
    assert code == 1
    assert "nothing would be written" in capsys.readouterr().err
