"""Voicemail audio: reading Asterisk's WAV files, converting them for Telegram and email."""

from __future__ import annotations

import io
import wave
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from gateway.media.audio import AudioError, AudioInfo, to_mp3, to_ogg_opus, to_pcm, wav_info

VOICEMAIL = Path(__file__).parents[1] / "fixtures" / "voicemail"
PCM = VOICEMAIL / "msg0000.wav"  # Asterisk "wav": 8 kHz mono 16-bit
GSM = VOICEMAIL / "long-en.wav"  # Asterisk "wav49": GSM 6.10 in WAV


def decoded(data: bytes) -> tuple[str, str, int, float]:
    """(container, codec, channels, seconds) of encoded audio, decoded back with PyAV."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return (
            container.format.name,
            stream.codec_context.name,
            stream.channels,
            (samples / stream.rate),
        )


def test_wav_info_of_asterisk_pcm() -> None:
    with wave.open(str(PCM)) as w:
        header_seconds = w.getnframes() / w.getframerate()
    info = wav_info(PCM.read_bytes())
    assert info == AudioInfo(duration=pytest.approx(header_seconds), sample_rate=8000, channels=1)


def test_wav_info_of_wav49_gsm() -> None:
    info = wav_info(GSM.read_bytes())
    assert (info.sample_rate, info.channels) == (8000, 1)
    assert 27 < info.duration < 31


@pytest.mark.parametrize("fixture", [PCM, GSM], ids=["pcm", "gsm"])
def test_ogg_opus_for_telegram(fixture: Path) -> None:
    data = fixture.read_bytes()
    ogg = to_ogg_opus(data)
    assert ogg[:4] == b"OggS"
    container, codec, channels, seconds = decoded(ogg)
    assert (container, codec, channels) == ("ogg", "opus", 1)
    assert seconds == pytest.approx(wav_info(data).duration, abs=0.1)
    assert len(ogg) < len(data) or fixture == GSM  # GSM is smaller than any Opus we make


@pytest.mark.parametrize("fixture", [PCM, GSM], ids=["pcm", "gsm"])
def test_mp3_for_email_and_mms(fixture: Path) -> None:
    data = fixture.read_bytes()
    mp3 = to_mp3(data)
    container, codec, channels, seconds = decoded(mp3)
    assert container == "mp3" and codec.startswith("mp3") and channels == 1
    assert seconds == pytest.approx(wav_info(data).duration, abs=0.1)


def test_pcm_for_recognisers_is_16khz_16bit() -> None:
    pcm = to_pcm(PCM.read_bytes(), 16000)
    assert len(pcm) / 2 / 16000 == pytest.approx(wav_info(PCM.read_bytes()).duration, abs=0.01)


def silent_wav_header_only() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"RIFF",
        b"not audio at all, " * 100,
        silent_wav_header_only(),
        b"RIFF\xff\xff\xff\xffWAVEfmt " + bytes(200),
        (VOICEMAIL / "reference" / "msg0000.txt").read_bytes(),
    ],
    ids=["empty", "riff-only", "text", "no-samples", "bad-fmt", "transcript"],
)
@pytest.mark.parametrize("convert", [wav_info, to_ogg_opus, to_mp3, to_pcm])
def test_corrupt_input_is_an_audio_error(convert: Callable[[bytes], object], data: bytes) -> None:
    with pytest.raises(AudioError):
        convert(data)


def test_audio_error_is_a_value_error() -> None:
    assert issubclass(AudioError, ValueError)


def test_an_mp3_is_not_taken_for_a_wav() -> None:
    with pytest.raises(AudioError):
        wav_info(to_mp3(PCM.read_bytes()))
