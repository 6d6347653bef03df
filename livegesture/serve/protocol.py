"""The LiveGesture WebSocket protocol (``/ws``): message schemas and the binary encodings.

One WebSocket connection is one session. Client -> server:

* text ``{"type": "start", "seed": 0, "sample_rate": 16000, "format": "pcm16" | "f32",
  "output": "json" | "binary", "joints": false, "smooth": 0, "cleanup": true, "root": null,
  "anchor": null, "seed_poses": null, "seed_trans": null, "seed_expressions": null}`` first (every
  field optional, these defaults). ``cleanup`` false sends the raw model output (no token hand-over
  blend, root control or foot planting); ``root`` "anchor" | "in_place" | "raw" overrides the model's
  root control, ``anchor`` [x, z] (metres) is where the root is held (default: where it starts);
  ``seed_poses`` (N <= 24 frames of 165 axis-angle values, with ``seed_trans`` N x 3 and optional
  ``seed_expressions`` N x 100) is the pose or frames the session starts from (the avatar's
  current pose, the end of a previous clip): it continues them without a jump, and its frame
  indices and audio times still start at 0;
* binary frames: little-endian mono audio samples in ``format`` at ``sample_rate`` (int16 PCM, or
  float32 in [-1, 1]), any number of samples per frame up to the server's packet limit;
* optional text ``{"type": "words", "words": [{"word": "hello", "start": 0.2, "end": 0.5}, ...]}``
  (seconds of the session's audio; models trained with text only);
* text ``{"type": "end"}``: no more audio.

Server -> client:

* ``{"type": "started", "session": ID, "fps": 30, "sample_rate": ..., "model_sample_rate": 16000,
  "frames_per_token": 4, "output": ..., "joints": ..., "parents": [55 ints]}``;
* one message per motion frame as soon as it is final, in order: JSON
  ``{"type": "frame", "index": i, "audio_time": t, "poses": [165], "trans": [3],
  "expressions": [100]}`` (+ ``"joints": [165]`` world joint positions in metres from the
  approximate skeleton when requested), or the binary form below;
* after ``end``: the remaining frames, then ``{"type": "ended", "frames": N}``, then the server
  closes the connection (code 1000);
* on any problem: ``{"type": "error", "message": "..."}``, then the server closes (code 1008,
  1011 for a server fault, 1013 when full); the other sessions are not affected.

``audio_time`` is the time (s, 16 kHz timeline) of the end of the audio the frame depends on:
the end of its token, ``ceil((4 tau + 4) * 1600 / 3) / 16000`` for token ``tau = index // 4``.

Binary frame (output ``binary``), little-endian::

    offset 0   4 bytes  magic b"LGF1"
    offset 4   uint32   frame index
    offset 8   float64  audio_time (s)
    offset 16  uint16   number of float32 values that follow (268, or 433 with joints)
    offset 18  uint16   flags (bit 0: joints present)
    offset 20  float32  poses[165], trans[3], expressions[100] (+ joints[165])
"""

from __future__ import annotations

import json
import struct
from typing import Annotated, Literal, Optional, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

__all__ = ["ProtocolError", "StartMessage", "WordsMessage", "EndMessage", "parse_message", "decode_audio",
           "encode_frame_json", "encode_frame_binary", "decode_frame_binary", "FRAME_MAGIC",
           "FRAME_HEADER", "FRAME_FLOATS"]

FRAME_MAGIC = b"LGF1"
FRAME_HEADER = struct.Struct("<4sIdHH")
FRAME_FLOATS = 165 + 3 + 100
JOINT_FLOATS = 165
SAMPLE_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)


class ProtocolError(Exception):
    """A message the protocol does not allow; the message text goes to the client."""


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Finite = Annotated[float, Field(allow_inf_nan=False)]
MAX_SEED_FRAMES = 24  # a pose or the end of a clip; keeps the start message well under the text limit


class StartMessage(_Msg):
    type: Literal["start"]
    seed: int = Field(0, ge=0, lt=2 ** 63)
    sample_rate: int = 16000
    format: Literal["pcm16", "f32"] = "pcm16"
    output: Literal["json", "binary"] = "json"
    joints: bool = False
    smooth: float = Field(0.0, ge=0, le=2, allow_inf_nan=False)  # causal low-pass time constant (s), 0 = none
    cleanup: bool = True                                            # False: the raw model output
    root: Optional[Literal["anchor", "in_place", "raw"]] = None      # None: the model's default
    anchor: Optional[tuple[Finite, Finite]] = None                  # x, z the root is held near
    seed_poses: Optional[list[Annotated[list[Finite], Field(min_length=165, max_length=165)]]] = Field(
        None, min_length=1, max_length=MAX_SEED_FRAMES)
    seed_trans: Optional[list[Annotated[list[Finite], Field(min_length=3, max_length=3)]]] = Field(
        None, min_length=1, max_length=MAX_SEED_FRAMES)
    seed_expressions: Optional[list[Annotated[list[Finite], Field(min_length=100, max_length=100)]]] = Field(
        None, min_length=1, max_length=MAX_SEED_FRAMES)


class Word(_Msg):
    word: str = Field(min_length=1, max_length=100)
    start: float = Field(ge=0, allow_inf_nan=False)
    end: float = Field(ge=0, allow_inf_nan=False)


class WordsMessage(_Msg):
    type: Literal["words"]
    words: list[Word] = Field(max_length=1000)


class EndMessage(_Msg):
    type: Literal["end"]


ClientMessage = Annotated[Union[StartMessage, WordsMessage, EndMessage], Field(discriminator="type")]
_ADAPTER: TypeAdapter = TypeAdapter(ClientMessage)


