"""UIS-RNN model files: this package's ``.npz`` format and the ``uisrnn`` library's torch format.

=============  ===================================================================================
``unspeech``   ``.npz`` archive of float32 arrays + a JSON header (``FORMAT_NAME``); no pickle
``uisrnn``     ``torch.save`` zip of the library (:mod:`unspeech.uisrnn.torch_format`), read and
               written without torch
=============  ===================================================================================

:func:`read_model` recognises either by content; :func:`write_model` writes either;
:func:`convert_model` turns one file into the other. Nothing here imports TensorFlow or torch.
"""

from __future__ import annotations

import json
import os

import numpy as np

from unspeech._fileutil import atomic_open
from unspeech.errors import ConfigError, DataError
from unspeech.uisrnn import torch_format
from unspeech.uisrnn.weights import DecoderWeights

__all__ = ["FORMAT_NAME", "FILE_FORMATS", "read_model", "write_model", "convert_model"]

FORMAT_NAME = "unspeech.uisrnn/1"
FILE_FORMATS = ("unspeech", "uisrnn")


def _check_file_format(file_format: str) -> None:
    if file_format not in FILE_FORMATS:
        raise ConfigError(f"`file_format` must be one of {list(FILE_FORMATS)}. Received: file_format={file_format!r}")


def _read_npz(path: str) -> tuple[dict, DecoderWeights]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise DataError(f"UIS-RNN model file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a UIS-RNN model saved by unspeech or uisrnn ({exc})") from None
    try:
        header = json.loads(str(arrays.pop("header")))
    except (KeyError, ValueError):
        raise DataError(f"{path} is not a UIS-RNN model saved by unspeech or uisrnn (no header)") from None
    if header.get("format") != FORMAT_NAME:
        raise DataError(f"{path}: unsupported model format {header.get('format')!r}; expected {FORMAT_NAME!r}")
    depth = int(header["rnn_depth"])
    try:
        weights = DecoderWeights(
            kernels=tuple(arrays[f"gru{layer}_kernel"] for layer in range(depth)),
            recurrent_kernels=tuple(arrays[f"gru{layer}_recurrent_kernel"] for layer in range(depth)),
            biases=tuple(arrays[f"gru{layer}_bias"] for layer in range(depth)),
            dense1_kernel=arrays["dense1_kernel"], dense1_bias=arrays["dense1_bias"],
            dense2_kernel=arrays["dense2_kernel"], dense2_bias=arrays["dense2_bias"],
            init_hidden=arrays["init_hidden"], sigma2=arrays["sigma2"],
            transition_bias=header.get("transition_bias"), crp_alpha=float(header["crp_alpha"]))
    except KeyError as exc:
        raise DataError(f"{path}: missing weights ({exc})") from None
    return header, weights


def read_model(path) -> tuple[dict, DecoderWeights, str]:
    """Read a UIS-RNN model file of either format.

    Returns
    -------
    header : dict
        ``observation_dim``, ``rnn_hidden_size``, ``rnn_depth``, ``rnn_dropout``,
        ``transition_bias``, ``transition_bias_denominator``, ``crp_alpha`` (and, for this
        package's files, whether sigma2 / the transition bias were estimated).
    weights : DecoderWeights
    file_format : {"unspeech", "uisrnn"}
    """
    path = os.fspath(path)
    if torch_format.is_torch_file(path):
        weights, header = torch_format.read_torch_model(path)
        return header, weights, "uisrnn"
    header, weights = _read_npz(path)
    return header, weights, "unspeech"


def write_model(path, header: dict, weights: DecoderWeights, file_format: str = "unspeech") -> None:
    """Write a model atomically: ``"unspeech"`` (``.npz`` + JSON header) or ``"uisrnn"`` (torch zip).

    ``header`` holds the architecture and training state (``FORMAT_NAME`` is added); the
    uisrnn format keeps only what the library stores (weights, sigma2, transition bias and its
    denominator, crp_alpha).
    """
    _check_file_format(file_format)
    if file_format == "uisrnn":
        torch_format.write_torch_model(path, weights, header.get("transition_bias_denominator") or 0.0)
        return
    arrays = {"header": np.array(json.dumps(dict(header, format=FORMAT_NAME)))}
    for layer in range(weights.depth):
        arrays[f"gru{layer}_kernel"] = weights.kernels[layer]
        arrays[f"gru{layer}_recurrent_kernel"] = weights.recurrent_kernels[layer]
        arrays[f"gru{layer}_bias"] = weights.biases[layer]
    for name in ("dense1_kernel", "dense1_bias", "dense2_kernel", "dense2_bias", "init_hidden", "sigma2"):
        arrays[name] = getattr(weights, name)
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **arrays)


def convert_model(source, target, to: str = "unspeech") -> str:
    """Read ``source`` (either format) and write it to ``target`` in format ``to``.

    The weights are copied exactly (float32). Returns the format ``source`` was in.
    Converting a uisrnn file to ours records the library's default ``rnn_dropout`` (0.2), since
    its files do not store it; it only matters for further training of a deep model.
    """
    _check_file_format(to)
    if os.path.abspath(os.fspath(source)) == os.path.abspath(os.fspath(target)):
        raise ConfigError(f"the converted model would overwrite its source {os.fspath(source)}: give another path")
    header, weights, file_format = read_model(source)
    write_model(target, header, weights, to)
    return file_format
