"""Synthetic multi-speaker corpora with exact ground truth, made from Debian's TTS engines.

Speakers are text-to-speech voices made distinct: each draws an engine and voice (espeak-ng
accents and variants such as ``en-gb-scotland+m3`` or ``de+f2``, flite's ``kal16 awb rms slt``,
festival's diphone voices), espeak-ng pitch (``-p``) and rate (``-s``), and ``sox`` effects
that stay with the speaker: pitch shift, bass and treble shelving (a crude formant/timbre
change) and tempo. Every utterance then passes a channel of its own: a peaking equalizer,
optional reverb and additive coloured noise at a drawn signal-to-noise ratio.

Two products:

* :func:`synthesize_utterances` — a Kaldi data dir: ``wav/<utt>.flac``, ``wav.scp``, ``utt2spk``,
  ``spk2utt``, ``text``, ``utt2dur`` and ``synth.json`` (every speaker's settings). Utterance ids
  are ``<speaker>-<nnn>``, i.e. prefixed by the speaker id as Kaldi expects.
* :func:`synthesize_conversations` — recordings of 2–6 speakers taking turns with pauses and
  optional overlap: ``wav/<conv>.flac``, ``wav.scp``, reference ``rttm``, ``uem``, and the turns as
  a Kaldi data dir (``segments``, ``utt2spk``, ``spk2utt``, ``text``), ``reco2num_spk``, ``synth.json``.

Determinism: every random choice comes from one ``numpy.random.Generator(seed)`` and is made
before any audio is rendered; the engines and sox (run with ``-R``) are deterministic, so the
same seed, the same installed voices and the same tool versions give byte-identical files,
whatever ``nj`` is. Speaker profiles are drawn first, so both products made with the same seed
and ``num_speakers`` share their speakers (``spk007`` sounds the same in both).

Audio is 16 kHz, mono, 16-bit, in ``<out_dir>/wav/<id>.flac``. ``wav.scp`` lists it as Kaldi
reads it: ``<id> sox /abs/out_dir/wav/<id>.flac -t wav -b 16 - |`` (absolute paths, a decoding
pipe, as Kaldi recipes write for compressed audio); ``absolute_paths=False`` keeps ``out_dir`` as
given (a relocatable folder, used from the directory it was made in) and ``plain_audio_paths=True``
plain flac paths for tools that read flac themselves. ``utt2dur``/``reco2dur`` are in seconds.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from unspeech.audio import TARGET_RATE, write_audio
from unspeech.errors import AudioError, ConfigError

__all__ = [
    "ENGINES",
    "SpeakerProfile",
    "ChannelProfile",
    "SynthSummary",
    "available_engines",
    "coloured_noise",
    "make_sentence",
    "draw_speakers",
    "synthesize_utterances",
    "synthesize_conversations",
]

ENGINES = ("espeak-ng", "flite", "festival")
"""Supported TTS engines (binaries ``espeak-ng``, ``flite``, ``text2wave``)."""

_ENGINE_BINARY = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}
_ENGINE_WEIGHT = {"espeak-ng": 0.6, "flite": 0.3, "festival": 0.1}
_ESPEAK_LANGS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
                 "en-gb-x-gbcwmd", "en-029", "de", "fr-fr", "es", "it", "nl", "pt-br", "sv", "pl")
_ESPEAK_VARIANTS = tuple(f"m{i}" for i in range(1, 8)) + tuple(f"f{i}" for i in range(1, 6))
_FLITE_VOICES = ("kal16", "awb", "rms", "slt", "kal")
_FESTIVAL_VOICE_DIR = "/usr/share/festival/voices"

# --------------------------------------------------------------------------- sentences

_WORDS = {
    "det": "the a this that every one my your our their some".split(),
    "adj": ("small big red green quiet bright old young happy cold warm tall short dark clever "
            "gentle heavy simple strange yellow").split(),
    "noun": ("dog cat house river garden teacher window table city mountain bird letter "
             "train doctor apple forest boat chair student music paper road farmer kitchen").split(),
    "verb_t": "sees finds takes moves paints carries opens builds likes needs watches cleans".split(),
    "verb_i": "runs sleeps waits sings falls laughs arrives works swims listens".split(),
    "prep": "near under behind over beside through around after before".split(),
    "adv": "quickly slowly today again quietly soon often always never early".split(),
    "name": "anna peter maria john lucy david emma paul sara tom nina oscar".split(),
}
_TEMPLATES = (
    "det adj noun verb_t det noun",
    "name verb_i prep det noun",
    "det noun verb_i adv",
    "name verb_t det adj noun adv",
    "det adj noun verb_i prep det adj noun",
    "name and name verb_i adv",
    "adv det noun verb_t name",
)


def make_sentence(rng: np.random.Generator) -> str:
    """A short (4–8 word) lower-case English sentence from built-in word lists."""
    template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
    words = [w if w not in _WORDS else _WORDS[w][int(rng.integers(len(_WORDS[w])))]
             for w in template.split()]
    return " ".join(words)


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class SpeakerProfile:
    """Everything that makes a synthetic speaker sound like itself."""

    speaker_id: str
    engine: str
    voice: str
    pitch: int          # espeak-ng -p (0..99); unused by flite/festival
    words_per_minute: int  # espeak-ng -s; unused by flite/festival
    pitch_cents: float  # sox pitch
    bass_db: float      # sox bass (low shelf)
    treble_db: float    # sox treble (high shelf)
    tempo: float        # sox tempo -s


@dataclass(frozen=True)
class ChannelProfile:
    """One recording channel: equalizer, reverb, coloured noise at an SNR, output level."""

    eq_freq: float      # Hz, peaking equalizer centre
    eq_q: float
    eq_gain_db: float
    reverb: float       # sox reverberance 0..100; 0 = no reverb
    snr_db: float       # speech-to-noise power ratio; inf = no noise
    noise_color: float  # one-pole low-pass coefficient of the noise (0 white .. 0.95 dark)
    peak: float         # output peak amplitude
    noise_seed: int


@dataclass(frozen=True)
class SynthSummary:
    """What a synthesize_* call wrote."""

    out_dir: str
    num_speakers: int
    num_utterances: int
    num_recordings: int
    seconds: float


def available_engines() -> dict[str, tuple[str, ...]]:
    """Installed engines and their voices, in a fixed order: ``{engine: (voice, ...)}``."""
    found: dict[str, tuple[str, ...]] = {}
    if shutil.which("espeak-ng"):
        found["espeak-ng"] = tuple(f"{lang}+{var}" for lang in _ESPEAK_LANGS for var in _ESPEAK_VARIANTS)
    if shutil.which("flite"):
        listed = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout.split()
        voices = tuple(v for v in _FLITE_VOICES if v in listed)
        if voices:
            found["flite"] = voices
    if shutil.which("text2wave"):
        # Debian layout: /usr/share/festival/voices/<language>/<voice>/festvox/<voice>.scm
        voices = tuple(sorted({Path(d).parent.name for d in glob.glob(f"{_FESTIVAL_VOICE_DIR}/*/*/festvox")}))
        if voices:
            found["festival"] = voices
    return found


def _resolve_engines(engines: Iterable[str] | None) -> dict[str, tuple[str, ...]]:
    wanted = None if engines is None else list(engines)
    for name in wanted or ():
        if name not in ENGINES:
            raise ConfigError(f"unknown TTS engine {name!r}; choose from {', '.join(ENGINES)}")
    if shutil.which("sox") is None:
        raise ConfigError("`sox` is required for speech synthesis but was not found on PATH")
    installed = available_engines()
    for name in wanted or ():
        if name not in installed:
            raise ConfigError(f"TTS engine {name!r} is not installed (binary "
                              f"`{_ENGINE_BINARY[name]}` not found or without voices)")
    chosen = installed if wanted is None else {n: installed[n] for n in ENGINES if n in wanted}
    if not chosen:
        raise ConfigError("no TTS engine found: install espeak-ng, flite or festival")
    return chosen


def draw_speakers(rng: np.random.Generator, num_speakers: int,
                  engines: dict[str, tuple[str, ...]]) -> list[SpeakerProfile]:
    """Draw ``num_speakers`` distinct-sounding profiles (ids ``spk000``, ``spk001``, ...)."""
    names = list(engines)
    weights = np.array([_ENGINE_WEIGHT[n] for n in names])
    unused = {n: list(rng.permutation(len(engines[n]))) for n in names}
    speakers = []
    for i in range(num_speakers):
        engine = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        if not unused[engine]:
            unused[engine] = list(rng.permutation(len(engines[engine])))
        voice = engines[engine][int(unused[engine].pop())]
        speakers.append(SpeakerProfile(
            speaker_id=f"spk{i:03d}", engine=engine, voice=voice,
            pitch=int(rng.integers(25, 76)), words_per_minute=int(rng.integers(140, 186)),
            pitch_cents=round(float(rng.uniform(-250, 250)), 1),
            bass_db=round(float(rng.uniform(-6, 6)), 1), treble_db=round(float(rng.uniform(-6, 6)), 1),
            tempo=round(float(rng.uniform(0.88, 1.12)), 3),
        ))
    return speakers


def _draw_channel(rng: np.random.Generator, snr_db: tuple[float, float]) -> ChannelProfile:
    return ChannelProfile(
        eq_freq=round(float(rng.uniform(300, 4000)), 1), eq_q=round(float(rng.uniform(0.5, 2.0)), 2),
        eq_gain_db=round(float(rng.uniform(-8, 8)), 1),
        reverb=round(float(rng.uniform(10, 60)), 1) if rng.random() < 0.5 else 0.0,
        snr_db=round(float(rng.uniform(*snr_db)), 1), noise_color=round(float(rng.uniform(0, 0.95)), 3),
        peak=round(float(10 ** (rng.uniform(-6, -1) / 20)), 4), noise_seed=int(rng.integers(2**31)),
    )


# --------------------------------------------------------------------------- rendering


def _run(cmd: Sequence[str], what: str, stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(list(cmd), input=stdin, capture_output=True)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()[-300:]
        raise AudioError(f"{what}: `{' '.join(cmd[:3])} ...` failed ({proc.returncode}): {err}")
    return proc.stdout


def _tts(speaker: SpeakerProfile, text: str, workdir: str) -> str:
    """Speak ``text`` with the speaker's engine into a wav file in ``workdir``; returns its path."""
    wav = os.path.join(workdir, "tts.wav")
    if speaker.engine == "espeak-ng":
        cmd = ["espeak-ng", "-v", speaker.voice, "-p", str(speaker.pitch),
               "-s", str(speaker.words_per_minute), "-w", wav, text]
    elif speaker.engine == "flite":
        cmd = ["flite", "-voice", speaker.voice, "-t", text, "-o", wav]
    else:
        txt = os.path.join(workdir, "text.txt")
        Path(txt).write_text(text + "\n", encoding="utf-8")
        cmd = ["text2wave", "-o", wav, "-eval", f"(voice_{speaker.voice})", txt]
    _run(cmd, f"{speaker.engine} voice {speaker.voice}")
    return wav


