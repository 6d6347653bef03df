"""Microphone input through sounddevice (PortAudio): mono float32 packets as they are recorded.

Problems a user can meet (the PortAudio library missing, no input device, a device that refuses
the rate) raise :class:`~livegesture.errors.AudioError` with one line saying what to do.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .errors import AudioError

__all__ = ["Microphone", "open_microphone"]


def _sounddevice():
    try:
        import sounddevice
    except ImportError:
        raise AudioError("no sound input: the sounddevice package is not installed "
                         "(pip install sounddevice)") from None
    except OSError as exc:  # the wheel loads the system's PortAudio library at import
        raise AudioError(f"no sound input: the PortAudio library is missing ({exc}); install it "
                         f"(Debian/Ubuntu: apt-get install libportaudio2) or stream a file instead") from None
    return sounddevice


@dataclass
class Microphone:
    """An open input stream; iterate for packets (until `seconds` of audio, if given)."""

    stream: object
    packets: "queue.Queue[np.ndarray]"
    sample_rate: int
    device_name: str
    seconds: float | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        got = 0
        limit = None if self.seconds is None else int(self.seconds * self.sample_rate)
        self.stream.start()
        try:
            while limit is None or got < limit:
                try:
                    x = self.packets.get(timeout=2.0)
                except queue.Empty:
                    raise AudioError(f"the sound device {self.device_name!r} stopped delivering audio") from None
                if limit is not None:
                    x = x[: limit - got]
                got += len(x)
                yield x
        finally:
            self.stream.stop()
            self.stream.close()


def open_microphone(sample_rate: int = 16000, packet_ms: float = 20.0, device: str | int | None = None,
                    seconds: float | None = None) -> Microphone:
    """Open the default (or given) input device, mono, at `sample_rate` if the device takes it,
    else at its own default rate (the session resamples). Nothing is recorded until iterated."""
    sd = _sounddevice()
    try:
        info = sd.query_devices(device, kind="input")
    except Exception as exc:  # PortAudioError or ValueError: no (such) input device
        raise AudioError(f"no sound input device{'' if device is None else f' {device!r}'} "
                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                         f"stream a speech file instead") from None
    packets: "queue.Queue[np.ndarray]" = queue.Queue()

    def callback(indata, frames, time_info, status) -> None:  # PortAudio's thread
        packets.put(np.array(indata[:, 0], np.float32))

    last = None
    for rate in dict.fromkeys((int(sample_rate), int(info["default_samplerate"]))):
        try:
            stream = sd.InputStream(samplerate=rate, channels=1, dtype="float32", device=device,
                                    blocksize=max(1, int(round(rate * packet_ms / 1000))), callback=callback)
            return Microphone(stream, packets, rate, str(info.get("name", device)), seconds)
        except Exception as exc:  # PortAudioError: rate or device refused
            last = exc
    raise AudioError(f"the sound device {info.get('name', device)!r} cannot record mono audio: {last}")
