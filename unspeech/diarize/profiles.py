"""Enrolled speakers: profiles from enrollment audio or Kaldi-ark speaker embeddings.

A profile is one L2-normalised vector per speaker. Speech regions are assigned to the profile
with the highest cosine similarity; a region whose best similarity is below
``unknown_threshold`` is labelled :data:`UNKNOWN` instead.

Profiles must live in the embedding space of the model that diarizes: enrollment audio is
embedded with the same embedder (and speech detector) as the recordings; Kaldi-ark profiles
(``--profiles profile.scp``: one vector ``(D,)`` per speaker, or a matrix ``(T, D)`` whose rows
are averaged) must have the embedder's dimension, which :meth:`SpeakerProfiles.check_dim` checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from unspeech.errors import DataError

__all__ = ["UNKNOWN", "SpeakerProfiles", "l2_normalize"]

UNKNOWN = "unknown"
"""Label of speech that matches no enrolled profile closely enough."""


def l2_normalize(x: np.ndarray, copy: bool = True) -> np.ndarray:
    """Rows of ``(N, D)`` (or one ``(D,)`` vector) scaled to unit length; zero rows stay zero.

    ``copy=False`` scales a float64 array in place (no second ``(N, D)`` array for long recordings)."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    if copy:
        return x / np.where(norm > 0, norm, 1.0)
    x /= np.where(norm > 0, norm, 1.0)
    return x


