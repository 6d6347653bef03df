"""`livegesture generate` on an untrained tiny model file (the engine tests' fixture)."""

import numpy as np
import soundfile as sf
from typer.testing import CliRunner

from livegesture import LiveGestureError, Motion
from livegesture.cli import app
from livegesture.data import load_audio, synthetic_audio

from .test_engine import model, model_path  # noqa: F401  (fixtures)
from .test_engine_words import text_model, text_model_path  # noqa: F401  (fixtures)


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


def _write_textgrid(path, words, duration):
    from praatio import textgrid

    tg = textgrid.Textgrid()
    tg.addTier(textgrid.IntervalTier("words", [(s, e, w) for s, e, w in words], 0, duration))
    tg.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def test_generate_with_text_cues(text_model, text_model_path, model_path, tmp_path):  # noqa: F811
    from livegesture.data import read_words

    audio, _ = synthetic_audio(2.0, seed=4)
    wav, tg = tmp_path / "speech.wav", tmp_path / "speech.TextGrid"
    sf.write(wav, audio, 16000)
    _write_textgrid(tg, [(0.3, 0.7, "hello"), (0.9, 1.5, "world")], 2.0)
    out = tmp_path / "m.npz"
    res = CliRunner().invoke(app, ["generate", str(wav), "-o", str(out), "--model", str(text_model_path),
                                   "--text", str(tg), "--seed", "5"])
    assert res.exit_code == 0, res.output
    got = Motion.load(out)
    a = load_audio(wav)
    with_words = text_model.generate(a, seed=5, words=read_words(tg))
    np.testing.assert_allclose(got.poses, with_words.poses, atol=1e-5)
    assert np.abs(got.poses - text_model.generate(a, seed=5).poses).max() > 1e-4  # the words were used
    # a model trained without text refuses the cue (main() prints it as one line, exit code 2)
    res = CliRunner().invoke(app, ["generate", str(wav), "-o", str(tmp_path / "y.npz"), "--model",
                                   str(model_path), "--text", str(tg)])
    assert isinstance(res.exception, LiveGestureError) and "no text input" in str(res.exception)
    assert not (tmp_path / "y.npz").exists()


def test_generate_root_in_place(model, model_path, tmp_path):  # noqa: F811
    audio, _ = synthetic_audio(2.0, seed=6)
    wav = tmp_path / "speech.wav"
    sf.write(wav, audio, 16000)
    free, fixed = tmp_path / "free.npz", tmp_path / "fixed.npz"
    # --raw: the model's output, where --root-in-place only drops x / z (with the clean-up the legs are
    # also re-solved for the feet of the body held in place)
    for out, extra in ((free, ["--raw"]), (fixed, ["--raw", "--root-in-place", "--bvh", str(tmp_path / "f.bvh")]),
                       (tmp_path / "smooth.npz", ["--smooth", "0.08"])):
        res = CliRunner().invoke(app, ["generate", str(wav), "-o", str(out), "--model", str(model_path), *extra])
        assert res.exit_code == 0, res.output
    a, b = Motion.load(free), Motion.load(fixed)
    assert np.abs(a.trans[:, [0, 2]]).max() > 0  # the untrained model drifts; in place it must not
    np.testing.assert_array_equal(b.trans[:, [0, 2]], 0)
    np.testing.assert_array_equal(a.trans[:, 1], b.trans[:, 1])
    np.testing.assert_array_equal(a.poses, b.poses)
    from livegesture.smoothing import SmoothingConfig

    smooth = Motion.load(tmp_path / "smooth.npz")
    expected = model.generate(load_audio(wav), seed=0, smoothing=SmoothingConfig(0.08))  # both cleaned up
    np.testing.assert_allclose(smooth.poses, expected.poses, atol=1e-5)
    assert np.abs(smooth.poses - a.poses).max() > 1e-3