def _sox_effects(speaker: SpeakerProfile | None, channel: ChannelProfile | None) -> list[str]:
    """sox effects: the speaker's voice changes, conversion to 16 kHz, then the channel."""
    fx: list[str] = []
    if speaker is not None:
        fx += ["pitch", f"{speaker.pitch_cents:.1f}", "bass", f"{speaker.bass_db:.1f}",
               "treble", f"{speaker.treble_db:.1f}", "tempo", "-s", f"{speaker.tempo:.3f}"]
    fx += ["rate", "-h", str(TARGET_RATE)]
    if channel is not None:
        fx += ["equalizer", f"{channel.eq_freq:.1f}", f"{channel.eq_q:.2f}q", f"{channel.eq_gain_db:.1f}"]
        if channel.reverb > 0:
            fx += ["reverb", f"{channel.reverb:.1f}"]
    return fx


_RAW_OUT = ["-L", "-t", "f32", "-c", "1", "-"]


def _sox_file(path: str, effects: list[str]) -> np.ndarray:
    out = _run(["sox", "-R", "-V1", path, *_RAW_OUT, *effects], "sox")
    return np.frombuffer(out, dtype="<f4").astype(np.float32)


def _sox_array(samples: np.ndarray, effects: list[str]) -> np.ndarray:
    raw_in = ["-L", "-t", "f32", "-r", str(TARGET_RATE), "-c", "1", "-"]
    out = _run(["sox", "-R", "-V1", *raw_in, *_RAW_OUT, *effects], "sox",
               stdin=np.asarray(samples, dtype="<f4").tobytes())
    return np.frombuffer(out, dtype="<f4").astype(np.float32)