@dataclass(frozen=True)
class SpeakerProfiles:
    """Named speaker profiles.

    Attributes
    ----------
    names : list of str, one per profile
    vectors : ndarray of shape (n_speakers, dim), float64, unit length
    source : str, where they came from (named in error messages)
    """

    names: list[str]
    vectors: np.ndarray
    source: str = "<profiles>"

    def __post_init__(self) -> None:
        vectors = np.asarray(self.vectors)
        if vectors.ndim != 2 or len(vectors) != len(self.names) or len(vectors) == 0:
            raise DataError(f"{self.source}: need one vector per speaker, got {len(self.names)} names "
                            f"and vectors of shape {vectors.shape}")
        if len(set(self.names)) != len(self.names):
            raise DataError(f"{self.source}: speaker names repeat: {self.names}")
        if UNKNOWN in self.names:
            raise DataError(f"{self.source}: {UNKNOWN!r} is reserved for unmatched speech; rename that speaker")
        if not np.isfinite(vectors).all():
            raise DataError(f"{self.source}: profile vectors contain NaN or infinite values")

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def check_dim(self, dim: int, model_name: str = "the model") -> None:
        """Raise :class:`DataError` unless the profiles have ``dim`` dimensions."""
        if self.dim != dim:
            raise DataError(
                f"{self.source}: speaker profiles have dimension {self.dim}, but {model_name} makes "
                f"{dim}-dimensional embeddings; enroll with the same model"
            )

    @classmethod
    def from_vectors(cls, vectors: Mapping[str, np.ndarray], source: str = "<profiles>") -> "SpeakerProfiles":
        """Profiles from name → ``(D,)`` vector or ``(T, D)`` rows (averaged)."""
        names, rows = [], []
        for name, value in vectors.items():
            value = np.asarray(value, dtype=np.float64)
            if value.ndim == 2:
                if len(value) == 0:
                    raise DataError(f"{source}: speaker {name!r} has an empty matrix")
                value = value.mean(axis=0)
            if value.ndim != 1:
                raise DataError(f"{source}: speaker {name!r}: expected a vector or matrix, got shape {value.shape}")
            names.append(name)
            rows.append(value)
        dims = {len(r) for r in rows}
        if len(dims) > 1:
            raise DataError(f"{source}: speaker profiles have different dimensions {sorted(dims)}")
        if not rows:
            raise DataError(f"{source}: no speaker profiles")
        return cls(names, l2_normalize(np.stack(rows)), source)

    @classmethod
    def from_ark(cls, rspecifier: str | os.PathLike) -> "SpeakerProfiles":
        """Profiles from Kaldi ark/scp speaker embeddings (key = speaker name)."""
        from unspeech.kaldi_io import iter_mats

        source = os.fspath(rspecifier)
        vectors: dict[str, np.ndarray] = {}
        for key, mat in iter_mats(source):
            if key in vectors:
                raise DataError(f"{source}: speaker {key!r} appears twice")
            vectors[key] = mat
        return cls.from_vectors(vectors, source)

    @classmethod
    def from_enrollment(
        cls,
        audio: Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike],
        embed_speech: Callable[[str], np.ndarray],
    ) -> "SpeakerProfiles":
        """Profiles from enrollment recordings, one speaker each.

        ``audio`` is a list of paths (the speaker name is the file name without extension) or a
        mapping name → path; ``embed_speech(path)`` returns the ``(N, D)`` embedding rows of the
        recording's speech, as the diarizer computes them.
        """
        if not isinstance(audio, Mapping):
            audio = {os.path.splitext(os.path.basename(os.fspath(p)))[0]: p for p in audio}
            if len(audio) == 0:
                raise DataError("no enrollment audio given")
        vectors = {}
        for name, path in audio.items():
            rows = np.asarray(embed_speech(os.fspath(path)))
            if rows.ndim != 2 or len(rows) == 0:
                raise DataError(f"enrollment audio {os.fspath(path)!r} of speaker {name!r} contains no speech")
            vectors[name] = l2_normalize(rows).mean(axis=0)
        return cls.from_vectors(vectors, "enrollment audio")

    def similarities(self, embeddings: np.ndarray) -> np.ndarray:
        """Cosine similarity of each row to each profile: ``(N, D)`` → ``(N, n_speakers)``."""
        embeddings = np.asarray(embeddings, dtype=np.float64)
        if embeddings.ndim != 2:
            raise DataError(f"expected embeddings of shape (N, D), got {embeddings.shape}")
        self.check_dim(embeddings.shape[1])
        return l2_normalize(embeddings) @ self.vectors.T

    def assign(self, embeddings: np.ndarray, unknown_threshold: float | None = None) -> np.ndarray:
        """Index of the nearest profile per row, ``(N,) int``; ``len(names)`` means :data:`UNKNOWN`.

        ``unknown_threshold`` : minimum cosine similarity to accept a profile (None: always accept).
        """
        sims = self.similarities(embeddings)
        best = sims.argmax(axis=1) if len(sims) else np.zeros(0, dtype=np.int64)
        if unknown_threshold is not None and len(sims):
            best = np.where(sims[np.arange(len(sims)), best] >= unknown_threshold, best, len(self.names))
        return best.astype(np.int64)

    def assign_groups(self, centroids: np.ndarray, unknown_threshold: float | None = None) -> np.ndarray:
        """Profile index per group centroid ``(K, D)``, distinct profiles first.

        Groups (e.g. the clusters of a recording) and profiles are matched one to one so that the
        total cosine similarity is highest (Hungarian algorithm); groups left over when there are
        more groups than profiles take their nearest profile. Below ``unknown_threshold`` a group
        is :data:`UNKNOWN` (index ``len(names)``). Returns ``(K,) int64``.
        """
        from scipy.optimize import linear_sum_assignment

        sims = self.similarities(centroids)
        best = sims.argmax(axis=1).astype(np.int64) if len(sims) else np.zeros(0, dtype=np.int64)
        rows, cols = linear_sum_assignment(-sims)
        best[rows] = cols
        if unknown_threshold is not None and len(sims):
            best = np.where(sims[np.arange(len(sims)), best] >= unknown_threshold, best, len(self.names))
        return best

    @property
    def labels(self) -> list[str]:
        """Names of the labels :meth:`assign` returns: the speakers, then :data:`UNKNOWN`."""
        return [*self.names, UNKNOWN]
