"""The folder Kaldi's nnet3/chain scripts read exported features from (``--online-ivector-dir``).

Kaldi reads two files next to ``ivector_online.scp``, one of each per folder:

* ``ivector_period`` -- frames per row, passed as ``--online-ivector-period``; without it
  ``steps/nnet3/decode.sh`` and ``chain/get_egs.sh`` stop.
* ``final.ie.id`` -- the extractor's id. ``steps/nnet2/check_ivectors_compatible.sh`` compares the
  ids of the training and decoding folders: equal ids pass, different ids stop the decode, a
  missing id prints a warning. Here the id is ``unspeech-`` + the first 32 hex digits of a SHA-256
  over the run's ``config.json`` and the SHA-256 of the checkpoint's ``.index`` file (it holds a
  checksum of every tensor); a run installed without checkpoints takes that fingerprint from its
  ``model.onnx``, which records it at export. Two exports of one model agree wherever the run dir
  lies and whichever runtime runs it; another checkpoint or another run differs.

Because both files are per folder, every export in a folder must share period and model. An export
whose period or model differs from the folder's files while the folder holds other exports (``*.scp``
of another prefix) is refused before any work, naming the file; re-exporting the same prefix
replaces the files. A job of a job array (``--job J``) writes ``PREFIX.J.json`` (period, id,
utterances) instead, and ``--merge`` writes the folder's files from them.

Times are in frames of the input features (10 ms with Kaldi's default frame shift).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

from unspeech.errors import ConfigError, DataError

__all__ = ["PERIOD_NAME", "ID_NAME", "model_id", "check_folder", "write_folder_files", "write_job_info",
           "read_job_infos"]

log = logging.getLogger("unspeech.gen_feat")

PERIOD_NAME = "ivector_period"
ID_NAME = "final.ie.id"


def _checkpoint_index(run_dir: Path, checkpoint: str) -> Path | None:
    """The ``.index`` file of the checkpoint ``gen_feat`` loads ("" = latest), None without checkpoints."""
    ckpt_dir = run_dir / "checkpoints"
    if checkpoint.isdigit():
        prefix = ckpt_dir / f"ckpt-{checkpoint}"
    elif checkpoint:
        prefix = Path(checkpoint)
    else:
        from unspeech.context.towers import latest_checkpoint_name

        latest = latest_checkpoint_name(run_dir)
        if latest is None:
            return None
        prefix = ckpt_dir / latest
    index = Path(f"{prefix}.index")
    if not index.is_file():
        raise ConfigError(f"no checkpoint {prefix} in {run_dir} (its .index file is missing)")
    return index


def model_id(run_dir: str | os.PathLike, checkpoint: str = "") -> str:
    """The ``final.ie.id`` of exports made with ``run_dir`` at ``checkpoint`` (see the module notes)."""
    run_dir = Path(run_dir)
    config = run_dir / "config.json"
    if not run_dir.is_dir():
        raise ConfigError(f"run dir {run_dir} does not exist" if not run_dir.exists() else
                          f"{run_dir} is not a directory, so not a trained run dir")
    if not config.is_file():
        raise ConfigError(f"{run_dir} is not a trained run dir (no config.json)")
    index = _checkpoint_index(run_dir, str(checkpoint or ""))
    if index is not None:
        weights = hashlib.sha256(index.read_bytes()).hexdigest()
    else:
        onnx = run_dir / "model.onnx"
        if not onnx.is_file():
            raise ConfigError(f"{run_dir} has neither checkpoints nor model.onnx")
        from unspeech.context.towers import onnx_metadata

        # the export records its checkpoint's fingerprint, so an installed copy without
        # checkpoints gets the id of the run it came from
        weights = onnx_metadata(onnx).get("checkpoint_sha256") or hashlib.sha256(onnx.read_bytes()).hexdigest()
    digest = hashlib.sha256(config.read_bytes())
    digest.update(weights.encode("ascii"))
    return "unspeech-" + digest.hexdigest()[:32]


def _read_value(path: Path) -> str | None:
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def _other_exports(prefix: str) -> list[str]:
    """scp files in the prefix's folder written by other exports (not ``PREFIX.scp`` / ``PREFIX.J.scp``)."""
    folder = Path(prefix).parent
    own = re.compile(re.escape(Path(prefix).name) + r"(\.[0-9]+)?\.scp$")
    return sorted(p.name for p in folder.glob("*.scp") if not own.fullmatch(p.name)) if folder.is_dir() else []


