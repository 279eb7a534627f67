"""Synthetic feature corpora for the context-model tests (imported by test_context_*.py)."""

from __future__ import annotations

import numpy as np

from unspeech.feature_store import FeatureStore


def speaker_corpus(n_utts: int = 40, n_speakers: int = 8, dim: int = 20, seed: int = 0,
                   min_len: int = 150, max_len: int = 300) -> tuple[FeatureStore, dict[str, list[str]]]:
    """Frames = noise + a per-speaker offset + a per-utterance channel offset.

    Windows of one utterance share both offsets, windows of different utterances do not, so
    "is this window from the same context?" is learnable; returns (store, spk2utt).
    """
    rng = np.random.default_rng(seed)
    speaker_means = rng.normal(0.0, 1.0, (n_speakers, dim))
    ids, mats, spk2utt = [], [], {}
    for i in range(n_utts):
        s = i % n_speakers
        utt = f"spk{s}-utt{i:03d}"
        frames = int(rng.integers(min_len, max_len))
        channel = rng.normal(0.0, 0.5, dim)
        mats.append((rng.normal(0.0, 1.0, (frames, dim)) + speaker_means[s] + channel).astype(np.float32))
        ids.append(utt)
        spk2utt.setdefault(f"spk{s}", []).append(utt)
    return FeatureStore.from_arrays(ids, mats), spk2utt


def position_corpus(lengths: list[int], dim: int = 3) -> FeatureStore:
    """Frame t of utterance u holds the value u * 100000 + t in every column (decodable windows)."""
    mats = [np.repeat((u * 100000 + np.arange(n, dtype=np.float64))[:, None], dim, axis=1) for u, n in enumerate(lengths)]
    return FeatureStore.from_arrays([f"utt{u:03d}" for u in range(len(lengths))], mats, dtype="float64")
