"""Models of the ``uisrnn`` library (PyTorch ``torch.save`` files), read and written without torch.

A ``uisrnn`` model file is a ``torch.save`` zip archive holding one pickled dict::

    rnn_state_dict               OrderedDict of tensors: gru.{weight,bias}_{ih,hh}_l<k>,
                                 linear_mean1.{weight,bias}, linear_mean2.{weight,bias}
    rnn_init_hidden              ndarray of shape (depth, 1, H)
    sigma2                       ndarray of shape (D,)
    transition_bias, transition_bias_denominator, crp_alpha   floats

The pickle is read with an unpickler that only builds plain containers, NumPy arrays and
tensors (as NumPy arrays read from the archive's storage records): any other object in the file
is refused, so reading never runs code from the file. Writing produces the same layout, which
``torch.load`` (and so ``uisrnn.UISRNN.load``) reads.

PyTorch's GRU orders its gates (reset, update, new) in rows of ``(3H, in)`` matrices; ours are
(update, reset, candidate) in columns of ``(in, 3H)`` kernels with the same arithmetic, so the
conversion reorders and transposes, exactly (float32 both ways).
"""

from __future__ import annotations

import collections
import importlib
import io
import os
import pickle
import zipfile

import numpy as np

from unspeech._fileutil import atomic_open
from unspeech.errors import DataError
from unspeech.uisrnn.weights import DecoderWeights

__all__ = ["is_torch_file", "read_torch_model", "write_torch_model", "LIBRARY_DROPOUT"]

LIBRARY_DROPOUT = 0.2  # the library's default rnn_dropout; its files do not record the value

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_NUMPY_GLOBALS = {"_reconstruct", "scalar", "ndarray", "dtype"}


def is_torch_file(path) -> bool:
    """True when ``path`` is a zip archive written by ``torch.save`` (it holds a ``data.pkl``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/data.pkl") or name == "data.pkl" for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


# -- reading ---------------------------------------------------------------------------------
class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    """A tensor's values as a NumPy array (torch's _rebuild_tensor_v2 arguments).

    The view is checked to lie inside its storage before it is taken.
    """
    size, stride = tuple(int(v) for v in size), tuple(int(v) for v in stride)
    if not isinstance(storage, np.ndarray) or len(size) != len(stride) or min(size + stride + (offset,), default=0) < 0:
        raise pickle.UnpicklingError("malformed tensor record")
    if 0 not in size and offset + sum((n - 1) * step for n, step in zip(size, stride)) >= len(storage):
        raise pickle.UnpicklingError("tensor record reaches past its storage")
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=tuple(s * itemsize for s in stride))
    return np.array(view)


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, handle, archive: zipfile.ZipFile, prefix: str, source: str):
        super().__init__(handle)
        self._archive, self._prefix, self._source = archive, prefix, source

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in _NUMPY_GLOBALS:
            return getattr(_multiarray(), name)  # arrays and scalars, as numpy 1 or 2 pickled them
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if (module, name) == ("_codecs", "encode"):  # how protocol 2 spells bytes (array buffers)
            return _latin1_bytes
        return _refuse(self._source, module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise DataError(f"{self._source}: unexpected storage record {pid!r:.80}")
        _, storage_type, key, _location, numel = pid[:5]
        raw = self._archive.read(f"{self._prefix}data/{key}")
        array = np.frombuffer(raw, dtype=np.dtype(storage_type.dtype).newbyteorder("<"))
        if len(array) < numel:
            raise DataError(f"{self._source}: storage {key} holds {len(array)} values, expected {numel}")
        return array[:numel].astype(storage_type.dtype)


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("unexpected _codecs.encode call")
    return text.encode("latin1")


def _multiarray():
    try:
        return importlib.import_module("numpy._core.multiarray")
    except ImportError:  # numpy 1
        return importlib.import_module("numpy.core.multiarray")


def _refuse(source, module, name):
    raise DataError(f"{source}: holds a {module}.{name} object, which a uisrnn model file does not; "
                    "refusing to load it")


def _load_pickle(path: str) -> dict:
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DataError(f"UIS-RNN model file not found: {path}") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a torch.save archive ({exc})") from None
    with archive:
        names = [name for name in archive.namelist() if name.endswith("data.pkl")]
        if not names:
            raise DataError(f"{path} is not a torch.save archive (no data.pkl)")
        prefix = names[0][: -len("data.pkl")]
        byteorder = archive.read(prefix + "byteorder").decode() if prefix + "byteorder" in archive.namelist() else "little"
        if byteorder.strip() != "little":
            raise DataError(f"{path}: big-endian torch files are not supported")
        try:
            return _SafeUnpickler(io.BytesIO(archive.read(names[0])), archive, prefix, path).load()
        except DataError:
            raise
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise DataError(f"{path}: unreadable torch pickle ({exc})") from None


def _gates_to_ours(matrix: np.ndarray) -> np.ndarray:
    """(3H, n) rows (reset, update, new) -> (n, 3H) columns (update, reset, candidate); also (3H,)."""
    reset, update, new = np.split(np.asarray(matrix, np.float32), 3, axis=0)
    return np.concatenate([update, reset, new], axis=0).T


def _gates_to_theirs(matrix: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_gates_to_ours`."""
    update, reset, new = np.split(np.asarray(matrix, np.float32).T, 3, axis=0)
    return np.concatenate([reset, update, new], axis=0)


