"""Voicemail audio: reading Asterisk's WAV files and converting them for each channel.

Pure CPU functions over bytes (PyAV, in memory); callers run them off the event loop.
Asterisk writes 8 kHz mono WAV: 16-bit PCM ("wav") or GSM 6.10 ("wav49"); both decode.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import av
import av.error
from av.audio.stream import AudioStream

# Telegram's sendVoice wants OGG/Opus; Opus is specified at 48 kHz (RFC 7845 players
# resample to it anyway). 24 kbit/s in "voip" mode is ample for 8 kHz telephone speech.
OPUS_RATE = 48000
OPUS_BITRATE = 24000
# MP3 for email and MMS: 16 kHz (MPEG-2) plays everywhere, unlike 8 kHz (MPEG-2.5);
# 24 kbit/s keeps two minutes near 360 KB, under common MMS size limits.
MP3_RATE = 16000
MP3_BITRATE = 24000


class AudioError(ValueError):
    """The bytes are not audio we can read (empty, corrupt, or not a WAV file)."""


@dataclass(frozen=True)
class AudioInfo:
    duration: float
    sample_rate: int
    channels: int


def wav_info(wav: bytes) -> AudioInfo:
    """Duration (counted from decoded samples, not the header), rate and channels."""
    with _open(wav) as container:
        stream = container.streams.audio[0]
        rate, channels = stream.rate, stream.channels
        samples = sum(frame.samples for frame in _frames(container))
    if samples == 0:
        raise AudioError("the WAV file holds no audio")
    return AudioInfo(duration=samples / rate, sample_rate=rate, channels=channels)


def to_pcm(wav: bytes, rate: int = 16000) -> bytes:
    """Mono signed 16-bit little-endian samples at `rate` (what recognisers take)."""
    out = bytearray()
    for frame in _resampled(wav, "s16", rate):
        out += bytes(frame.planes[0])[: frame.samples * 2]
    if not out:
        raise AudioError("the WAV file holds no audio")
    return bytes(out)


def to_ogg_opus(wav: bytes) -> bytes:
    """Mono Opus in OGG: a Telegram voice note."""
    return _encode(wav, "ogg", "libopus", OPUS_RATE, OPUS_BITRATE, {"application": "voip"})


def to_mp3(wav: bytes) -> bytes:
    """Mono MP3, for email and MMS."""
    return _encode(wav, "mp3", "libmp3lame", MP3_RATE, MP3_BITRATE, {})


def _open(wav: bytes) -> av.container.InputContainer:
    if not wav:
        raise AudioError("empty audio file")
    try:
        container = av.open(io.BytesIO(wav), mode="r", format="wav")
    except (av.error.FFmpegError, ValueError) as exc:
        raise AudioError(f"not a readable WAV file ({_reason(exc)})") from exc
    if not container.streams.audio:
        container.close()
        raise AudioError("the WAV file has no audio stream")
    return container


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _frames(container: av.container.InputContainer) -> Iterator[av.AudioFrame]:
    """Decoded frames; a damaged packet is skipped rather than losing the whole message.

    Asterisk's wav49 writer pads the data chunk to an even length, and FFmpeg hands the
    pad byte over as a last, undecodable packet: that must not make the file unreadable.
    """
    stream = container.streams.audio[0]
    try:
        for packet in container.demux(stream):
            try:
                yield from packet.decode()
            except av.error.InvalidDataError:
                continue
    except av.error.FFmpegError as exc:
        raise AudioError(f"corrupt audio ({_reason(exc)})") from exc


def _resampled(wav: bytes, fmt: str, rate: int) -> Iterator[av.AudioFrame]:
    resampler = av.AudioResampler(format=fmt, layout="mono", rate=rate)
    with _open(wav) as container:
        for frame in _frames(container):
            frame.pts = None  # let the resampler count time; wav49 pts can jump
            yield from resampler.resample(frame)
    yield from resampler.resample(None)


def _encode(
    wav: bytes, container_format: str, codec: str, rate: int, bitrate: int, options: dict[str, str]
) -> bytes:
    out = io.BytesIO()
    with av.open(out, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, options=options, layout="mono")
        assert isinstance(stream, AudioStream)
        stream.bit_rate = bitrate
        written = 0
        for frame in _resampled(wav, stream.format.name, rate):
            frame.pts = written
            written += frame.samples
            container.mux(stream.encode(frame))
        if written == 0:
            raise AudioError("the WAV file holds no audio")
        container.mux(stream.encode(None))
    return out.getvalue()
