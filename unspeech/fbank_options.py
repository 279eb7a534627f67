"""Kaldi ``compute-fbank-feats`` options: one dataclass, Kaldi config files, kaldi-native-fbank.

:class:`FbankOptions` holds every option of Kaldi's fbank computation under Kaldi's names (dashes
become underscores: ``--low-freq`` is ``low_freq``). It reads the option files Kaldi recipes keep in
``conf/fbank.conf`` (:meth:`FbankOptions.from_kaldi_config`), takes command-line overrides in the
same spelling (:meth:`FbankOptions.with_kaldi_options`), writes the effective options back as a
config file that Kaldi's own ``compute-fbank-feats --config=...`` accepts
(:meth:`FbankOptions.to_kaldi_config`), and converts to kaldi-native-fbank's options
(:meth:`FbankOptions.to_knf`).

Config file syntax (as Kaldi's option parser reads it): one ``--name=value`` per line; ``#`` starts
a comment; blank lines are skipped; ``--name`` alone sets a boolean to true; booleans are
``true``/``false`` (also ``t``/``f``/``1``/``0``, any case); ``_`` and ``-`` in names are the same.

Defaults are unspeech's, which differ from Kaldi's in two options: ``num_mel_bins`` is 40 (Kaldi:
23; the usual recipes' ``conf/fbank.conf`` set 40 or 80) and ``dither`` is 0 (Kaldi: 1.0, random
noise on the 16-bit scale), so the same audio always gives the same features. An option a config
file does not set keeps the default here; write ``--dither=1`` to get Kaldi's.

Options Kaldi accepts that do not change the features are accepted with a warning
(:data:`IGNORED_OPTIONS`); ``--vtln-warp``, ``--vtln-map``, ``--min-duration`` and ``--output-format``
are accepted only at the value that leaves the output unchanged (VTLN warping, dropping short
utterances and HTK output are not supported). Any other name is an error naming the file
(or flag) and the option.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from unspeech.errors import ConfigError

__all__ = ["FbankOptions", "WINDOW_TYPES", "IGNORED_OPTIONS"]

logger = logging.getLogger(__name__)

WINDOW_TYPES = ("hamming", "hanning", "povey", "rectangular", "sine", "blackman")
"""Kaldi's ``--window-type`` values."""

IGNORED_OPTIONS = {
    "verbose": "only sets Kaldi's log verbosity",
    "print-args": "only prints the command line",
    "debug-mel": "only prints the mel banks",
    "allow-downsample": "unspeech always resamples audio to --sample-frequency",
    "allow-upsample": "unspeech always resamples audio to --sample-frequency",
    "max-feature-vectors": "only bounds the memory of online feature extraction",
    "write-utt2dur": "unspeech writes utt2dur itself",
    "utt2spk": "only used with --vtln-map",
}
"""Kaldi options that do not change fbank output: accepted from config files with a warning."""

# Options that change the output and are accepted only at their neutral value.
_NEUTRAL_ONLY = {"vtln-warp": 1.0, "vtln-map": "", "min-duration": 0.0, "output-format": "kaldi"}

_TRUE = ("true", "t", "1", "")
_FALSE = ("false", "f", "0")


