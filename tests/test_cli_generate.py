"""`livegesture generate` on an untrained tiny model file (the engine tests' fixture)."""

import numpy as np
import soundfile as sf
from typer.testing import CliRunner

from livegesture import Motion
from livegesture.cli import app
from livegesture.data import load_audio, synthetic_audio

from .test_engine import model, model_path  # noqa: F401  (fixtures)


def test_generate_writes_npz_bvh_and_video(model, model_path, tmp_path):  # noqa: F811
    audio, _ = synthetic_audio(2.0, seed=3)
    wav = tmp_path / "speech.wav"
    # 22.05 kHz stereo int16: the command converts on entry
    import soxr

    a22 = soxr.resample(audio, 16000, 22050)
    sf.write(wav, np.stack([a22, a22], 1), 22050, subtype="PCM_16")
    out, bvh, mp4 = tmp_path / "m.npz", tmp_path / "m.bvh", tmp_path / "m.mp4"
    res = CliRunner().invoke(app, ["generate", str(wav), "-o", str(out), "--model", str(model_path),
                                   "--bvh", str(bvh), "--video", str(mp4), "--chunk-seconds", "0.3"])
    assert res.exit_code == 0, res.output
    m = Motion.load(out)
    expected = model.generate(load_audio(wav), sample_rate=16000, seed=0)
    assert len(m) == len(expected) == 60 - 60 % 4
    np.testing.assert_allclose(m.poses, expected.poses, atol=1e-5)
    assert f"Frames: {len(m)}" in bvh.read_text()
    assert mp4.stat().st_size > 1000


def test_generate_errors_are_one_line(tmp_path, model_path):  # noqa: F811
    bad = tmp_path / "not.wav"
    bad.write_text("hello")
    res = CliRunner().invoke(app, ["generate", str(bad), "-o", str(tmp_path / "x.npz"),
                                   "--model", str(model_path)])
    assert res.exit_code != 0
    assert "not.wav" in str(res.exception) or "not.wav" in res.output
    res = CliRunner().invoke(app, ["generate", str(bad), "-o", str(tmp_path / "x.npz"),
                                   "--model", str(tmp_path / "missing.safetensors")])
    assert res.exit_code != 0 and "missing.safetensors" in (str(res.exception) + res.output)
