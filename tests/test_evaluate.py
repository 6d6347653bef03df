"""`livegesture evaluate` samples as `generate` does: one sampling configuration, the model file's."""

import pytest
import torch

from livegesture.data import find_clips, load_clip, write_synthetic_beat2
from livegesture.cleanup import CleanupConfig
from livegesture.evaluate import evaluate_model
from livegesture.motion import Motion
from livegesture.model import SamplingConfig

from .test_engine import assert_same_motion, model, model_path  # noqa: F401  (fixtures)


def test_evaluate_generates_what_generate_does(model, model_path, tmp_path):  # noqa: F811
    data = tmp_path / "data"
    write_synthetic_beat2(data, n_clips=1, seconds=4.0, seed=3)
    clip = load_clip(find_clips(data)[0])
    b = model.bundle
    assert b.config.sampling != SamplingConfig()  # the demo preset: temperature 0.9, top-p 0.95
    ref = model.generate(clip.audio, seed=2, cleanup=CleanupConfig.off())  # the CLI's path, raw output
    toks = b.model.generate_tokens(torch.from_numpy(clip.audio)[None], seed=2, sampling=b.config.sampling)
    assert_same_motion(b.tokens_to_motion(toks[0]), ref, tol=1e-4)
    for protocol in ("strict", "beat2"):
        res = evaluate_model(model_path, data, ids=[clip.id], seed=2, protocol=protocol,
                             out_dir=tmp_path / protocol, progress=False)
        assert res["sampling"] == b.config.sampling.__dict__
        scored = Motion.load(tmp_path / protocol / f"{clip.id}.npz")  # the frames evaluate scored
        assert len(scored) > 0
        assert_same_motion(scored, ref[:len(scored)], tol=1e-4)
    # what the old default (temperature 1, top-p 1) gives is another motion
    other = b.model.generate_tokens(torch.from_numpy(clip.audio)[None], seed=2, sampling=SamplingConfig())
    assert not torch.equal(other, toks)
    with pytest.raises(TypeError):  # no silent default any more
        b.model.generate_tokens(torch.from_numpy(clip.audio)[None], seed=2)


def test_evaluate_int8_scores_what_generate_int8_gives(model_path, tmp_path):  # noqa: F811
    from livegesture import LiveGesture

    data = tmp_path / "data"
    write_synthetic_beat2(data, n_clips=1, seconds=3.0, seed=4)
    clip = load_clip(find_clips(data)[0])
    ref = LiveGesture.load(model_path, precision="int8").generate(clip.audio, seed=1, cleanup=CleanupConfig.off())
    res = evaluate_model(model_path, data, ids=[clip.id], seed=1, protocol="strict", out_dir=tmp_path / "o",
                         progress=False, precision="int8")
    assert res["precision"] == "int8"
    scored = Motion.load(tmp_path / "o" / f"{clip.id}.npz")
    assert 0 < len(scored) <= len(ref)
    assert_same_motion(scored, ref[:len(scored)], tol=1e-6)
    f32 = evaluate_model(model_path, data, ids=[clip.id], seed=1, protocol="strict", progress=False)
    assert f32["precision"] == "float32" and f32["rows"]["generated"] != res["rows"]["generated"]
