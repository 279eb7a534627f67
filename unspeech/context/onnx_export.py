"""Export the two embedding towers of a trained context model to ONNX (``RUN/model.onnx``).

The exported graph needs neither TensorFlow nor Keras: ONNX Runtime (a default dependency)
runs it, see :mod:`unspeech.context.onnx_model`. Building the graph needs the ``onnx`` package
and the trained Keras model, i.e. the ``train`` extra.

Graph
-----
inputs   ``targets``  float32 (N, window_length, feat_size)
         ``contexts`` float32 (M, window_neg_length, feat_size)
outputs  ``target_embeddings``  float32 (N, embedding_size)
         ``context_embeddings`` float32 (M, embedding_size)

Each tower is the same arithmetic as :meth:`ContextModel.embed_targets` / ``embed_contexts`` in
inference mode: input normalisation (``normalize_input``), the trunk, the head (dropout is the
identity), unit normalisation and the learned scale. Batch normalisation is folded into a
multiply-add with the moving statistics. Weights shared by tied towers are stored once.

Convolutions run channels-first (ONNX's layout): a window ``(N, W, F)`` becomes the image
``(N, 1, W, F)``; Keras' channels-last flatten order is restored by a transpose before each
flatten, so the outputs equal Keras' (within float rounding; :func:`export_onnx` checks 1e-4).

The file's metadata (``metadata_props``) holds ``config`` (the run's config.json as JSON),
``checkpoint`` (the checkpoint file name the weights came from) and ``checkpoint_sha256`` (the
SHA-256 of its ``.index`` file, which checksums every tensor: the model's fingerprint, see
:mod:`unspeech.context.ivector_dir`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from unspeech.context.towers import ONNX_NAME
from unspeech.errors import ConfigError

__all__ = ["ONNX_NAME", "OPSET", "model_to_onnx", "export_onnx", "quantize_int8"]

log = logging.getLogger("unspeech.export")

OPSET = 17


def _numpy(variable) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)


class _GraphBuilder:
    """Collects ONNX nodes and initializers; names every tensor uniquely."""

    def __init__(self):
        self.nodes: list = []
        self.initializers: dict[str, object] = {}
        self._by_variable: dict[object, str] = {}
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, array: np.ndarray, hint: str = "const", key=None) -> str:
        """An initializer; ``key`` (e.g. the Keras variable) deduplicates shared weights."""
        from onnx import numpy_helper

        # a Keras variable lives as long as the model: its id is a stable key; tuples are keys themselves
        key = key if key is None or isinstance(key, tuple) else id(key)
        if key is not None and key in self._by_variable:
            return self._by_variable[key]
        name = self._name(hint)
        self.initializers[name] = numpy_helper.from_array(np.ascontiguousarray(array), name)
        if key is not None:
            self._by_variable[key] = name
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, outputs: int = 1, **attrs):
        from onnx import helper

        names = [self._name(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, **attrs))
        return names[0] if outputs == 1 else names


class _TowerConverter:
    """Converts one tower (trunk + head) layer by layer, tracking the tensor layout.

    ``layout`` is ``"flat"`` for (N, D) or (N, W, F) tensors and ``"nchw"`` for images; ``hw``
    holds the static spatial size of images (frames, bins) to compute TensorFlow's "same" pads.
    """

    def __init__(self, g: _GraphBuilder):
        self.g = g
        self.layout = "flat"
        self.hw: tuple[int, int] | None = None

    # ------------------------------------------------------------------ layers

    def convert(self, layer, x: str) -> str:
        import keras

        from unspeech.context import transforms as tr

        if isinstance(layer, tr.ResidualBlock):
            return self._residual(layer, x)
        if isinstance(layer, tr.HighwayLayer):
            return self._highway(layer, x)
        if isinstance(layer, tr._StackTransform):
            if isinstance(layer, (tr.VggTransform, tr.ResNet)):
                x = self.g.op("Unsqueeze", [x, self.g.const(np.array([1], np.int64), "axes")], "image")
                self.layout = "nchw"
            for sub in layer.stack:
                x = self.convert(sub, x)
            return x
        if isinstance(layer, keras.layers.Dense):
            return self._dense(layer, x)
        if isinstance(layer, keras.layers.BatchNormalization):
            return self._batch_norm(layer, x)
        if isinstance(layer, keras.layers.LeakyReLU):
            return self.g.op("LeakyRelu", [x], alpha=float(layer.negative_slope))
        if isinstance(layer, keras.layers.Dropout):
            return x
        if isinstance(layer, keras.layers.Conv2D):
            return self._conv(layer, x)
        if isinstance(layer, keras.layers.MaxPooling2D):
            return self._max_pool(layer, x)
        if isinstance(layer, keras.layers.Flatten):
            if self.layout == "nchw":  # Keras flattens channels-last: (N, H, W, C) order
                x = self.g.op("Transpose", [x], perm=[0, 2, 3, 1])
                self.layout, self.hw = "flat", None
            return self.g.op("Flatten", [x], axis=1)
        if isinstance(layer, keras.layers.GlobalAveragePooling2D):
            x = self.g.op("GlobalAveragePool", [x])
            self.layout, self.hw = "flat", None
            return self.g.op("Flatten", [x], axis=1)
        if isinstance(layer, keras.layers.Bidirectional):
            return self._lstm([layer.forward_layer, layer.backward_layer], x)
        if isinstance(layer, keras.layers.LSTM):
            return self._lstm([layer], x)
        raise ConfigError(f"ONNX export does not know the layer {layer.name!r} ({type(layer).__name__})")

    def _activation(self, name: str, x: str) -> str:
        if name in ("linear", None):
            return x
        if name == "sigmoid":
            return self.g.op("Sigmoid", [x])
        if name == "relu":
            return self.g.op("Relu", [x])
        if name == "tanh":
            return self.g.op("Tanh", [x])
        if name == "leaky_relu":  # keras.activations.leaky_relu's default slope
            return self.g.op("LeakyRelu", [x], alpha=0.2)
        raise ConfigError(f"ONNX export does not know the activation {name!r}")

    def _dense(self, layer, x: str) -> str:
        y = self.g.op("MatMul", [x, self.g.const(_numpy(layer.kernel), "kernel", layer.kernel)])
        if layer.use_bias:
            y = self.g.op("Add", [y, self.g.const(_numpy(layer.bias), "bias", layer.bias)])
        return self._activation(layer.activation.__name__, y)

    def _batch_norm(self, layer, x: str) -> str:
        """Inference batch norm as ``x * scale + shift`` (per channel)."""
        var, mean = _numpy(layer.moving_variance), _numpy(layer.moving_mean)
        gamma = _numpy(layer.gamma) if layer.scale else np.ones_like(var)
        beta = _numpy(layer.beta) if layer.center else np.zeros_like(var)
        scale = gamma / np.sqrt(var + layer.epsilon)
        shift = beta - mean * scale
        if self.layout == "nchw":
            scale, shift = scale[:, None, None], shift[:, None, None]
        y = self.g.op("Mul", [x, self.g.const(scale.astype(np.float32), "bn_scale", ("scale", id(layer)))])
        return self.g.op("Add", [y, self.g.const(shift.astype(np.float32), "bn_shift", ("shift", id(layer)))])

    def _same_pads(self, kernel: tuple[int, int], strides: tuple[int, int]) -> tuple[list[int], tuple[int, int]]:
        """TensorFlow's "same" padding (the extra pixel goes after) and the output size."""
        begin, end, out = [], [], []
        for size, k, s in zip(self.hw, kernel, strides):
            n = -(-size // s)
            total = max((n - 1) * s + k - size, 0)
            begin.append(total // 2)
            end.append(total - total // 2)
            out.append(n)
        return begin + end, (out[0], out[1])

    def _conv(self, layer, x: str) -> str:
        kernel = tuple(int(k) for k in layer.kernel_size)
        strides = tuple(int(s) for s in layer.strides)
        if layer.padding != "same" or tuple(layer.dilation_rate) != (1, 1) or layer.groups != 1:
            raise ConfigError(f"ONNX export supports 'same' undilated convolutions only (layer {layer.name!r})")
        pads, self.hw = self._same_pads(kernel, strides)
        w = np.transpose(_numpy(layer.kernel), (3, 2, 0, 1))  # (kh, kw, in, out) -> (out, in, kh, kw)
        inputs = [x, self.g.const(w, "conv_kernel", layer.kernel)]
        if layer.use_bias:
            inputs.append(self.g.const(_numpy(layer.bias), "conv_bias", layer.bias))
        y = self.g.op("Conv", inputs, kernel_shape=list(kernel), strides=list(strides), pads=pads)
        return self._activation(layer.activation.__name__, y)

    def _max_pool(self, layer, x: str) -> str:
        pool = tuple(int(p) for p in layer.pool_size)
        strides = tuple(int(s) for s in layer.strides)
        if layer.padding != "valid":
            raise ConfigError(f"ONNX export supports unpadded max-pooling only (layer {layer.name!r})")
        self.hw = tuple((n - p) // s + 1 for n, p, s in zip(self.hw, pool, strides))
        return self.g.op("MaxPool", [x], kernel_shape=list(pool), strides=list(strides))

    def _highway(self, layer, x: str) -> str:
        h = self.g.op("LeakyRelu", [self._dense(layer.transform, x)], alpha=0.2)
        t = self._dense(layer.gate, x)  # the gate's Dense carries the sigmoid
        carry = self.g.op("Sub", [self.g.const(np.array(1.0, np.float32), "one"), t])
        return self.g.op("Add", [self.g.op("Mul", [h, t]), self.g.op("Mul", [x, carry])])

    def _residual(self, layer, x: str) -> str:
        hw_in = self.hw
        y = x
        for sub in layer.stack:
            y = self.convert(sub, y)
        hw_out = self.hw
        if layer.shortcut is None:
            skip = x
        else:
            self.hw = hw_in
            skip = self._conv(layer.shortcut, x)
            if self.hw != hw_out:
                raise ConfigError(f"ONNX export: shortcut and residual shapes differ in {layer.name!r}")
        return self.g.op("LeakyRelu", [self.g.op("Add", [y, skip])], alpha=0.2)

    def _lstm(self, layers, x: str) -> str:
        """Keras LSTM(s) (forward, and backward for Bidirectional) -> last hidden state(s)."""
        ws, rs, bs = [], [], []
        units = int(layers[0].units)
        for lstm in layers:
            cell = lstm.cell
            if cell.activation.__name__ != "tanh" or cell.recurrent_activation.__name__ != "sigmoid":
                raise ConfigError(f"ONNX export supports LSTMs with tanh/sigmoid activations only ({lstm.name!r})")
            order = np.concatenate([np.arange(g * units, (g + 1) * units) for g in (0, 3, 1, 2)])  # ifco -> iofc
            ws.append(_numpy(cell.kernel)[:, order].T)
            rs.append(_numpy(cell.recurrent_kernel)[:, order].T)
            bias = _numpy(cell.bias)[order] if cell.use_bias else np.zeros(4 * units, np.float32)
            bs.append(np.concatenate([bias, np.zeros_like(bias)]))
        seq = self.g.op("Transpose", [x], perm=[1, 0, 2])  # (N, T, F) -> (T, N, F)
        direction = "bidirectional" if len(layers) == 2 else "forward"
        outs = self.g.op("LSTM", [seq, self.g.const(np.stack(ws), "lstm_w", ("w", id(layers[0]))),
                                  self.g.const(np.stack(rs), "lstm_r", ("r", id(layers[0]))),
                                  self.g.const(np.stack(bs), "lstm_b", ("b", id(layers[0])))],
                         outputs=3, hidden_size=units, direction=direction)
        last = self.g.op("Transpose", [outs[1]], perm=[1, 0, 2])  # Y_h (dirs, N, H) -> (N, dirs, H)
        return self.g.op("Flatten", [last], axis=1)  # forward half first, as Keras concatenates


def model_to_onnx(model, checkpoint: str = "", checkpoint_sha256: str = ""):
    """Build the ONNX model of ``model`` (a :class:`ContextModel` with weights): an ``onnx.ModelProto``."""
    from onnx import TensorProto, checker, helper

    c = model.config
    g = _GraphBuilder()
    outputs = []
    for input_name, output_name, trunk, head, frames in (
        ("targets", "target_embeddings", model.trunk_target, model.head_target, c.window_length),
        ("contexts", "context_embeddings", model.trunk_context, model.head_context, c.window_neg_length),
    ):
        x = input_name
        if model.input_mean is not None:
            x = g.op("Sub", [x, g.const(_numpy(model.input_mean), "input_mean", model.input_mean)])
            x = g.op("Mul", [x, g.const(_numpy(model.input_inv_std), "input_inv_std", model.input_inv_std)])
        conv = _TowerConverter(g)
        conv.hw = (frames, c.feat_size)
        x = conv.convert(trunk, x)
        conv.layout, conv.hw = "flat", None
        x = conv.convert(head, x)
        if c.unit_normalize or c.unit_normalize_var:
            sq = g.op("ReduceSumSquare", [x], axes=[-1], keepdims=1)
            norm = g.op("Sqrt", [g.op("Max", [sq, g.const(np.array(1e-12, np.float32), "eps")])])
            x = g.op("Div", [x, norm])
        if model.scale is not None:
            x = g.op("Mul", [x, g.const(_numpy(model.scale), "unit_norm_scale", model.scale)])
        g.nodes.append(helper.make_node("Identity", [x], [output_name]))
        outputs.append(helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", c.embedding_size]))
    inputs = [
        helper.make_tensor_value_info("targets", TensorProto.FLOAT, ["batch", c.window_length, c.feat_size]),
        helper.make_tensor_value_info("contexts", TensorProto.FLOAT, ["context_batch", c.window_neg_length, c.feat_size]),
    ]
    outputs[1] = helper.make_tensor_value_info("context_embeddings", TensorProto.FLOAT, ["context_batch", c.embedding_size])
    graph = helper.make_graph(g.nodes, "unspeech_context_towers", inputs, outputs, list(g.initializers.values()))
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                   producer_name="unspeech", doc_string="unspeech context model: target and context towers")
    onnx_model.ir_version = 8  # readable by every ONNX Runtime since 1.10
    helper.set_model_props(onnx_model, {"config": json.dumps(c.to_dict(), sort_keys=True), "checkpoint": checkpoint,
                                        "checkpoint_sha256": checkpoint_sha256})
    checker.check_model(onnx_model)
    return onnx_model


def export_onnx(run_dir: str | os.PathLike, checkpoint: str | int | None = None, output: str | os.PathLike | None = None,
                tolerance: float = 1e-4, seed: int = 0) -> Path:
    """Write ``RUN/model.onnx`` (or ``output``) for a trained run and check it against Keras.

    The check embeds random windows (seeded) with both Keras towers and the ONNX file through
    ONNX Runtime; a difference above ``tolerance`` raises :class:`ConfigError` and nothing is
    written. Returns the path written.
    """
    from unspeech._fileutil import atomic_path
    from unspeech.context.rundir import find_checkpoint, load_run
    from unspeech.extras import require_onnx_export

    require_onnx_export()
    config, model = load_run(run_dir, checkpoint)
    prefix = find_checkpoint(run_dir, checkpoint)
    index = Path(prefix + ".index")
    onnx_model = model_to_onnx(model, checkpoint=os.path.basename(prefix),
                               checkpoint_sha256=hashlib.sha256(index.read_bytes()).hexdigest())
    data = onnx_model.SerializeToString()
    worst = _compare_with_keras(model, data, seed)
    if worst > tolerance:
        raise ConfigError(f"ONNX export of {run_dir} differs from the Keras model by {worst:.2e} (> {tolerance:g})")
    path = Path(output) if output is not None else Path(run_dir) / ONNX_NAME
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    log.info("wrote %s (%.1f MB, %s; max |ONNX - Keras| = %.1e)", path, len(data) / 1e6, os.path.basename(prefix), worst)
    return path


def quantize_int8(run_dir: str | os.PathLike, tolerance: float = 0.98, seed: int = 0) -> Path:
    """Write ``RUN/model.int8.onnx`` from ``RUN/model.onnx``: the matrix products' weights as int8
    (ONNX Runtime's dynamic quantization; activations are quantized per batch at run time).

    Only ``MatMul`` is quantized (dense layers and heads); convolutions and LSTMs stay float32, where
    int8 kernels gain little on CPUs. The result is checked on random windows: the cosine similarity
    of every embedding to the float32 one must be at least ``tolerance``, else :class:`ConfigError`
    and nothing is written. Returns the path written.
    """
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from unspeech._fileutil import atomic_path
    from unspeech.context.config import ContextConfig
    from unspeech.context.towers import INT8_NAME, OnnxTowers

    run_dir = Path(run_dir)
    source = run_dir / ONNX_NAME
    if not source.is_file():
        raise ConfigError(f"{run_dir} has no {ONNX_NAME} to quantize: run `unspeech export {run_dir}` first")
    config = ContextConfig.from_json(run_dir / "config.json").validate()
    path = run_dir / INT8_NAME
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / INT8_NAME
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantizer's "consider pre-processing" advice
        try:
            quantize_dynamic(str(source), str(staged), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        finally:
            root.setLevel(level)
        exact, quantized = OnnxTowers(source, config), OnnxTowers(staged, config, runtime="onnx-int8")
        rng = np.random.default_rng(seed)
        worst = 1.0
        for tower, length in (("target", config.window_length), ("context", config.window_neg_length)):
            windows = (rng.standard_normal((64, length, config.feat_size)) * 3.0 + 10.0).astype(np.float32)
            a, b = exact.embed(windows, tower), quantized.embed(windows, tower)
            cos = np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
            worst = min(worst, float(cos.min()))
        if worst < tolerance:
            raise ConfigError(f"int8 quantization of {source} moves embeddings too far (cosine {worst:.4f} < {tolerance})")
        with atomic_path(path) as tmp_path:
            Path(tmp_path).write_bytes(staged.read_bytes())
    log.info("wrote %s (%.1f MB; cosine to float32 >= %.4f on random windows)", path, path.stat().st_size / 1e6, worst)
    return path


def _compare_with_keras(model, onnx_bytes: bytes, seed: int, batch: int = 7) -> float:
    """Largest absolute difference of both towers' embeddings on random windows."""
    from unspeech.context.towers import KerasTowers, OnnxTowers

    c = model.config
    rng = np.random.default_rng(seed)
    mean = 0.0 if model.input_mean is None else _numpy(model.input_mean)
    std = 1.0 if model.input_inv_std is None else 1.0 / _numpy(model.input_inv_std)
    targets = (mean + std * rng.standard_normal((batch, c.window_length, c.feat_size))).astype(np.float32)
    contexts = (mean + std * rng.standard_normal((batch, c.window_neg_length, c.feat_size))).astype(np.float32)
    exported, reference = OnnxTowers(onnx_bytes, c), KerasTowers(model)
    worst = 0.0
    for tower, windows in (("target", targets), ("context", contexts)):
        keras_out = reference.embed(windows, tower)
        onnx_out = exported.embed(windows, tower)
        worst = max(worst, float(np.max(np.abs(keras_out - onnx_out))))
    return worst