def _trim_silence(x: np.ndarray, threshold_db: float = -40.0, pad_s: float = 0.03) -> np.ndarray:
    """Cut leading/trailing frames quieter than ``threshold_db`` below the loudest 10 ms frame."""
    hop = TARGET_RATE // 100
    n = len(x) // hop
    if n == 0:
        return x
    rms = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1))
    active = np.flatnonzero(rms > rms.max() * 10 ** (threshold_db / 20))
    if active.size == 0:
        return x
    pad = int(pad_s * TARGET_RATE)
    return x[max(0, active[0] * hop - pad): min(len(x), (active[-1] + 1) * hop + pad)]


def coloured_noise(white: np.ndarray, colour: float) -> np.ndarray:
    """White noise ``(n,)`` shaped by a one-pole low-pass ``|1 / (1 - colour e^{-jw})|`` in the frequency
    domain: ``colour`` 0 keeps it white, towards 1 it turns brown (energy at low frequencies)."""
    spectrum = np.fft.rfft(white)
    w = np.linspace(0.0, np.pi, len(spectrum))
    spectrum /= np.abs(1.0 - colour * np.exp(-1j * w))
    return np.fft.irfft(spectrum, n=len(white))


def _apply_noise_and_level(x: np.ndarray, channel: ChannelProfile) -> np.ndarray:
    """Add coloured Gaussian noise at ``channel.snr_db`` and scale to ``channel.peak``."""
    x = x.astype(np.float64)
    if np.isfinite(channel.snr_db):
        rng = np.random.default_rng(channel.noise_seed)
        noise = coloured_noise(rng.standard_normal(len(x)), channel.noise_color)
        p_speech = float(np.mean(x**2))
        p_noise = float(np.mean(noise**2)) or 1.0
        x = x + noise * np.sqrt(p_speech / p_noise / 10 ** (channel.snr_db / 10))
    peak = float(np.max(np.abs(x))) or 1.0
    return (x * (channel.peak / peak)).astype(np.float32)