def parse_message(text: str) -> StartMessage | WordsMessage | EndMessage:
    """A client text message; :class:`ProtocolError` with a readable reason otherwise."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"text messages must be JSON objects ({exc.msg} at position {exc.pos})"
                            if isinstance(exc, json.JSONDecodeError) else "text message is not UTF-8") from None
    if not isinstance(data, dict) or "type" not in data:
        raise ProtocolError('text messages must be JSON objects with a "type" ("start", "words" or "end")')
    try:
        msg = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        errs = "; ".join(f"{'.'.join(str(x) for x in e['loc'][1:]) or 'type'}: {e['msg']}"
                         for e in exc.errors()[:3])
        raise ProtocolError(f"bad {data.get('type')!r} message: {errs}") from None
    if isinstance(msg, StartMessage) and msg.sample_rate not in SAMPLE_RATES:
        raise ProtocolError(f"unsupported sample_rate {msg.sample_rate}; use one of {list(SAMPLE_RATES)} "
                            "(16000 avoids resampling)")
    if isinstance(msg, StartMessage):
        seeds = {k: getattr(msg, k) for k in ("seed_poses", "seed_trans", "seed_expressions")}
        if seeds["seed_poses"] is None and any(v is not None for v in seeds.values()):
            raise ProtocolError("seed_trans / seed_expressions need seed_poses")
        if seeds["seed_poses"] is not None:
            if seeds["seed_trans"] is None:
                raise ProtocolError("seed_poses need seed_trans (N x 3: where the figure stands, metres, Y up)")
            counts = {k: len(v) for k, v in seeds.items() if v is not None}
            if len(set(counts.values())) != 1:
                raise ProtocolError(f"seed_poses, seed_trans and seed_expressions need as many frames, got {counts}")
    if isinstance(msg, WordsMessage):
        for i, w in enumerate(msg.words):
            if w.end < w.start:
                raise ProtocolError(f"word {i} ({w.word!r}) ends before it starts")
    return msg


def decode_audio(data: bytes, fmt: str) -> np.ndarray:
    """Samples of one binary audio frame as float32; :class:`ProtocolError` for odd byte counts
    and non-finite or out-of-range float samples."""
    width = 2 if fmt == "pcm16" else 4
    if len(data) % width:
        raise ProtocolError(f"audio frame of {len(data)} bytes is not a whole number of {fmt} samples "
                            f"({width} bytes each)")
    if fmt == "pcm16":
        return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
    x = np.frombuffer(data, "<f4").astype(np.float32)
    if x.size and not np.isfinite(x).all():
        raise ProtocolError("audio frame contains NaN or Inf samples")
    if x.size and np.abs(x).max() > 16.0:
        raise ProtocolError("f32 audio must be in [-1, 1] (got samples beyond +-16: is it int16 sent as f32?)")
    return x


def _floats(poses: np.ndarray, trans: np.ndarray, expressions: np.ndarray,
            joints: np.ndarray | None) -> np.ndarray:
    parts = [np.asarray(poses, np.float32).reshape(-1), np.asarray(trans, np.float32).reshape(-1),
             np.asarray(expressions, np.float32).reshape(-1)]
    if joints is not None:
        parts.append(np.asarray(joints, np.float32).reshape(-1))
    return np.concatenate(parts)


def encode_frame_json(index: int, audio_time: float, poses: np.ndarray, trans: np.ndarray,
                      expressions: np.ndarray, joints: np.ndarray | None = None) -> str:
    """The JSON frame message; every float32 value is written exactly (it reads back to the same float32)."""
    msg = {"type": "frame", "index": int(index), "audio_time": float(audio_time),
           "poses": np.asarray(poses, np.float32).reshape(-1).tolist(),
           "trans": np.asarray(trans, np.float32).reshape(-1).tolist(),
           "expressions": np.asarray(expressions, np.float32).reshape(-1).tolist()}
    if joints is not None:
        msg["joints"] = np.asarray(joints, np.float32).reshape(-1).tolist()
    return json.dumps(msg, separators=(",", ":"))


def encode_frame_binary(index: int, audio_time: float, poses: np.ndarray, trans: np.ndarray,
                        expressions: np.ndarray, joints: np.ndarray | None = None) -> bytes:
    vals = _floats(poses, trans, expressions, joints)
    return FRAME_HEADER.pack(FRAME_MAGIC, int(index), float(audio_time), vals.size,
                             int(joints is not None)) + vals.astype("<f4").tobytes()


def decode_frame_binary(data: bytes) -> dict:
    """A binary frame as ``{"index", "audio_time", "poses" (165,), "trans" (3,), "expressions" (100,)
    [, "joints" (165,)]}``; ValueError for anything else."""
    if len(data) < FRAME_HEADER.size:
        raise ValueError(f"binary frame of {len(data)} bytes is shorter than its header")
    magic, index, t, n, flags = FRAME_HEADER.unpack_from(data)
    if magic != FRAME_MAGIC:
        raise ValueError(f"not a LiveGesture frame (magic {magic!r})")
    vals = np.frombuffer(data, "<f4", offset=FRAME_HEADER.size)
    if vals.size != n or n != FRAME_FLOATS + (JOINT_FLOATS if flags & 1 else 0):
        raise ValueError(f"binary frame holds {vals.size} floats, header says {n}")
    out = {"index": index, "audio_time": t, "poses": vals[:165], "trans": vals[165:168],
           "expressions": vals[168:268]}
    if flags & 1:
        out["joints"] = vals[268:]
    return out
