"""Every option of the context model in one dataclass, saved as ``config.json`` in a run dir.

:class:`ContextConfig` is the single source of truth: the command-line parsers of
``unsup_model_neg.py`` and ``unspeech train`` are generated from its fields
(:func:`add_config_arguments`), the run directory stores it (:meth:`ContextConfig.to_json`),
and feature export reads it back (:meth:`ContextConfig.from_json`). Defaults follow the
original unspeech where it had one.

Boolean flags accept ``--x``, ``--nox``, ``--x True``/``--x False`` and ``--x=true``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

from unspeech.errors import ConfigError

__all__ = [
    "ContextConfig",
    "TRANSFORMATION_NAMES",
    "add_config_arguments",
    "config_from_args",
    "given_options",
    "parse_bool",
]

# Names accepted by ``embedding_transformation`` (the layers live in transforms.py, which
# imports TensorFlow; this tuple lets the CLI and validation stay light).
TRANSFORMATION_NAMES = ("Vgg16big", "Vgg16", "Vgg16bigB", "BaselineDnn", "HighwayDnn", "ResNet", "LSTM", "BiLSTM")
LR_SCHEDULES = ("constant", "cosine", "exponential")
DISTRIBUTE_CHOICES = ("auto", "none", "mirrored", "multi_worker")
MEMMAP_DTYPES = ("float32", "float16")
# Options added after run dirs existed: a saved config without them gets the behaviour they replaced.
_LEGACY_VALUES = {"normalize_input": False}


def _opt(default: Any, help: str, kind: str, aliases: tuple[str, ...] = (), choices: tuple | None = None):
    """A dataclass field with CLI metadata.

    ``kind`` groups options: ``data`` and ``train``/``runtime`` may change when a run is resumed;
    ``model`` and ``sampling`` fix what the weights mean and must match a saved run.
    """
    meta = {"help": help, "kind": kind, "aliases": aliases, "choices": choices}
    return field(default=default, metadata=meta)


@dataclass
class ContextConfig:
    """All options of the negative-sampling context model (see ``--help`` for each meaning)."""

    # ---------------------------------------------------------------- data
    filelist: str = _opt("", "Kaldi features to train on: .ark, .ark.gz, .scp or an rspecifier (ark:, scp:, 'cmd |').", "data")
    spk2utt: str = _opt("", "Optional Kaldi spk2utt file; when given, negative windows come from other utterances of the SAME speaker (the model then learns what differs within a speaker, e.g. channel and session).", "data")
    feat_size: int = _opt(40, "Feature dimension (fbank bins); must match the data.", "model", aliases=("--num_filters",))
    end_to_end: bool = _opt(False, "Raw-waveform input with a learned 1-D front end. NOT SUPPORTED in this version: train on Kaldi fbank features instead (unspeech fbank).", "model")
    memmap_dir: str = _opt("", "Cache the features in ONE memory-mapped file in this folder instead of RAM.", "data")
    memmap_dtype: str = _opt("float32", "Storage type of the feature cache (float16 halves memory).", "data", choices=MEMMAP_DTYPES)
    memmap_reuse_cache: bool = _opt(False, "Reuse an existing feature cache in memmap_dir instead of reading the input again.", "data")
    debug: bool = _opt(False, "Use only the first 100 utterances and log at DEBUG level.", "runtime")

    # ---------------------------------------------------------------- sampling
    window_length: int = _opt(50, "Target window length in frames.", "model")
    window_neg_length: int = _opt(50, "Context / negative window length in frames.", "model")
    left_contexts: int = _opt(2, "Context windows directly left of the target (positive pairs).", "sampling")
    right_contexts: int = _opt(2, "Context windows directly right of the target (positive pairs).", "sampling")
    negative_samples: int = _opt(4, "Negative pairs per target: the target with a window from another utterance.", "sampling")
    sample_2x_neg: bool = _opt(False, "Also draw negative_samples pairs of (random target-length window, a true context window), so that both towers see negatives; doubles the negatives.", "sampling")
    context_gap: int = _opt(0, "Largest gap in frames between the target and its block of left (and of right) context windows; each group draws each side's gap uniformly from 0..context_gap (0 = contexts directly adjacent, the original sampling). A gap makes positives share the speaker rather than the sound that just continues across the window edge.", "sampling")
    minimum_speaker_length: int = _opt(0, "With spk2utt: skip speakers with fewer frames than this in utterances long enough for a group.", "sampling")

    # ---------------------------------------------------------------- model
    embedding_transformation: str = _opt("BaselineDnn", "Trunk network of each tower.", "model", aliases=("--embedding_transform",), choices=TRANSFORMATION_NAMES)
    embedding_size: int = _opt(100, "Size of the embedding (output of each tower).", "model")
    fc_size: int = _opt(512, "Units of the fully connected layer of the head (and of the DNN trunks).", "model")
    num_highway_layers: int = _opt(6, "Highway layers of HighwayDnn.", "model")
    num_dnn_layers: int = _opt(3, "Hidden layers of BaselineDnn.", "model")
    rnn_hidden_cells: int = _opt(128, "Units per direction of the LSTM / BiLSTM trunks.", "model")
    tied_embeddings_transforms: bool = _opt(False, "Share the trunk between target and context tower (needs window_length == window_neg_length).", "model")
    tied_final_embeddings_transforms: bool = _opt(False, "Share the head (fc -> dropout -> linear) between the towers.", "model")
    use_dot_combine: bool = _opt(True, "Logit = dot product of the two embeddings; otherwise a learned combination (MLP over [a, b, a*b, |a-b|]).", "model")
    unit_normalize: bool = _opt(False, "L2-normalise both embeddings before combining (cosine similarity).", "model")
    unit_normalize_var: bool = _opt(False, "L2-normalise and multiply by ONE shared trainable scale.", "model")
    batch_normalization: bool = _opt(False, "Batch normalisation after every conv / dense layer of the trunks and heads.", "model")
    batch_normalization_decay: float = _opt(0.99, "Momentum of the batch-normalisation moving averages.", "model")
    dropout_keep_prob: float = _opt(0.9, "Keep probability of the dropout in the head (1.0 = no dropout).", "model")
    normalize_input: bool = _opt(True, "Standardise each feature dimension with the mean and standard deviation of the training frames; the statistics are part of the model, so export applies the same (raw fbank has a large common offset that stalls training).", "model")

    # ---------------------------------------------------------------- training
    batch_size: int = _opt(32, "Target windows (groups) per step; each gives left+right positive and the negative pairs.", "train")
    learn_rate: float = _opt(1e-4, "Adam learning rate (peak value of a schedule).", "train")
    lr_schedule: str = _opt("constant", "Learning-rate schedule: constant, cosine (to 0 at max_steps) or exponential (lr_decay_rate every lr_decay_steps).", "train", choices=LR_SCHEDULES)
    lr_warmup_steps: int = _opt(0, "Linear warm-up steps from 0 to learn_rate (cosine schedule only).", "train")
    lr_decay_steps: int = _opt(100000, "Steps per decay of the exponential schedule.", "train")
    lr_decay_rate: float = _opt(0.5, "Factor per lr_decay_steps of the exponential schedule.", "train")
    gradient_clipping: float = _opt(10.0, "Clip gradients to this global norm (0 = off).", "train")
    l2_reg: float = _opt(0.0005, "L2 penalty l2_reg * sum(w^2)/2 over all kernels, added to the loss.", "train")
    use_weighted_loss_func: bool = _opt(False, "Weight positive pairs so that both classes contribute equally to the loss.", "train")
    seed: int = _opt(42, "Seed of weights, dropout and window sampling.", "train")
    max_steps: int = _opt(0, "Stop after this many steps (0 = no limit).", "train")
    validation_fraction: float = _opt(0.05, "Fraction of utterances (of speakers with spk2utt) held out for validation (0 = none).", "train")
    validation_batches: int = _opt(20, "Batches in the fixed held-out validation set.", "train")
    early_stopping_patience: int = _opt(10, "Stop after this many validations without a lower validation loss (0 = never).", "train")
    steps_per_checkpoint: int = _opt(2000, "Steps between log lines, validation and checkpoints.", "train")
    steps_per_summary: int = _opt(4000, "Steps between TensorBoard training scalars (besides every checkpoint).", "train")
    keep_checkpoints: int = _opt(5, "Checkpoints kept in the run dir.", "train")
    log_tensorboard: bool = _opt(True, "Write TensorBoard event files to RUN/tensorboard.", "train")
    train_dir: str = _opt("unspeech_models", "A run dir (with config.json) to resume, or a folder in which a new run dir runs/<timestamp><params> is created.", "runtime")

    # ---------------------------------------------------------------- runtime
    distribute: str = _opt("auto", "Device strategy: auto (all GPUs, mirrored, when more than one), none, mirrored, multi_worker (reads TF_CONFIG).", "runtime", choices=DISTRIBUTE_CHOICES)
    logical_cpu_devices: int = _opt(0, "Split the CPU into this many logical devices (to try distribution without GPUs; 0 = off).", "runtime")
    mixed_precision: bool = _opt(False, "mixed_float16 compute with loss scaling (needs a GPU).", "runtime")
    jit_compile: bool = _opt(False, "Compile the training step with XLA.", "runtime")
    num_threads: int = _opt(0, "TensorFlow intra-op threads (0 = TensorFlow's default).", "runtime")

    # ------------------------------------------------------------------ derived values

    @property
    def num_contexts(self) -> int:
        """Positive pairs per group (left + right contexts)."""
        return self.left_contexts + self.right_contexts

    @property
    def num_negative_pairs(self) -> int:
        """Negative pairs per group."""
        return self.negative_samples * (2 if self.sample_2x_neg else 1)

    @property
    def pairs_per_group(self) -> int:
        return self.num_contexts + self.num_negative_pairs

    @property
    def group_length(self) -> int:
        """Frames one group spans: the target, all its context windows and the largest gap on each side."""
        sides = (self.left_contexts > 0) + (self.right_contexts > 0)
        return self.window_length + self.num_contexts * self.window_neg_length + sides * self.context_gap

    # ------------------------------------------------------------------ validation

    def validate(self) -> "ContextConfig":
        """Check every value; raise :class:`ConfigError` naming the flag. Returns ``self``."""
        for f in fields(self):
            value = getattr(self, f.name)
            expected = _field_type(f)
            if expected is bool and not isinstance(value, bool):
                raise ConfigError(f"`{f.name}` must be a bool. Received: {f.name}={value!r}")
            if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"`{f.name}` must be an integer. Received: {f.name}={value!r}")
            if expected is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ConfigError(f"`{f.name}` must be a number. Received: {f.name}={value!r}")
            if expected is str and not isinstance(value, str):
                raise ConfigError(f"`{f.name}` must be a string. Received: {f.name}={value!r}")
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise ConfigError(
                    f"`{f.name}` must be one of {', '.join(choices)}. Received: {f.name}={value!r}"
                )
        positive = ("feat_size", "window_length", "window_neg_length", "embedding_size", "fc_size",
                    "rnn_hidden_cells", "batch_size", "steps_per_checkpoint", "steps_per_summary",
                    "keep_checkpoints", "validation_batches", "lr_decay_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"`{name}` must be >= 1. Received: {name}={getattr(self, name)}")
        non_negative = ("left_contexts", "right_contexts", "negative_samples", "context_gap", "minimum_speaker_length",
                        "num_highway_layers", "num_dnn_layers", "max_steps", "early_stopping_patience",
                        "lr_warmup_steps", "logical_cpu_devices", "num_threads", "l2_reg", "gradient_clipping")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(f"`{name}` must be >= 0. Received: {name}={getattr(self, name)}")
        if self.num_contexts < 1:
            raise ConfigError(
                "`left_contexts` + `right_contexts` must be >= 1 (a group needs a positive pair). "
                f"Received: left_contexts={self.left_contexts}, right_contexts={self.right_contexts}"
            )
        if self.negative_samples < 1:
            raise ConfigError(f"`negative_samples` must be >= 1. Received: negative_samples={self.negative_samples}")
        if not 0.0 < self.dropout_keep_prob <= 1.0:
            raise ConfigError(f"`dropout_keep_prob` must be in (0, 1]. Received: dropout_keep_prob={self.dropout_keep_prob}")
        if not 0.0 < self.batch_normalization_decay < 1.0:
            raise ConfigError(
                f"`batch_normalization_decay` must be in (0, 1). Received: batch_normalization_decay={self.batch_normalization_decay}"
            )
        if self.learn_rate <= 0:
            raise ConfigError(f"`learn_rate` must be > 0. Received: learn_rate={self.learn_rate}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(f"`validation_fraction` must be in [0, 1). Received: validation_fraction={self.validation_fraction}")
        if not 0.0 < self.lr_decay_rate <= 1.0:
            raise ConfigError(f"`lr_decay_rate` must be in (0, 1]. Received: lr_decay_rate={self.lr_decay_rate}")
        if self.lr_schedule == "cosine" and self.max_steps < 1:
            raise ConfigError("`lr_schedule`=cosine decays to 0 at `max_steps`, so `max_steps` must be >= 1. Received: max_steps=0")
        if self.lr_warmup_steps and self.lr_schedule != "cosine":
            raise ConfigError(
                f"`lr_warmup_steps` is only used by lr_schedule=cosine. Received: lr_schedule={self.lr_schedule}, "
                f"lr_warmup_steps={self.lr_warmup_steps}"
            )
        if self.end_to_end:
            raise ConfigError(
                "`end_to_end` (raw-waveform input) is not supported; compute Kaldi fbank features "
                "(`unspeech fbank`) and train on them with --noend_to_end. Received: end_to_end=True"
            )
        if self.tied_embeddings_transforms and self.window_length != self.window_neg_length:
            raise ConfigError(
                "`tied_embeddings_transforms` shares one trunk between both towers, so `window_length` must equal "
                f"`window_neg_length`. Received: window_length={self.window_length}, window_neg_length={self.window_neg_length}"
            )
        if self.unit_normalize and self.unit_normalize_var:
            raise ConfigError("`unit_normalize` and `unit_normalize_var` exclude each other (the latter adds a trainable scale); choose one.")
        return self

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "ContextConfig":
        """Build from a mapping; unknown keys are an error naming ``source``. Options that a saved
        config predates take the value that reproduces the old behaviour (``normalize_input=False``)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown option(s) {', '.join(unknown)}")
        return cls(**{**_LEGACY_VALUES, **values})

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The config as JSON text; also written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        if path is not None:
            from unspeech._fileutil import atomic_open

            with atomic_open(path) as fh:
                fh.write(text)
        return text

    @classmethod
    def from_json(cls, path_or_text: str | os.PathLike) -> "ContextConfig":
        """Read a config from a ``config.json`` path or from JSON text."""
        text = str(path_or_text)
        source = "config JSON"
        if not text.lstrip().startswith("{"):
            path = Path(path_or_text)
            if not path.is_file():
                raise ConfigError(f"no config file at {path}")
            text = path.read_text(encoding="utf-8")
            source = str(path)
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source} is not valid JSON: {exc}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{source} must hold a JSON object")
        return cls.from_dict(values, source)

    def run_name(self) -> str:
        """Parameter part of a run dir name, as in the original unspeech, e.g.
        ``feats_transVgg16big_nsampling_rnd_win64_neg_samples4_..._featinput_X.ark_dot_combine_tied_embs``."""
        t = self.embedding_transformation
        parts = [
            "e2e" if self.end_to_end else "feats",
            f"_trans{t}",
            "_nsampling" + ("_same_spk" if self.spk2utt else "_rnd"),
            f"_win{self.window_length}",
            f"_neg_samples{self.negative_samples}",
            f"_lcontexts{self.left_contexts}",
            f"_rcontexts{self.right_contexts}",
            f"_gap{self.context_gap}" if self.context_gap else "",
            f"_flts{self.feat_size}",
            f"_embsize{self.embedding_size}",
            f"_dnn{self.num_dnn_layers}" if t == "BaselineDnn" else "",
            f"_fc_size{self.fc_size}",
            "_unit_norm_var" if self.unit_normalize_var else "",
            "_unit_norm" if self.unit_normalize else "",
            f"_dropout_keep{self.dropout_keep_prob}",
            f"_batchnorm_bndecay{self.batch_normalization_decay}" if self.batch_normalization else "",
            f"_l2_reg{self.l2_reg}",
            f"_highwaydnn{self.num_highway_layers}" if t == "HighwayDnn" else "",
            f"_featinput_{_file_tag(self.filelist)}",
            "_dot_combine" if self.use_dot_combine else "",
            "_tied_embs" if self.tied_embeddings_transforms else "",
        ]
        return "".join(parts)

    def mismatches(self, other: "ContextConfig", kinds: Iterable[str] = ("model", "sampling")) -> list[str]:
        """``name: self_value != other_value`` for each field of the given kinds that differs."""
        kinds = set(kinds)
        out = []
        for f in fields(self):
            if f.metadata["kind"] in kinds and getattr(self, f.name) != getattr(other, f.name):
                out.append(f"{f.name}: {getattr(self, f.name)!r} != {getattr(other, f.name)!r}")
        return out