def read_torch_model(path) -> tuple[DecoderWeights, dict]:
    """Read a model saved by ``uisrnn.UISRNN.save``.

    Returns
    -------
    weights : DecoderWeights
        float32 arrays in this package's layout, with the file's transition bias and crp_alpha.
    header : dict
        ``observation_dim``, ``rnn_hidden_size``, ``rnn_depth``, ``rnn_dropout`` (the library
        default: the file does not record it), ``transition_bias``,
        ``transition_bias_denominator``, ``crp_alpha``.
    """
    path = os.fspath(path)
    content = _load_pickle(path)
    try:
        state = content["rnn_state_dict"]
        depth = sum(1 for name in state if name.startswith("gru.weight_ih_l"))
        if depth < 1:
            raise KeyError("gru.weight_ih_l0")
        kernels, recurrent, biases = [], [], []
        for layer in range(depth):
            kernels.append(_gates_to_ours(state[f"gru.weight_ih_l{layer}"]))
            recurrent.append(_gates_to_ours(state[f"gru.weight_hh_l{layer}"]))
            biases.append(np.stack([_gates_to_ours(state[f"gru.bias_ih_l{layer}"]),
                                    _gates_to_ours(state[f"gru.bias_hh_l{layer}"])]))
        init_hidden = np.asarray(content["rnn_init_hidden"], np.float32)
        bias = content.get("transition_bias")
        weights = DecoderWeights(
            kernels=tuple(kernels), recurrent_kernels=tuple(recurrent), biases=tuple(biases),
            dense1_kernel=np.asarray(state["linear_mean1.weight"], np.float32).T,
            dense1_bias=np.asarray(state["linear_mean1.bias"], np.float32),
            dense2_kernel=np.asarray(state["linear_mean2.weight"], np.float32).T,
            dense2_bias=np.asarray(state["linear_mean2.bias"], np.float32),
            init_hidden=init_hidden.reshape(depth, -1),
            sigma2=np.asarray(content["sigma2"], np.float32).reshape(-1),
            transition_bias=None if bias is None else float(bias),
            crp_alpha=float(content["crp_alpha"]))
        denominator = content.get("transition_bias_denominator")
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a uisrnn model (missing or misshapen entry {exc})") from None
    header = {
        "observation_dim": weights.observation_dim, "rnn_hidden_size": weights.hidden_size,
        "rnn_depth": depth, "rnn_dropout": LIBRARY_DROPOUT,
        "transition_bias": weights.transition_bias,
        "transition_bias_denominator": 0.0 if denominator is None else float(denominator),
        "crp_alpha": weights.crp_alpha,
    }
    problem = weights.shape_problem(header["observation_dim"], header["rnn_hidden_size"], depth)
    if problem:
        raise DataError(f"{path}: not a uisrnn model ({problem})")
    return weights, header


