"""A local live session that sends each frame to a VMC receiver as soon as it is final.

Audio packets (from a file, paced in real time or as fast as the model goes, or from the
microphone, which paces itself) are pushed into ``model.stream(...)``; every frame the session
returns is sent at once, so the receiver sees the motion with the session's latency (the end of
the frame's token, docs/design.md §1, plus compute). The frames are the engine's, taken as given
(root and foot clean-up follow the engine's defaults; ``root_in_place`` only zeroes x/z drift).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from ..motion import Motion
from .sender import VmcSender

__all__ = ["LiveResult", "file_packets", "stream_to_vmc"]


@dataclass
class LiveResult:
    motion: Motion
    audio_seconds: float
    wall_seconds: float
    frames_sent: int
    refused: int


def file_packets(audio: np.ndarray, sample_rate: int, packet_ms: float = 20.0,
                 realtime: bool = True) -> Iterable[np.ndarray]:
    """Packets of `audio`; with `realtime`, each is released when its last sample has been 'spoken'."""
    n = max(1, int(round(packet_ms * sample_rate / 1000)))
    t0 = time.monotonic()
    for start in range(0, len(audio), n):
        chunk = audio[start:start + n]
        if realtime:
            delay = t0 + (start + len(chunk)) / sample_rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield chunk


def stream_to_vmc(model, packets: Iterable[np.ndarray], sample_rate: int, sender: VmcSender, *,
                  seed: int = 0, smoothing=None, root_in_place: bool = False,
                  on_frames: Callable[[Motion], None] | None = None) -> LiveResult:
    """Stream `packets` (mono float32 at `sample_rate`) through one session of `model`
    (a :class:`~livegesture.LiveGesture`) and send every frame to `sender` when it is final."""
    kwargs = {"seed": seed, "sample_rate": sample_rate}
    if smoothing is not None:
        kwargs["smoothing"] = smoothing
    session = model.stream(**kwargs)
    parts: list[Motion] = []
    sent = 0
    samples = 0
    t0 = time.monotonic()

    def emit(out: Motion) -> None:
        nonlocal sent
        parts.append(out)
        if not len(out):
            return
        if root_in_place:
            out.trans = out.trans.copy()
            out.trans[:, [0, 2]] = 0.0
        sender.send_motion(out, first_index=sent)
        sent += len(out)
        if on_frames is not None:
            on_frames(out)

    for chunk in packets:
        samples += len(chunk)
        emit(session.push(chunk))
    emit(session.close())
    return LiveResult(Motion.concatenate(parts), samples / sample_rate, time.monotonic() - t0,
                      sender.frames_sent, sender.refused)