def _render_turn(speaker: SpeakerProfile, text: str, channel: ChannelProfile | None) -> np.ndarray:
    """TTS + speaker effects (+ channel) → trimmed 16 kHz float32 audio of one utterance."""
    with tempfile.TemporaryDirectory(prefix="unspeech-synth-") as workdir:
        wav = _tts(speaker, text, workdir)
        x = _sox_file(wav, _sox_effects(speaker, channel))
    x = _trim_silence(x)
    if x.size < TARGET_RATE // 10:
        raise AudioError(f"{speaker.engine} voice {speaker.voice} produced almost no audio for {text!r}")
    return _apply_noise_and_level(x, channel) if channel is not None else x


def _apply_channel(mix: np.ndarray, channel: ChannelProfile | None) -> np.ndarray:
    """A conversation's channel (EQ, reverb, noise, level) on its mix; ``None``: peak 0.5, nothing else."""
    if channel is None:
        return mix * np.float32(0.5 / max(float(np.max(np.abs(mix))), 1e-9))
    wet = _sox_array(mix, _sox_effects(None, channel))[: len(mix)]
    return _apply_noise_and_level(np.pad(wet, (0, len(mix) - len(wet))), channel)


def _write_conversation_tables(out: Path, wav_scp: dict, rttm: list, uem: dict, segments: dict,
                               utt2spk: dict, num_spk: dict, plain_audio_paths: bool = False,
                               absolute_paths: bool = True) -> None:
    """``wav.scp``, ``rttm``, ``uem``, ``segments``, ``utt2spk``, ``spk2utt``, ``reco2num_spk``,
    ``reco2dur`` and ``utt2dur`` (seconds) of conversations; every conversation's UEM is the whole
    recording, so its end is the recording's duration."""
    from unspeech import datadir

    datadir.write_wav_scp(out / "wav.scp", datadir.kaldi_wav_scp(wav_scp, plain_paths=plain_audio_paths,
                                                                 absolute=absolute_paths))
    datadir.write_table(out / "reco2dur", {conv: f"{max(end for _, end in spans):.3f}" for conv, spans in uem.items()})
    # from the times as the segments file holds them (3 decimals), as Kaldi's get_utt2dur.sh computes it
    datadir.write_table(out / "utt2dur", {utt: f"{round(seg.end, 3) - round(seg.start, 3):.3f}"
                                          for utt, seg in segments.items()})
    datadir.write_rttm(out / "rttm", rttm)
    datadir.write_uem(out / "uem", uem)
    datadir.write_segments(out / "segments", segments)
    datadir.write_utt2spk(out / "utt2spk", utt2spk)
    datadir.write_spk2utt(out / "spk2utt", datadir.utt2spk_to_spk2utt(utt2spk))
    datadir.write_table(out / "reco2num_spk", num_spk)