def test_generate_writes_glb_fbx_and_bvh_units(model, model_path, tmp_path, monkeypatch):  # noqa: F811
    """--glb and --bvh-units write what the library writes; --fbx without bpy fails with one line
    saying how to get it, before any work (no npz written)."""
    import pygltflib

    import livegesture.export.fbx as fbx_mod

    audio, _ = synthetic_audio(1.0, seed=7)
    wav = tmp_path / "speech.wav"
    sf.write(wav, audio, 16000)
    out, glb, bvh = tmp_path / "m.npz", tmp_path / "m.glb", tmp_path / "m.bvh"
    res = CliRunner().invoke(app, ["generate", str(wav), "-o", str(out), "--model", str(model_path),
                                   "--glb", str(glb), "--bvh", str(bvh), "--bvh-units", "cm"])
    assert res.exit_code == 0, res.output
    m = Motion.load(out)
    g = pygltflib.GLTF2().load(str(glb))
    assert g.accessors[g.animations[0].samplers[0].input].count == len(m)
    from livegesture.export import write_bvh

    assert bvh.read_text() == write_bvh(m, tmp_path / "ref.bvh", units="cm").read_text()
    monkeypatch.setattr(fbx_mod, "blender_available", lambda: False)
    res = CliRunner().invoke(app, ["generate", str(wav), "-o", str(tmp_path / "n.npz"), "--model",
                                   str(model_path), "--fbx", str(tmp_path / "m.fbx")])
    assert isinstance(res.exception, LiveGestureError)
    assert "pip install 'livegesture[blender]'" in str(res.exception)
    assert not (tmp_path / "n.npz").exists()
    res = CliRunner().invoke(app, ["generate", str(wav), "-o", str(tmp_path / "n.npz"), "--model",
                                   str(model_path), "--bvh", str(bvh), "--bvh-units", "feet"])
    assert isinstance(res.exception, LiveGestureError) and "--bvh-units" in str(res.exception)


