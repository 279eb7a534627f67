"""Clustering results as files: utt2spk, spk2utt, a Kaldi data dir, soft memberships, size summary.

Speaker ids: clusters are numbered in order of first appearance in the input and written as
``spk0000000``, ``spk0000001``, ... (the original toolkit's ``spk%07d``); singletons made from
outliers get numbers after the clusters; with the ``noise`` policy, outliers share the speaker
``spknoise``.

Everything a run writes goes through :class:`StagedOutputs`: files and folders are written under
temporary names and only renamed into place when every output has been produced, so a failure
leaves no half-written result behind; each output is locked while it is staged, so two runs
never publish into one set.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from unspeech._fileutil import _umask, output_lock, temp_path_beside
from unspeech.errors import ConfigError, DataError

__all__ = [
    "NOISE_SPEAKER",
    "speaker_ids",
    "cluster_size_summary",
    "format_size_summary",
    "StagedOutputs",
    "write_speaker_tables",
    "write_clustered_datadir",
    "write_membership",
    "check_output_dir",
]

logger = logging.getLogger(__name__)

NOISE_SPEAKER = "noise"

# Per-utterance tables carried over into a clustered data dir (keys renamed).
_UTTERANCE_TABLES = ("text", "segments", "feats.scp", "utt2dur", "utt2num_frames", "utt2lang", "utt2uniq", "vad.scp")
# Per-recording tables copied unchanged when the data dir has segments.
_RECORDING_TABLES = ("wav.scp", "reco2file_and_channel", "reco2dur")


def speaker_ids(labels: Sequence[int], prefix: str = "spk") -> list[str]:
    """Speaker id per utterance: clusters numbered by first appearance, -1 -> ``<prefix>noise``."""
    labels = np.asarray(labels, dtype=np.int64)
    names: dict[int, str] = {-1: f"{prefix}{NOISE_SPEAKER}"}
    out = []
    for lab in labels.tolist():
        name = names.get(lab if lab >= 0 else -1)
        if name is None:
            name = names[lab] = f"{prefix}{len(names) - 1:07d}"
        out.append(name)
    return out


def cluster_size_summary(labels: Sequence[int], noise_label: int = -1) -> dict:
    """Counts describing a clustering: clusters, singletons, noise, largest / median / mean size."""
    labels = np.asarray(labels, dtype=np.int64)
    noise = int((labels == noise_label).sum())
    _, sizes = np.unique(labels[labels != noise_label], return_counts=True)
    return {
        "n_utts": int(labels.size),
        "n_clusters": int(sizes.size),
        "n_singletons": int((sizes == 1).sum()),
        "n_noise": noise,
        "largest_cluster": int(sizes.max()) if sizes.size else 0,
        "median_cluster": float(np.median(sizes)) if sizes.size else 0.0,
        "mean_cluster": float(sizes.mean()) if sizes.size else 0.0,
    }


def format_size_summary(summary: Mapping) -> str:
    """One line: ``1234 utterances -> 56 clusters (7 singletons, 0 noise); sizes: largest 80, median 20, mean 21.9``."""
    return (
        f"{summary['n_utts']} utterances -> {summary['n_clusters']} clusters "
        f"({summary['n_singletons']} singletons, {summary['n_noise']} noise); "
        f"sizes: largest {summary['largest_cluster']}, median {summary['median_cluster']:g}, "
        f"mean {summary['mean_cluster']:.1f}"
    )


def check_output_dir(path: str | os.PathLike) -> None:
    """Refuse an existing non-empty output folder before any work is done."""
    p = Path(path)
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise ConfigError(f"output data dir {p} already exists and is not empty; remove it or choose another")


class StagedOutputs:
    """Stage output files and folders; publish them all as one set only if the block succeeds.

    >>> with StagedOutputs() as out:                      # doctest: +SKIP
    ...     write_utt2spk(out.file("exp/utt2spk"), mapping)
    ...     fig.savefig(out.file("exp/clusters.png"), format="png")

    Publishing first removes every old file the set replaces, then renames the staged ones into
    place: a kill in between leaves some outputs missing (which readers and Kaldi's scripts refuse),
    never a new ``utt2spk`` beside an old ``spk2utt``. On an error nothing is touched and the
    staged files are removed. Every output is locked (:func:`unspeech._fileutil.output_lock`) from
    the moment it is staged until the set is published: another run writing the same output at the
    same time is refused with a :class:`ConfigError` naming the holder, instead of mixing the sets.

    Parameters
    ----------
    what : str, names this run in the message another writer gets ("cluster run")
    """

    def __init__(self, what: str = "cluster run"):
        self.what = what
        self._staged: list[tuple[Path, Path]] = []  # (temporary, target)
        self._locks = contextlib.ExitStack()

    def __enter__(self) -> "StagedOutputs":
        return self

    def file(self, path: str | os.PathLike) -> Path:
        """A temporary path beside ``path`` that becomes ``path`` on success."""
        self._locks.enter_context(output_lock(path, self.what))
        tmp = temp_path_beside(path)
        self._staged.append((tmp, Path(path)))
        return tmp

    def directory(self, path: str | os.PathLike) -> Path:
        """A temporary folder beside ``path`` that becomes ``path`` on success (``path`` must not hold files)."""
        target = Path(path)
        check_output_dir(target)
        self._locks.enter_context(output_lock(target, self.what))
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        self._staged.append((tmp, target))
        return tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                self._publish()
        finally:
            for tmp, _ in self._staged:
                if tmp.is_dir():
                    shutil.rmtree(tmp, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()
            self._locks.close()
        return False

    def _publish(self) -> None:
        for tmp, target in self._staged:  # old files of the set go first (folders are empty: checked)
            if target.is_dir() and not target.is_symlink():
                target.rmdir()
            else:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
        for tmp, target in self._staged:
            if tmp.is_dir():
                os.chmod(tmp, 0o777 & ~_umask())
            os.replace(tmp, target)


def write_speaker_tables(
    utt2spk_path: str | os.PathLike | None,
    spk2utt_path: str | os.PathLike | None,
    utt_ids: Sequence[str],
    speakers: Sequence[str],
) -> None:
    """Write ``utt2spk`` and/or ``spk2utt`` (C-sorted) for the given assignment."""
    from unspeech import datadir

    mapping = dict(zip(utt_ids, speakers))
    if utt2spk_path is not None:
        datadir.write_utt2spk(utt2spk_path, mapping)
    if spk2utt_path is not None:
        datadir.write_spk2utt(spk2utt_path, datadir.utt2spk_to_spk2utt(mapping))


def _read_source_table(path: Path) -> dict[str, str]:
    from unspeech import datadir

    return {key: " ".join(fields) for key, fields in datadir.read_table(path, min_fields=1).items()}


def write_clustered_datadir(
    out_dir: str | os.PathLike,
    utt_ids: Sequence[str],
    speakers: Sequence[str],
    source_dir: str | os.PathLike | None = None,
) -> int:
    """Write a Kaldi data dir whose utterance ids are ``<speaker>-<utt>``; returns the utterance count.

    With ``source_dir``, its per-utterance tables (``text``, ``segments``, ``feats.scp``,
    ``utt2dur``, ...) are carried over under the new ids and per-recording tables (``wav.scp``
    when there are segments, ``reco2file_and_channel``, ...) copied; utterances missing from the
    source are left out (and counted in a warning). ``cmvn.scp`` is per speaker and is not
    copied: recompute it for the new speakers. The result is checked with
    :func:`unspeech.datadir.validate_datadir`.
    """
    from unspeech import datadir

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    assignment = dict(zip(utt_ids, speakers))
    keep = list(utt_ids)
    tables: dict[str, dict[str, str]] = {}
    if source_dir is not None:
        src = Path(source_dir)
        if not (src / "utt2spk").is_file():
            raise DataError(f"--source-datadir {src}: not a Kaldi data dir (no utt2spk)")
        has_segments = (src / "segments").is_file()
        per_utt = [name for name in _UTTERANCE_TABLES if (src / name).is_file()]
        if not has_segments and (src / "wav.scp").is_file():
            per_utt.append("wav.scp")
        for name in per_utt:
            tables[name] = _read_source_table(src / name)
        known = set(datadir.read_utt2spk(src / "utt2spk"))
        for name in per_utt:
            known &= set(tables[name])
        dropped = [u for u in keep if u not in known]
        if dropped:
            logger.warning("%d clustered utterances are not in %s and are left out, e.g. %s", len(dropped), src, dropped[:3])
        keep = [u for u in keep if u in known]
        if not keep:
            raise DataError(f"none of the clustered utterances is in --source-datadir {src}")
        if has_segments:  # only the recordings the kept utterances use (Kaldi's validate/fix compare them)
            used = {tables["segments"][u].split()[0] for u in keep}
            for name in _RECORDING_TABLES:
                if (src / name).is_file():
                    table = _read_source_table(src / name)
                    datadir.write_table(out / name, {r: v for r, v in table.items() if r in used})
        if (src / "cmvn.scp").is_file():
            logger.warning("cmvn.scp is per speaker: recompute it for the clustered speakers (steps/compute_cmvn_stats.sh)")
    new_id = {u: f"{assignment[u]}-{u}" for u in keep}
    datadir.write_utt2spk(out / "utt2spk", {new_id[u]: assignment[u] for u in keep})
    datadir.write_spk2utt(out / "spk2utt", datadir.utt2spk_to_spk2utt({new_id[u]: assignment[u] for u in keep}))
    for name, table in tables.items():
        datadir.write_table(out / name, {new_id[u]: table[u] for u in keep})
    datadir.validate_datadir(out)
    return len(keep)


def write_membership(
    path: str | os.PathLike,
    utt_ids: Sequence[str],
    speakers: Sequence[str],
    probabilities: np.ndarray,
    membership: np.ndarray | None = None,
    cluster_speakers: Sequence[str] | None = None,
) -> None:
    """Write soft memberships as ``.npz``: ``utt_ids``, ``speakers`` (hard assignment),
    ``probabilities`` (n,) and, when given, ``membership`` (n, k) with column names ``clusters`` (k,)."""
    arrays = {
        "utt_ids": np.asarray(list(utt_ids), dtype=str),
        "speakers": np.asarray(list(speakers), dtype=str),
        "probabilities": np.asarray(probabilities, dtype=np.float64),
    }
    if membership is not None:
        arrays["membership"] = np.asarray(membership, dtype=np.float32)
        arrays["clusters"] = np.asarray(list(cluster_speakers or []), dtype=str)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
