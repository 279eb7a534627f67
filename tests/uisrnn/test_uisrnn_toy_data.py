"""The bundled toy data generator and the demo script."""

from __future__ import annotations

import numpy as np
import pytest

from unspeech.errors import DataError
from unspeech.uisrnn import demo
from unspeech.uisrnn.toy_data import load_toy_data, make_conversation, make_toy_data, save_toy_data


def test_toy_data_has_the_demo_layout_and_is_deterministic():
    data = make_toy_data(seed=3, observation_dim=16, num_train_sequences=4, num_test_sequences=5)
    again = make_toy_data(seed=3, observation_dim=16, num_train_sequences=4, num_test_sequences=5)
    np.testing.assert_array_equal(data["train_sequence"], again["train_sequence"])
    assert data["train_sequence"].shape[1] == 16 and data["train_sequence"].dtype == np.float64
    assert data["train_cluster_id"].dtype.kind == "U" and len(data["train_cluster_id"]) == len(data["train_sequence"])
    assert {label.split("_")[0] for label in data["train_cluster_id"]} == {"0", "1", "2", "3"}
    assert len(data["test_sequences"]) == 5
    for sequence, labels in zip(data["test_sequences"], data["test_cluster_ids"]):
        assert 85 <= len(sequence) <= 105 + 2 and len(labels) == len(sequence)
        assert 2 <= len(set(labels)) <= 4
        changes = np.flatnonzero(labels[1:] != labels[:-1]) + 1
        turns = np.diff(np.r_[0, changes, len(labels)])
        assert turns[:-1].min() >= 3 and turns.max() <= 15
    assert not np.array_equal(make_toy_data(seed=4, observation_dim=16, num_train_sequences=1)["train_sequence"][:5],
                              data["train_sequence"][:5])


def test_conversation_entries_sit_near_unit_centres():
    entries, labels = make_conversation(np.random.default_rng(0), observation_dim=64, num_speakers=3,
                                        target_length=60, noise_std=0.01)
    assert sorted(set(labels.tolist())) == [0, 1, 2]
    for speaker in range(3):
        centre = entries[labels == speaker].mean(axis=0)
        assert np.linalg.norm(centre) == pytest.approx(1.0, abs=0.05)


def test_toy_data_files_round_trip_without_pickle(tmp_path):
    data = make_toy_data(seed=1, observation_dim=4, num_train_sequences=2, num_test_sequences=3)
    save_toy_data(tmp_path, data)
    loaded = load_toy_data(tmp_path)
    np.testing.assert_array_equal(loaded["train_cluster_id"], data["train_cluster_id"])
    for a, b in zip(loaded["test_sequences"], data["test_sequences"]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(DataError, match="cannot read toy data"):
        load_toy_data(tmp_path / "missing")


def test_demo_trains_saves_reloads_and_reports(tmp_path, capsys):
    saved = tmp_path / "demo_model.npz"
    code = demo.main(["--observation_dim=8", "--rnn_hidden_size=16", "-t=5", "--num_train_sequences=2",
                      "--num_test_sequences=2", f"--saved_model={saved}", "--result_file=none",
                      "--num_processes=1", "--verbosity=0"])
    assert code == 0 and saved.exists()
    out = capsys.readouterr().out
    assert out.count("Predicted labels:") == 2
    assert "averaged accuracy:" in out