def _parallel_map(func: Callable, jobs: list, nj: int, progress: Callable[[int, int], None] | None):
    """Ordered map over threads (the work runs in TTS/sox subprocesses)."""
    if nj < 1:
        raise ConfigError(f"`nj` must be >= 1. Received: nj={nj}")
    results = []
    with ThreadPoolExecutor(max_workers=nj) as pool:
        for i, result in enumerate(pool.map(func, jobs)):
            results.append(result)
            if progress is not None:
                progress(i + 1, len(jobs))
    return results


def _write_meta(out: Path, seed: int, engines: dict, speakers: list[SpeakerProfile], **extra) -> None:
    from unspeech._fileutil import atomic_open

    meta = {"seed": seed, "engines": {k: list(v) for k, v in engines.items()}, **extra,
            "speakers": [asdict(s) for s in speakers]}
    with atomic_open(out / "synth.json") as fh:
        json.dump(meta, fh, indent=1)
        fh.write("\n")


def _check_range(name: str, lo: float, hi: float) -> None:
    if lo > hi:
        raise ConfigError(f"`{name}` must be (low, high) with low <= high. Received: {name}=({lo}, {hi})")


def _audio_path(out: Path, key: str, audio_format: str) -> str:
    if audio_format not in ("flac", "wav"):
        raise ConfigError(f"`audio_format` must be 'flac' or 'wav'. Received: audio_format={audio_format!r}")
    return os.path.join(str(out), "wav", f"{key}.{audio_format}")


# --------------------------------------------------------------------------- products


