"""Synthetic speaker vectors with known labels, for tests, benchmarks and demos.

The model follows the usual PLDA picture of speaker embeddings: speaker means live in a
low-rank subspace of the embedding space (``speaker_rank`` dims, scaled by a decaying spectrum),
and every utterance adds isotropic full-rank noise. Vectors come out L2-normalised unless asked
otherwise, like the embeddings the context model exports.
"""

from __future__ import annotations

import numpy as np

__all__ = ["make_speaker_vectors"]


def make_speaker_vectors(
    n_speakers: int,
    utts_per_speaker: int | tuple[int, int] = 20,
    dim: int = 100,
    *,
    speaker_rank: int = 16,
    noise: float = 0.25,
    normalize: bool = True,
    random_state: int | None = 0,
    dtype=np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw utterance vectors of ``n_speakers`` speakers.

    Parameters
    ----------
    n_speakers : int
        Number of distinct speakers.
    utts_per_speaker : int or (low, high)
        Utterances per speaker; a pair draws each speaker's count uniformly from ``[low, high]``.
    dim : int
        Embedding dimension.
    speaker_rank : int
        Rank of the between-speaker subspace (``<= dim``).
    noise : float
        Standard deviation of the within-speaker noise relative to the spread of speaker means
        (per unit of vector norm; 0.25 gives well-separated speakers at ``speaker_rank=16``).
    normalize : bool
        L2-normalise every vector.
    random_state : int or None
        Seed; the same seed gives the same vectors.

    Returns
    -------
    vectors : ndarray of shape (n_utts, dim), ``dtype``
    labels : ndarray of shape (n_utts,), int64
        Speaker index of every vector, grouped by speaker.
    """
    if n_speakers < 1:
        raise ValueError(f"`n_speakers` must be >= 1. Received: n_speakers={n_speakers}")
    if not 1 <= speaker_rank <= dim:
        raise ValueError(f"`speaker_rank` must be in [1, dim={dim}]. Received: speaker_rank={speaker_rank}")
    rng = np.random.default_rng(random_state)
    if isinstance(utts_per_speaker, tuple):
        low, high = utts_per_speaker
        counts = rng.integers(low, high + 1, size=n_speakers)
    else:
        counts = np.full(n_speakers, int(utts_per_speaker))
    labels = np.repeat(np.arange(n_speakers, dtype=np.int64), counts)

    # Orthonormal basis of the speaker subspace and a gently decaying spectrum in it.
    basis, _ = np.linalg.qr(rng.standard_normal((dim, speaker_rank)))
    spectrum = np.linspace(1.0, 0.5, speaker_rank)
    latent = rng.standard_normal((n_speakers, speaker_rank)) * spectrum
    means = latent @ basis.T
    means /= np.linalg.norm(means, axis=1, keepdims=True)

    out = np.empty((labels.size, dim), dtype=dtype)
    chunk = 65536
    scale = noise / np.sqrt(dim)
    for start in range(0, labels.size, chunk):
        lab = labels[start:start + chunk]
        block = means[lab] + scale * rng.standard_normal((lab.size, dim))
        if normalize:
            block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + lab.size] = block
    return out, labels