# -- writing ---------------------------------------------------------------------------------
class _Global:
    """A module-level name written into the pickle as is (torch need not be installed)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle wants a callable in a reduce tuple; only torch calls it
        raise TypeError(f"{self.module}.{self.name} is a name written for torch, not a function")


class _Storage:
    def __init__(self, key: str, array: np.ndarray):
        self.key, self.array = key, array


class _Tensor:
    def __init__(self, storage: _Storage):
        self.storage = storage

    def __reduce__(self):
        array = self.storage.array
        strides = tuple(s // array.itemsize for s in array.strides)
        return (_Global("torch._utils", "_rebuild_tensor_v2"),
                (self.storage, 0, tuple(array.shape), strides, False, collections.OrderedDict()))


class _TorchPickler(pickle._Pickler):  # the Python implementation: its dispatch table can be extended
    dispatch = dict(pickle._Pickler.dispatch)

    def save_torch_global(self, obj: _Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))
        self.memoize(obj)

    dispatch[_Global] = save_torch_global

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", _FLOAT_STORAGE, obj.key, "cpu", int(obj.array.size))
        return None


_FLOAT_STORAGE = _Global("torch", "FloatStorage")


def write_torch_model(path, weights: DecoderWeights, transition_bias_denominator: float = 0.0) -> None:
    """Write ``weights`` as a model file of the ``uisrnn`` library (atomically).

    ``uisrnn.UISRNN(args).load(path)`` reads it given matching ``observation_dim``,
    ``rnn_hidden_size`` and ``rnn_depth``. The transition bias must be set: the library's
    loader converts it to float.
    """
    if weights.transition_bias is None:
        raise DataError(f"cannot write {os.fspath(path)} in the uisrnn format: the model has no transition bias "
                        "yet (fit it, or set model_args.transition_bias)")
    storages: list[_Storage] = []

    def tensor(array) -> _Tensor:
        storage = _Storage(str(len(storages)), np.ascontiguousarray(array, dtype="<f4"))
        storages.append(storage)
        return _Tensor(storage)

    state = collections.OrderedDict()
    for layer in range(weights.depth):
        state[f"gru.weight_ih_l{layer}"] = tensor(_gates_to_theirs(weights.kernels[layer]))
        state[f"gru.weight_hh_l{layer}"] = tensor(_gates_to_theirs(weights.recurrent_kernels[layer]))
        state[f"gru.bias_ih_l{layer}"] = tensor(_gates_to_theirs(weights.biases[layer][0]))
        state[f"gru.bias_hh_l{layer}"] = tensor(_gates_to_theirs(weights.biases[layer][1]))
    state["linear_mean1.weight"] = tensor(np.asarray(weights.dense1_kernel).T)
    state["linear_mean1.bias"] = tensor(weights.dense1_bias)
    state["linear_mean2.weight"] = tensor(np.asarray(weights.dense2_kernel).T)
    state["linear_mean2.bias"] = tensor(weights.dense2_bias)
    content = {
        "rnn_state_dict": state,
        "rnn_init_hidden": np.asarray(weights.init_hidden, np.float32).reshape(weights.depth, 1, weights.hidden_size),
        "transition_bias": float(weights.transition_bias),
        "transition_bias_denominator": float(transition_bias_denominator),
        "crp_alpha": float(weights.crp_alpha),
        "sigma2": np.asarray(weights.sigma2, np.float32),
    }
    buffer = io.BytesIO()
    _TorchPickler(buffer, protocol=2).dump(content)
    prefix = "archive/"
    with atomic_open(path, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(prefix + "data.pkl", buffer.getvalue())
        archive.writestr(prefix + "byteorder", "little")
        for storage in storages:
            archive.writestr(f"{prefix}data/{storage.key}", storage.array.tobytes())
        archive.writestr(prefix + "version", "3\n")