def synthesize_utterances(
    out_dir: str | os.PathLike,
    num_speakers: int = 6,
    utts_per_speaker: int = 4,
    seed: int = 0,
    nj: int = 1,
    engines: Iterable[str] | None = None,
    audio_format: str = "flac",
    snr_db: tuple[float, float] = (15.0, 30.0),
    channel_variation: bool = True,
    progress: Callable[[int, int], None] | None = None,
    plain_audio_paths: bool = False,
    absolute_paths: bool = True,
) -> SynthSummary:
    """Write a Kaldi data dir of ``num_speakers × utts_per_speaker`` synthetic utterances.

    Parameters
    ----------
    out_dir : path of the data dir (created)
    num_speakers, utts_per_speaker : int
    seed : int; all random choices (voices, effects, texts, channels) follow from it
    nj : int, parallel synthesis jobs
    engines : subset of :data:`ENGINES`; default every installed engine
    audio_format : ``"flac"`` or ``"wav"``
    snr_db : (low, high) range the per-utterance SNR is drawn from
    channel_variation : bool; False gives clean audio (speaker effects only)
    progress : callable ``(completed, total)``, optional
    plain_audio_paths, absolute_paths : bool; how ``wav.scp`` names the audio (see
        :func:`unspeech.datadir.kaldi_wav_entry`): by default flac files appear as ``sox FILE -t wav
        -b 16 - |`` pipes Kaldi can read, with absolute paths

    Returns
    -------
    SynthSummary
    """
    from unspeech import datadir

    if num_speakers < 1 or utts_per_speaker < 1:
        raise ConfigError(f"`num_speakers` and `utts_per_speaker` must be >= 1. Received: "
                          f"num_speakers={num_speakers}, utts_per_speaker={utts_per_speaker}")
    _check_range("snr_db", *snr_db)
    chosen = _resolve_engines(engines)
    rng = np.random.default_rng(seed)
    speakers = draw_speakers(rng, num_speakers, chosen)
    out = Path(out_dir)
    jobs = []
    for spk in speakers:
        for j in range(utts_per_speaker):
            utt = f"{spk.speaker_id}-{j:03d}"
            channel = _draw_channel(rng, snr_db) if channel_variation else None
            jobs.append((utt, spk, make_sentence(rng), channel))
    _audio_path(out, "x", audio_format)
    (out / "wav").mkdir(parents=True, exist_ok=True)

    def _make(job) -> float:
        utt, spk, text, channel = job
        x = _render_turn(spk, text, channel)
        write_audio(_audio_path(out, utt, audio_format), x)
        return len(x) / TARGET_RATE

    durations = _parallel_map(_make, jobs, nj, progress)
    utt2spk = {utt: spk.speaker_id for utt, spk, _, _ in jobs}
    datadir.write_wav_scp(out / "wav.scp", datadir.kaldi_wav_scp(
        {utt: _audio_path(out, utt, audio_format) for utt in utt2spk}, plain_paths=plain_audio_paths,
        absolute=absolute_paths))
    datadir.write_utt2spk(out / "utt2spk", utt2spk)
    datadir.write_spk2utt(out / "spk2utt", datadir.utt2spk_to_spk2utt(utt2spk))
    datadir.write_text(out / "text", {utt: text for utt, _, text, _ in jobs})
    datadir.write_table(out / "utt2dur", {job[0]: f"{d:.3f}" for job, d in zip(jobs, durations)})
    datadir.write_table(out / "reco2dur", {job[0]: f"{d:.3f}" for job, d in zip(jobs, durations)})
    _write_meta(out, seed, chosen, speakers, product="utterances", utts_per_speaker=utts_per_speaker)
    return SynthSummary(str(out), num_speakers, len(jobs), len(jobs), float(sum(durations)))


