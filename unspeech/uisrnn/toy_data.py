"""Deterministic toy diarization data in the layout of the ``uisrnn`` demo files.

Every sequence is a conversation of 2-4 speakers taking turns of 3-15 entries; an entry is
the speaker's unit-norm centre plus small Gaussian noise. Every sequence has new speakers, so a
model that does well on the test part has learned to track speakers, not to remember them.

:func:`make_toy_data` returns

- ``train_sequence``: (N, D) float64, all training sequences concatenated;
- ``train_cluster_id``: (N,) str, labels ``"<sequence>_<speaker>"`` (unique per sequence);
- ``test_sequences``: list of (T_i, D) float64;
- ``test_cluster_ids``: list of (T_i,) str arrays.

:func:`save_toy_data` / :func:`load_toy_data` store the same in two ``.npz`` files without
pickled objects (test sequences are kept concatenated with their lengths).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from unspeech._fileutil import atomic_open
from unspeech.errors import DataError

__all__ = ["make_conversation", "make_toy_data", "save_toy_data", "load_toy_data"]

TRAIN_FILE = "toy_training_data.npz"
TEST_FILE = "toy_testing_data.npz"


def make_conversation(rng: np.random.Generator, observation_dim: int = 256, num_speakers: int = 3,
                      target_length: int = 95, turn_range: tuple[int, int] = (3, 15),
                      noise_std: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """One sequence: entries (T, D) float64 and speaker indices (T,) int64.

    Turns alternate between distinct speakers; the first ``num_speakers`` turns introduce
    every speaker once, later turns pick any other speaker. Turns are added until the sequence
    reaches ``target_length`` entries; the last one is cut to fit but keeps at least
    ``turn_range[0]`` entries.
    """
    centres = rng.standard_normal((num_speakers, observation_dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    order = list(rng.permutation(num_speakers))
    speakers, lengths = [], []
    total, current = 0, -1
    low, high = turn_range
    while total < target_length:
        if order:
            current = int(order.pop(0))
        else:
            others = [s for s in range(num_speakers) if s != current]
            current = int(rng.choice(others))
        length = int(rng.integers(low, high + 1))
        if total + length > target_length:
            length = max(target_length - total, low)
        speakers.append(current)
        lengths.append(length)
        total += length
    labels = np.repeat(np.asarray(speakers, dtype=np.int64), lengths)
    entries = centres[labels] + noise_std * rng.standard_normal((len(labels), observation_dim))
    return entries, labels


def make_toy_data(seed: int = 0, observation_dim: int = 256, num_train_sequences: int = 100,
                  num_test_sequences: int = 25, length_range: tuple[int, int] = (85, 105),
                  speaker_range: tuple[int, int] = (2, 4), noise_std: float = 0.02) -> dict:
    """Training and test data; the same arguments always give the same arrays."""
    rng = np.random.default_rng(seed)

    def conversation():
        speakers = int(rng.integers(speaker_range[0], speaker_range[1] + 1))
        length = int(rng.integers(length_range[0], length_range[1] + 1))
        return make_conversation(rng, observation_dim, speakers, length, noise_std=noise_std)

    train_parts, train_ids = [], []
    for index in range(num_train_sequences):
        entries, labels = conversation()
        train_parts.append(entries)
        train_ids.append(np.char.add(f"{index}_", labels.astype(str)))
    test_sequences, test_ids = [], []
    for _ in range(num_test_sequences):
        entries, labels = conversation()
        test_sequences.append(entries)
        test_ids.append(labels.astype(str))
    return {
        "train_sequence": np.concatenate(train_parts) if train_parts else np.zeros((0, observation_dim)),
        "train_cluster_id": np.concatenate(train_ids) if train_ids else np.zeros(0, dtype=str),
        "test_sequences": test_sequences,
        "test_cluster_ids": test_ids,
    }


def save_toy_data(directory: str | os.PathLike, data: dict) -> tuple[Path, Path]:
    """Write ``toy_training_data.npz`` and ``toy_testing_data.npz`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lengths = np.array([len(s) for s in data["test_sequences"]], dtype=np.int64)
    with atomic_open(directory / TRAIN_FILE, "wb") as handle:
        np.savez(handle, train_sequence=data["train_sequence"], train_cluster_id=data["train_cluster_id"])
    with atomic_open(directory / TEST_FILE, "wb") as handle:
        np.savez(handle, test_sequence=np.concatenate(data["test_sequences"]),
                 test_cluster_id=np.concatenate(data["test_cluster_ids"]), test_lengths=lengths)
    return directory / TRAIN_FILE, directory / TEST_FILE


def load_toy_data(directory: str | os.PathLike) -> dict:
    """Read what :func:`save_toy_data` wrote."""
    directory = Path(directory)
    try:
        with np.load(directory / TRAIN_FILE, allow_pickle=False) as train, \
                np.load(directory / TEST_FILE, allow_pickle=False) as test:
            bounds = np.cumsum(test["test_lengths"])[:-1]
            return {
                "train_sequence": train["train_sequence"],
                "train_cluster_id": train["train_cluster_id"],
                "test_sequences": np.split(test["test_sequence"], bounds),
                "test_cluster_ids": np.split(test["test_cluster_id"], bounds),
            }
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"cannot read toy data from {directory}: {exc}") from None