def _opt(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class FbankOptions:
    """Options of Kaldi's ``compute-fbank-feats`` (frame, mel bank, fbank and program options).

    Units: frequencies in Hz, frame length and shift in ms; ``dither`` on the 16-bit integer
    sample scale. ``num_mel_bins`` is the feature dimension (plus one with ``use_energy``).
    """

    sample_frequency: float = _opt(16000.0, "sample rate (Hz) features are computed at; audio is resampled to it")
    frame_length: float = _opt(25.0, "frame length (ms)")
    frame_shift: float = _opt(10.0, "frame shift (ms)")
    dither: float = _opt(0.0, "dither on the 16-bit scale; 0 = reproducible (unspeech default; Kaldi's is 1.0)")
    preemphasis_coefficient: float = _opt(0.97, "pre-emphasis coefficient")
    remove_dc_offset: bool = _opt(True, "subtract the mean of each frame")
    window_type: str = _opt("povey", "window: " + ", ".join(WINDOW_TYPES))
    round_to_power_of_two: bool = _opt(True, "pad frames to a power of two for the FFT")
    blackman_coeff: float = _opt(0.42, "constant of the blackman window")
    snip_edges: bool = _opt(True, "true: only frames that fit completely; false: frames centred every shift")
    num_mel_bins: int = _opt(40, "number of mel bins (the feature dimension; Kaldi's default is 23)")
    low_freq: float = _opt(20.0, "low cut-off of the mel banks (Hz)")
    high_freq: float = _opt(0.0, "high cut-off of the mel banks (Hz); <= 0 is an offset from Nyquist")
    vtln_low: float = _opt(100.0, "VTLN lower cut-off (Hz); only used with --vtln-warp != 1")
    vtln_high: float = _opt(-500.0, "VTLN upper cut-off (Hz); only used with --vtln-warp != 1")
    use_energy: bool = _opt(False, "add the log energy as an extra first column")
    energy_floor: float = _opt(0.0, "floor on the energy (absolute, not relative); 0 = none")
    raw_energy: bool = _opt(True, "compute the energy before pre-emphasis and windowing")
    htk_compat: bool = _opt(False, "put the energy last (HTK order)")
    use_log_fbank: bool = _opt(True, "log mel energies (false: linear)")
    use_power: bool = _opt(True, "power spectrum (false: magnitude)")
    subtract_mean: bool = _opt(False, "subtract the mean of each feature over the utterance")
    channel: int = _opt(-1, "channel of multi-channel audio (0 = left, 1 = right); -1: mono as it is, "
                        "channel 0 of multi-channel audio with a warning (Kaldi's rule)")

    def __post_init__(self) -> None:
        self._check()

    # ------------------------------------------------------------------ validation

    def _check(self) -> None:
        def bad(name: str, rule: str) -> ConfigError:
            value = getattr(self, name)
            return ConfigError(f"--{_kaldi_name(name)} {rule}. Received: --{_kaldi_name(name)}={_format(value)}")

        if self.window_type not in WINDOW_TYPES:
            raise bad("window_type", f"must be one of {', '.join(WINDOW_TYPES)}")
        if not self.sample_frequency > 0 or float(self.sample_frequency) != int(self.sample_frequency):
            raise bad("sample_frequency", "must be a positive whole number of Hz")
        for name in ("frame_length", "frame_shift"):
            if self.sample_frequency * getattr(self, name) / 1000.0 < 1:
                raise bad(name, f"must be at least one sample long at {_format(self.sample_frequency)} Hz")
        if self.num_mel_bins < 3:
            raise bad("num_mel_bins", "must be >= 3 (Kaldi's minimum)")
        if self.dither < 0:
            raise bad("dither", "must be >= 0")
        if not 0.0 <= self.preemphasis_coefficient <= 1.0:
            raise bad("preemphasis_coefficient", "must lie in [0, 1]")
        if self.energy_floor < 0:
            raise bad("energy_floor", "must be >= 0")
        if self.channel < -1:
            raise bad("channel", "must be -1 (Kaldi's default) or a channel index >= 0")
        nyquist = 0.5 * self.sample_frequency
        high = self.high_freq if self.high_freq > 0 else nyquist + self.high_freq
        if not (0.0 <= self.low_freq < nyquist and 0.0 < high <= nyquist and self.low_freq < high):
            raise ConfigError(
                f"--low-freq={_format(self.low_freq)} and --high-freq={_format(self.high_freq)} do not give a "
                f"band inside 0..{_format(nyquist)} Hz (Nyquist at --sample-frequency="
                f"{_format(self.sample_frequency)}); --high-freq <= 0 counts down from Nyquist"
            )

    # ------------------------------------------------------------------ Kaldi spelling

    @classmethod
    def from_kaldi_config(cls, path: str | os.PathLike, base: "FbankOptions | None" = None,
                          overrides: Mapping[str, str] | None = None,
                          overrides_source: str = "command line") -> "FbankOptions":
        """Read a Kaldi option file (``conf/fbank.conf``) on top of ``base`` (the defaults).

        ``overrides`` (``{kaldi-name: value-string}``, e.g. flags given next to ``--config``) win
        over the file, as on Kaldi's command line; the result is checked once, after both.
        Raises :class:`ConfigError` naming the file (and line) for a missing file, a line that is
        not ``--name=value``, an unknown option or a bad value.
        """
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except FileNotFoundError:
            raise ConfigError(f"fbank config {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read fbank config {path}: {exc}") from None
        pairs = []
        for lineno, line in enumerate(lines, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            if not text.startswith("--") or len(text) == 2:
                raise ConfigError(f"{path}:{lineno}: expected '--name=value', got {line.strip()!r}")
            name, _, value = text[2:].partition("=")
            pairs.append((f"{path}:{lineno}", name.strip(), value.strip()))
        pairs += [(overrides_source, str(name).lstrip("-"), str(value)) for name, value in (overrides or {}).items()]
        return (base or cls())._apply(pairs)

    def with_kaldi_options(self, options: Mapping[str, str] | Iterable[tuple[str, str]],
                           source: str = "command line") -> "FbankOptions":
        """A copy with ``{kaldi-name: value-string}`` applied (e.g. flags given on a command line).

        ``source`` names where the options come from in error messages.
        """
        items = options.items() if isinstance(options, Mapping) else options
        return self._apply([(source, str(name).lstrip("-"), str(value)) for name, value in items])

    def _apply(self, pairs: list[tuple[str, str, str]]) -> "FbankOptions":
        fields = {f.name: f for f in dataclasses.fields(self)}
        changes: dict = {}
        for where, raw_name, value in pairs:
            name = raw_name.replace("_", "-")
            attr = name.replace("-", "_")
            if attr in fields:
                changes[attr] = _parse_value(fields[attr].type, value, f"{where}: --{name}")
            elif name in IGNORED_OPTIONS:
                logger.warning("%s: --%s ignored (%s)", where, name, IGNORED_OPTIONS[name])
            elif name in _NEUTRAL_ONLY:
                neutral = _NEUTRAL_ONLY[name]
                parsed = value if isinstance(neutral, str) else _parse_value("float", value, f"{where}: --{name}")
                if parsed != neutral:
                    raise ConfigError(f"{where}: --{name}={value} is not supported by unspeech "
                                      f"(only --{name}={_format(neutral)})")
            else:
                raise ConfigError(f"{where}: unknown fbank option --{name} (known: "
                                  f"{', '.join('--' + _kaldi_name(n) for n in fields)})")
        try:
            return dataclasses.replace(self, **changes)
        except ConfigError as exc:
            origin = sorted({w.rsplit(":", 1)[0] if w[-1:].isdigit() else w for w, _, _ in pairs})
            raise ConfigError(f"{', '.join(origin)}: {exc}") from None

    def to_kaldi_config(self) -> str:
        """Every option as ``--name=value`` lines, readable by Kaldi's ``compute-fbank-feats --config``."""
        return "".join(f"--{_kaldi_name(f.name)}={_format(getattr(self, f.name))}\n"
                       for f in dataclasses.fields(self))

    def to_knf(self):
        """The equivalent ``kaldi_native_fbank.FbankOptions`` (``subtract_mean`` and ``channel``
        are applied by :func:`unspeech.fbank.compute_fbank` and the audio reader)."""
        import kaldi_native_fbank as knf

        opts = knf.FbankOptions()
        frame = opts.frame_opts
        frame.samp_freq = float(self.sample_frequency)
        frame.frame_length_ms = float(self.frame_length)
        frame.frame_shift_ms = float(self.frame_shift)
        frame.dither = float(self.dither)
        frame.preemph_coeff = float(self.preemphasis_coefficient)
        frame.remove_dc_offset = bool(self.remove_dc_offset)
        frame.window_type = self.window_type
        frame.round_to_power_of_two = bool(self.round_to_power_of_two)
        frame.blackman_coeff = float(self.blackman_coeff)
        frame.snip_edges = bool(self.snip_edges)
        mel = opts.mel_opts
        mel.num_bins = int(self.num_mel_bins)
        mel.low_freq = float(self.low_freq)
        mel.high_freq = float(self.high_freq)
        mel.vtln_low = float(self.vtln_low)
        mel.vtln_high = float(self.vtln_high)
        opts.use_energy = bool(self.use_energy)
        opts.energy_floor = float(self.energy_floor)
        opts.raw_energy = bool(self.raw_energy)
        opts.htk_compat = bool(self.htk_compat)
        opts.use_log_fbank = bool(self.use_log_fbank)
        opts.use_power = bool(self.use_power)
        return opts

    @property
    def dim(self) -> int:
        """Feature dimension: ``num_mel_bins`` (+ 1 with ``use_energy``)."""
        return self.num_mel_bins + int(self.use_energy)

    def num_frames(self, num_samples: int) -> int:
        """Frames Kaldi produces for ``num_samples`` samples at ``sample_frequency``."""
        length = int(self.sample_frequency * 0.001 * self.frame_length)
        shift = int(self.sample_frequency * 0.001 * self.frame_shift)
        if self.snip_edges:
            return 0 if num_samples < length else 1 + (num_samples - length) // shift
        return (num_samples + shift // 2) // shift

    @staticmethod
    def option_names() -> list[str]:
        """Kaldi names of the options (``sample-frequency``, ``frame-length``, ...), in field order."""
        return [_kaldi_name(f.name) for f in dataclasses.fields(FbankOptions)]

    @staticmethod
    def option_type(kaldi_name: str) -> str:
        """``"bool"``, ``"int"``, ``"float"`` or ``"str"``: how the option's value is written."""
        return {x.name: x for x in dataclasses.fields(FbankOptions)}[kaldi_name.replace("-", "_")].type

    @staticmethod
    def option_help(kaldi_name: str) -> str:
        """One-line help of an option, with its default."""
        f = {x.name: x for x in dataclasses.fields(FbankOptions)}[kaldi_name.replace("-", "_")]
        return f"{f.metadata['help']} (default {_format(f.default)})"


def _kaldi_name(attr: str) -> str:
    return attr.replace("_", "-")


def _format(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, ".10g")
    return str(value)


def _parse_value(kind: str, value: str, where: str):
    if kind == "bool":
        low = value.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if kind == "str":
        return value
    try:
        return int(value) if kind == "int" else float(value)
    except ValueError:
        raise ConfigError(f"{where}: expected {'an integer' if kind == 'int' else 'a number'}, got {value!r}") from None