def test_unwritable_output_is_one_line_exit_2(model_path, tmp_path):  # noqa: F811
    """Through the real entry point: an output under a file (not a folder) fails before generating."""
    import subprocess
    import sys

    wav = tmp_path / "speech.wav"
    sf.write(wav, synthetic_audio(0.5, seed=1)[0], 16000)
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    proc = subprocess.run([sys.executable, "-m", "livegesture", "generate", str(wav), "-o",
                           str(tmp_path / "m.npz"), "--model", str(model_path), "--glb",
                           str(blocker / "m.glb")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write the glTF file" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "m.npz").exists()


def _one_line_error(code: int, err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("livegesture: error: "), (code, err)
    assert all(w in lines[0] for w in words), lines[0]


def test_speech_shorter_than_one_token_is_a_one_line_error(cli, model_path, tmp_path):  # noqa: F811
    """Under 133 ms of audio no token completes: refused with one line whatever the outputs asked for."""
    from livegesture.engine import token_end_sample

    wav = tmp_path / "short.wav"
    sf.write(wav, synthetic_audio(1.0, seed=1)[0][: token_end_sample(0) - 1], 16000)
    for extra in ([], ["--bvh", tmp_path / "s.bvh"], ["--video", tmp_path / "s.mp4"]):
        code, _, err = cli("generate", wav, "-o", tmp_path / "s.npz", "--model", model_path, *extra)
        _one_line_error(code, err, "short.wav", "shorter than one motion token")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.wav"]  # nothing written
    # exactly one token of audio is enough: 4 frames
    sf.write(wav, synthetic_audio(1.0, seed=1)[0][: token_end_sample(0)], 16000)
    code, out, _ = cli("generate", wav, "-o", tmp_path / "s.npz", "--model", model_path)
    assert code == 0 and "(4 frames" in out


def test_output_paths_are_checked_before_the_work(cli, model_path, tmp_path, monkeypatch):  # noqa: F811
    import livegesture.engine as engine

    wav = tmp_path / "speech.wav"
    sf.write(wav, synthetic_audio(1.0, seed=2)[0], 16000)
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_dir.npz").mkdir()

    def no_work(*a, **k):
        raise AssertionError("the model was loaded before the output paths were checked")

    monkeypatch.setattr(engine.LiveGesture, "load", no_work)
    bad = {
        ("-o", tmp_path / "a_file" / "x.npz"): "is a file, not a folder",
        ("-o", tmp_path / "a_dir.npz"): "is a folder",
        ("-o", "/proc/livegesture-x.npz"): "cannot write in /proc",
        ("-o", wav): "is the input file",
        ("-o", tmp_path / "ok.npz", "--bvh", tmp_path / "a_file" / "x.bvh"): "--bvh",
        ("-o", tmp_path / "ok.npz", "--video", tmp_path / "a_file" / "x.mp4"): "--video",
        ("-o", tmp_path / "same", "--bvh", tmp_path / "same"): "are the same file",
    }
    for args, words in bad.items():
        code, _, err = cli("generate", wav, *args, "--model", model_path)
        _one_line_error(code, err, words)
    assert not (tmp_path / "ok.npz").exists() and not (tmp_path / "same").exists()


def test_generate_raw_seed_motion_and_root_options(model, model_path, tmp_path):  # noqa: F811
    from livegesture.cleanup import CleanupConfig

    audio, _ = synthetic_audio(2.0, seed=5)
    wav = tmp_path / "speech.wav"
    sf.write(wav, audio, 16000)

    def run(*args):
        out = tmp_path / f"m{len(list(tmp_path.glob('m*.npz')))}.npz"
        res = CliRunner().invoke(app, ["generate", str(wav), "-o", str(out), "--model", str(model_path), *args])
        return res, out

    res, out = run("--raw")
    assert res.exit_code == 0, res.output
    raw = model.generate(load_audio(wav), seed=0, cleanup=CleanupConfig.off())
    np.testing.assert_array_equal(Motion.load(out).poses, raw.poses)
    res, out = run()
    assert not np.array_equal(Motion.load(out).poses, raw.poses)  # the clean-up is on by default
    res, out = run("--root-in-place")
    assert res.exit_code == 0 and np.all(Motion.load(out).trans[:, [0, 2]] == 0)
    seed = Motion(np.zeros((1, 55, 3), np.float32), np.array([[0.4, 1.3, 0.2]], np.float32),
                  np.zeros((1, 100), np.float32))
    seed.save(tmp_path / "pose.npz")
    res, out = run("--seed-motion", str(tmp_path / "pose.npz"))
    assert res.exit_code == 0, res.output
    m = Motion.load(out)
    np.testing.assert_allclose(m.trans[0, [0, 2]], [0.4, 0.2], atol=0.05)  # it starts where the pose stands
    for args, what in ((["--seed-motion", str(tmp_path / "nope.npz")], "nope.npz"),
                       (["--raw-root", "--root-in-place"], "--raw-root")):
        res, _ = run(*args)  # LiveGestureError: the entry point prints it as one line, exit 2
        assert isinstance(res.exception, LiveGestureError) and what in str(res.exception)


def test_compile_on_a_machine_that_cannot_is_one_line_before_the_work(cli, model_path, tmp_path, monkeypatch):  # noqa: F811
    """generate / live / bench --compile without a C++ compiler: one line naming the reason, exit 2,
    before the model loads or anything is written."""
    import livegesture.engine as engine
    import livegesture.engine.compiled as compiled

    wav = tmp_path / "speech.wav"
    sf.write(wav, synthetic_audio(1.0, seed=2)[0], 16000)

    def no_work(*a, **k):
        raise AssertionError("the model was loaded before --compile was checked")

    monkeypatch.setattr(engine.LiveGesture, "load", no_work)
    monkeypatch.setattr(engine.LiveGesture, "__init__", no_work)
    monkeypatch.setattr(compiled, "compile_available", lambda device="cpu": "no C++ compiler here (test)")
    for args in (("generate", wav, "-o", tmp_path / "m.npz", "--model", model_path),
                 ("live", wav, "--vmc", "127.0.0.1:39539", "--fast", "--model", model_path),
                 ("bench", "--size", "demo", "--seconds", "1.5")):
        code, _, err = cli(*args, "--compile")
        _one_line_error(code, err, "--compile", "no C++ compiler here (test)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speech.wav"]