def synthesize_conversations(
    out_dir: str | os.PathLike,
    num_conversations: int = 3,
    num_speakers: int = 8,
    speakers_per_conversation: tuple[int, int] = (2, 4),
    turns_per_conversation: int = 10,
    overlap_prob: float = 0.15,
    pause_s: tuple[float, float] = (0.2, 1.0),
    seed: int = 0,
    nj: int = 1,
    engines: Iterable[str] | None = None,
    snr_db: tuple[float, float] = (15.0, 30.0),
    channel_variation: bool = True,
    progress: Callable[[int, int], None] | None = None,
    plain_audio_paths: bool = False,
    absolute_paths: bool = True,
) -> SynthSummary:
    """Write conversations (flac), their reference RTTM and UEM, and the turns as a Kaldi data dir.

    Each conversation draws ``k`` speakers (``speakers_per_conversation`` range, 2..6) out of a
    pool of ``num_speakers`` profiles; the first ``k`` turns give every speaker the floor once, then
    each turn goes to a speaker other than the previous one. A turn is one sentence; it starts
    after a pause drawn from ``pause_s`` or, with probability ``overlap_prob``, overlaps the end
    of the speech so far by 0.2 s to half of the previous turn (at most 1 s). Each conversation has
    one channel (equalizer, reverb, noise); RTTM turns are the exact placed speech spans.
    ``plain_audio_paths`` / ``absolute_paths``: see :func:`synthesize_utterances`.

    Returns
    -------
    SynthSummary (``num_utterances`` counts turns)
    """
    from unspeech import datadir

    lo, hi = speakers_per_conversation
    _check_range("speakers_per_conversation", lo, hi)
    _check_range("pause_s", *pause_s)
    _check_range("snr_db", *snr_db)
    if lo < 2 or hi > 6:
        raise ConfigError(f"`speakers_per_conversation` must lie within 2..6. Received: ({lo}, {hi})")
    if hi > num_speakers:
        raise ConfigError(f"`num_speakers` ({num_speakers}) must be at least the largest number of "
                          f"speakers per conversation ({hi})")
    if num_conversations < 1 or turns_per_conversation < hi:
        raise ConfigError(f"need num_conversations >= 1 and turns_per_conversation >= {hi} (every "
                          f"speaker speaks). Received: {num_conversations}, {turns_per_conversation}")
    if not 0.0 <= overlap_prob <= 1.0:
        raise ConfigError(f"`overlap_prob` must lie in [0, 1]. Received: overlap_prob={overlap_prob}")
    chosen = _resolve_engines(engines)
    rng = np.random.default_rng(seed)
    speakers = draw_speakers(rng, num_speakers, chosen)

    plans = []  # (conv_id, channel, lead_in, [(speaker, text, overlap?, u, pause, gain)])
    for c in range(num_conversations):
        k = int(rng.integers(lo, hi + 1))
        members = [speakers[i] for i in sorted(rng.choice(num_speakers, size=k, replace=False))]
        order = list(rng.permutation(k))
        while len(order) < turns_per_conversation:
            order.append(int((order[-1] + rng.integers(1, k)) % k))
        turns = [(members[int(i)], make_sentence(rng), bool(rng.random() < overlap_prob),
                  float(rng.random()), float(rng.uniform(*pause_s)), float(rng.uniform(0.5, 1.0)))
                 for i in order]
        channel = _draw_channel(rng, snr_db) if channel_variation else None
        plans.append((f"conv{c:03d}", channel, float(rng.uniform(0.3, 0.8)), turns))

    jobs = [(spk, text) for _, _, _, turns in plans for spk, text, *_ in turns]
    rendered = iter(_parallel_map(lambda job: _render_turn(job[0], job[1], None), jobs, nj, progress))

    out = Path(out_dir)
    (out / "wav").mkdir(parents=True, exist_ok=True)
    rttm, uem, wav_scp, segments, utt2spk, text, num_spk = [], {}, {}, {}, {}, {}, {}
    total = 0.0
    for conv, channel, lead_in, turns in plans:
        placed = []  # (start_sample, audio)
        cursor = int(lead_in * TARGET_RATE)  # end of the speech so far
        for idx, (spk, sentence, overlap, u, pause, gain) in enumerate(turns):
            x = next(rendered)
            x = x * np.float32(gain / max(float(np.max(np.abs(x))), 1e-9))
            if idx == 0:
                start = cursor
            elif overlap:
                prev = len(placed[-1][1]) / TARGET_RATE
                longest = max(0.2, min(1.0, 0.5 * prev))
                start = max(placed[-1][0], cursor - int((0.2 + u * (longest - 0.2)) * TARGET_RATE))
            else:
                start = cursor + int(pause * TARGET_RATE)
            placed.append((start, x))
            cursor = max(cursor, start + len(x))
            utt = f"{spk.speaker_id}-{conv}-{idx:03d}"
            onset, dur = start / TARGET_RATE, len(x) / TARGET_RATE
            rttm.append(datadir.Turn(conv, "1", onset, dur, spk.speaker_id))
            segments[utt] = datadir.Segment(conv, onset, onset + dur)
            utt2spk[utt] = spk.speaker_id
            text[utt] = sentence
        mix = np.zeros(cursor + int(0.5 * TARGET_RATE), dtype=np.float32)
        for start, x in placed:
            mix[start:start + len(x)] += x
        mix = _apply_channel(mix, channel)
        path = _audio_path(out, conv, "flac")
        write_audio(path, mix)
        wav_scp[conv] = path
        uem[conv] = [(0.0, len(mix) / TARGET_RATE)]
        num_spk[conv] = str(len({t[0].speaker_id for t in turns}))
        total += len(mix) / TARGET_RATE
    _write_conversation_tables(out, wav_scp, rttm, uem, segments, utt2spk, num_spk, plain_audio_paths,
                               absolute_paths)
    datadir.write_text(out / "text", text)
    used = sorted({spk.speaker_id for spk, _ in jobs})
    _write_meta(out, seed, chosen, [s for s in speakers if s.speaker_id in used],
                product="conversations", num_speakers=num_speakers)
    return SynthSummary(str(out), len(used), len(jobs), len(plans), total)
