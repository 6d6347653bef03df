"""Wire format: message validation and the binary frame layout of docs/protocol.md."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from livegesture.serve.protocol import (FRAME_HEADER, ProtocolError, StartMessage, WordsMessage, decode_audio,
                                        decode_frame_binary, encode_frame_binary, encode_frame_json, parse_message)


def test_start_defaults_and_fields():
    m = parse_message('{"type": "start"}')
    assert m == StartMessage(type="start", seed=0, sample_rate=16000, format="pcm16", output="json", joints=False)
    m = parse_message(json.dumps({"type": "start", "seed": 5, "sample_rate": 48000, "format": "f32",
                                  "output": "binary", "joints": True}))
    assert (m.seed, m.sample_rate, m.format, m.output, m.joints) == (5, 48000, "f32", "binary", True)
    assert isinstance(parse_message('{"type": "words", "words": [{"word": "a", "start": 0, "end": 1}]}'),
                      WordsMessage)


@pytest.mark.parametrize("text, match", [
    ("[1, 2]", '"type"'), ("nope", "JSON"), ('{"type": "start", "seed": -1}', "seed"), ('{"type": "start", "smooth": 5}', "smooth"),
    ('{"type": "start", "sample_rate": 16001}', "unsupported sample_rate"),
    ('{"type": "start", "output": "xml"}', "output"), ('{"type": "start", "joints": "maybe"}', "joints"),
    ('{"type": "words", "words": [{"word": "a", "start": NaN, "end": 1}]}', "start"),
    ('{"type": "words"}', "words"), ('{"type": "end", "now": true}', "now"),
])
def test_bad_messages_name_the_problem(text, match):
    with pytest.raises(ProtocolError, match=match):
        parse_message(text)


def test_audio_decoding():
    pcm = np.array([0, 16384, -32768, 32767], "<i2")
    np.testing.assert_array_equal(decode_audio(pcm.tobytes(), "pcm16"), pcm / 32768.0)
    f = np.array([0.5, -0.25], "<f4")
    np.testing.assert_array_equal(decode_audio(f.tobytes(), "f32"), f)
    with pytest.raises(ProtocolError, match="whole number"):
        decode_audio(b"\x00" * 6, "f32")
    with pytest.raises(ProtocolError, match="NaN"):
        decode_audio(np.array([np.nan], "<f4").tobytes(), "f32")


def test_binary_frame_layout_round_trips():
    rng = np.random.default_rng(0)
    poses, trans, expr, joints = (rng.standard_normal(n).astype(np.float32) for n in (165, 3, 100, 165))
    b = encode_frame_binary(7, 0.2666875, poses, trans, expr, joints)
    assert len(b) == 20 + 4 * 433 and FRAME_HEADER.size == 20
    assert b[:4] == b"LGF1" and struct.unpack_from("<IdHH", b, 4) == (7, 0.2666875, 433, 1)
    d = decode_frame_binary(b)
    for k, v in (("poses", poses), ("trans", trans), ("expressions", expr), ("joints", joints)):
        np.testing.assert_array_equal(d[k], v)
    d = decode_frame_binary(encode_frame_binary(0, 0.1, poses, trans, expr))
    assert "joints" not in d and len(d["poses"]) == 165
    with pytest.raises(ValueError, match="magic"):
        decode_frame_binary(b"XXXX" + b[4:])
    with pytest.raises(ValueError, match="floats"):
        decode_frame_binary(b[:-4])


def test_json_frames_are_exact_float32():
    v = np.float32([0.1, 1 / 3, -7e-8])
    m = json.loads(encode_frame_json(3, 0.5, np.tile(v, 55), v, np.zeros(100, np.float32)))
    assert m["type"] == "frame" and m["index"] == 3 and m["audio_time"] == 0.5
    np.testing.assert_array_equal(np.float32(m["trans"]), v)