def check_folder(prefix: str, period: int, ident: str) -> None:
    """Refuse an export that would change the period or model of a folder holding other exports."""
    folder = Path(prefix).parent
    others = _other_exports(prefix)
    if not others:
        return
    for name, value in ((PERIOD_NAME, str(period)), (ID_NAME, ident)):
        old = _read_value(folder / name)
        if old is not None and old != value:
            what = "period" if name == PERIOD_NAME else "model"
            raise ConfigError(
                f"{folder / name} says {old} but this export writes {value}: the folder also holds "
                f"{', '.join(others[:3])}, and Kaldi reads one {name} for every scp in a folder. Export "
                f"with the same {what} or into another folder (--output_feat_file)")


def changes_folder(prefix: str, period: int, ident: str) -> bool:
    """True when the folder's ``ivector_period`` or ``final.ie.id`` exists and says something else."""
    folder = Path(prefix).parent
    return any(_read_value(folder / name) not in (None, value)
               for name, value in ((PERIOD_NAME, str(period)), (ID_NAME, ident)))


def write_folder_files(prefix: str, period: int, ident: str) -> list[str]:
    """Write ``ivector_period`` and ``final.ie.id`` next to ``PREFIX.scp`` (atomically); returns the paths."""
    from unspeech._fileutil import atomic_open

    check_folder(prefix, period, ident)
    folder = Path(prefix).parent
    written = []
    for name, value in ((PERIOD_NAME, str(period)), (ID_NAME, ident)):
        old = _read_value(folder / name)
        if old is not None and old != value:
            log.info("replacing %s (%s -> %s)", folder / name, old, value)
        with atomic_open(folder / name) as fh:
            fh.write(f"{value}\n")
        written.append(str(folder / name))
    return written


def write_job_info(job_prefix: str, period: int | None, ident: str, utterances: int, num_jobs: int) -> str:
    """``PREFIX.J.json``: what ``--merge`` needs from job ``J`` (period None: speaker vectors)."""
    from unspeech._fileutil import atomic_open

    path = f"{job_prefix}.json"
    with atomic_open(path) as fh:
        json.dump({"ivector_period": period, "model_id": ident, "utterances": utterances,
                   "num_jobs": num_jobs}, fh)
        fh.write("\n")
    return path


def read_job_infos(prefix: str, num_jobs: int) -> tuple[int | None, str]:
    """``(period, model id)`` all ``PREFIX.1..N.json`` agree on; DataError naming the job that differs."""
    from unspeech.context.export import job_prefix

    seen: tuple[int | None, str] | None = None
    for j in range(1, num_jobs + 1):
        path = f"{job_prefix(prefix, j)}.json"
        if not os.path.exists(path):
            raise DataError(f"job output {path} is missing (did job {j} finish? it is written last)")
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
        if info.get("num_jobs") != num_jobs:
            raise DataError(f"{path}: job {j} ran with --num_jobs {info.get('num_jobs')}, merging expects {num_jobs}")
        this = (info.get("ivector_period"), info.get("model_id"))
        if seen is not None and this != seen:
            raise DataError(f"{path}: job {j} used period {this[0]} and model {this[1]}, job 1 used "
                            f"period {seen[0]} and model {seen[1]}: rerun the jobs with one setting")
        seen = this
    assert seen is not None
    return seen
