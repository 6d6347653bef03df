"""`livegesture evaluate` samples as `generate` does: one sampling configuration, the model file's."""

import pytest
import torch

from livegesture.data import find_clips, load_clip, write_synthetic_beat2
from livegesture.evaluate import evaluate_model, table_metrics
from livegesture.metrics import face_mse
from livegesture.model import SamplingConfig

from .test_engine import assert_same_motion, model, model_path  # noqa: F401  (fixtures)


def test_evaluate_generates_what_generate_does(model, model_path, tmp_path):  # noqa: F811
    data = tmp_path / "data"
    write_synthetic_beat2(data, n_clips=1, seconds=4.0, seed=3)
    clip = load_clip(find_clips(data)[0])
    b = model.bundle
    assert b.config.sampling != SamplingConfig()  # the demo preset: temperature 0.9, top-p 0.95
    ref = model.generate(clip.audio, seed=2)  # the CLI's and the server's path
    toks = b.model.generate_tokens(torch.from_numpy(clip.audio)[None], seed=2, sampling=b.config.sampling)
    assert_same_motion(b.tokens_to_motion(toks[0]), ref, tol=1e-4)
    res = evaluate_model(model_path, data, ids=[clip.id], seed=2, progress=False)
    n = res["frames"]
    assert res["sampling"] == b.config.sampling.__dict__
    assert res["rows"]["generated"]["l1div"] == pytest.approx(table_metrics([ref[:n]], [clip.audio], None)["l1div"],
                                                              abs=1e-4)
    assert res["rows"]["generated"]["face_mse"] == pytest.approx(face_mse([ref[:n]], [clip.motion[:n]]).value,
                                                                 abs=1e-6)
    # what the old default (temperature 1, top-p 1) gives is another motion
    other = b.model.generate_tokens(torch.from_numpy(clip.audio)[None], seed=2, sampling=SamplingConfig())
    assert not torch.equal(other, toks)
    with pytest.raises(TypeError):  # no silent default any more
        b.model.generate_tokens(torch.from_numpy(clip.audio)[None], seed=2)