def _file_tag(filelist: str) -> str:
    """File name of the feature input, safe for a folder name."""
    name = Path(filelist.rstrip("| ").split(":", 1)[-1]).name or "input"
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)


def _field_type(f: dataclasses.Field) -> type:
    return {"bool": bool, "int": int, "float": float, "str": str}[f.type if isinstance(f.type, str) else f.type.__name__]


# ---------------------------------------------------------------------- command line

_TRUE = {"true", "t", "1", "yes", "y", "on"}
_FALSE = {"false", "f", "0", "no", "n", "off"}


def parse_bool(text: str) -> bool:
    """``"True"``/``"false"``/``"1"``/``"no"`` ... -> bool (argparse type of boolean flags)."""
    low = str(text).strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_config_arguments(parser: argparse.ArgumentParser, kinds: Iterable[str] | None = None) -> None:
    """Add one flag per :class:`ContextConfig` field (of the given ``kinds``; all by default).

    Defaults are NOT stored in the namespace (``argparse.SUPPRESS``): only flags the user gave
    appear there, so that :func:`config_from_args` can tell given values from defaults (a
    resumed run or an export checks given flags against ``config.json``). Each help text ends
    with the default. Also adds ``--additional_params``, a no-op marker kept from old scripts.
    """
    defaults = ContextConfig()
    wanted = set(kinds) if kinds is not None else None
    groups: dict[str, argparse._ArgumentGroup] = {}
    titles = {"data": "data", "sampling": "window sampling", "model": "model (fixed by a saved run)",
              "train": "training", "runtime": "run time"}
    for f in fields(ContextConfig):
        kind = f.metadata["kind"]
        if wanted is not None and kind not in wanted:
            continue
        group = groups.get(kind) or groups.setdefault(kind, parser.add_argument_group(titles[kind]))
        default = getattr(defaults, f.name)
        names = [f"--{f.name}", *f.metadata["aliases"]]
        help_text = f"{f.metadata['help']} (default: {default!r})"
        choices = f.metadata["choices"]
        if choices and not all(str(c) in f.metadata["help"] for c in choices):  # valid values, when the text lacks them
            help_text = f"{f.metadata['help']} One of: {', '.join(map(str, choices))}. (default: {default!r})"
        typ = _field_type(f)
        if typ is bool:
            group.add_argument(*names, dest=f.name, nargs="?", const=True, type=parse_bool,
                               default=argparse.SUPPRESS, metavar="BOOL", help=help_text)
            group.add_argument(*(f"--no{n[2:]}" for n in names), dest=f.name, action="store_const",
                               const=False, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        else:
            group.add_argument(*names, dest=f.name, type=typ, default=argparse.SUPPRESS,
                               choices=f.metadata["choices"], metavar=f.name.upper(), help=help_text)
    if "--additional_params" not in parser._option_string_actions:
        parser.add_argument("--additional_params", dest="_additional_params", nargs=0, action=_NoOp,
                            default=argparse.SUPPRESS,
                            help="Ignored marker (kept so that old scripts run unchanged).")


class _NoOp(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        return None


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`ContextConfig` values the user gave on the command line."""
    names = {f.name for f in fields(ContextConfig)}
    return {k: v for k, v in vars(args).items() if k in names}


def config_from_args(args: argparse.Namespace, base: ContextConfig | None = None) -> ContextConfig:
    """``base`` (defaults when None) with the flags given in ``args`` applied; validated."""
    base = base or ContextConfig()
    return dataclasses.replace(base, **given_options(args)).validate()
