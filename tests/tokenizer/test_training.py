"""The tokenizer training commands on synthetic BEAT2-format data (tiny settings)."""

import json

import pytest
from typer.testing import CliRunner

from livegesture.cli import app
from livegesture.data import write_synthetic_beat2
from livegesture.errors import CheckpointError, ConfigError
from livegesture.tokenizer.io import load_tokenizer
from livegesture.train.config import load_experiment
from livegesture.train.tokenizer_stage import train_tokenizer

TINY = {"tokenizer.hidden": 32, "tokenizer.latent_dim": 16, "tokenizer.code_dim": 8,
        "tokenizer.codebook_size": 36, "model.codebook_size": 36, "tokenizer_stage1.steps": 40, "tokenizer_stage1.batch_size": 8,
        "tokenizer_stage1.checkpoint_every": 20, "tokenizer_stage2.steps": 20,
        "tokenizer_stage2.batch_size": 8, "tokenizer_stage1.device": "cpu",
        "tokenizer_stage2.device": "cpu", "tokenizer_stage3.steps": 20, "tokenizer_stage3.batch_size": 8,
        "tokenizer_stage3.device": "cpu"}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    write_synthetic_beat2(root, n_clips=4, seconds=8, seed=1)
    return root


def test_two_stages_write_a_loadable_file_and_resume(synth, tmp_path):
    cfg = load_experiment("demo", TINY)
    out = tmp_path / "tok.safetensors"
    with pytest.raises(ConfigError, match="run stage 1 first"):
        train_tokenizer(synth, out, cfg, region="upper", stage=2, progress=False)
    r1 = train_tokenizer(synth, out, cfg, region="upper", stage=1, progress=False)
    info = r1["regions"]["upper"]
    assert info["last_loss"] < info["first_loss"]
    assert r1["train_clips"] == ["2_scott_0_1_1", "2_scott_0_2_2"]  # split CSV: train only
    assert r1["val_clips"] == ["2_scott_0_3_3"]
    # the same command again resumes at the last step: nothing left to do, same file
    again = train_tokenizer(synth, out, cfg, region="upper", stage=1, progress=False)
    assert again["regions"]["upper"]["resumed"]
    train_tokenizer(synth, out, cfg, region="upper", stage=2, progress=False)
    tok, stats, meta = load_tokenizer(out)
    assert meta["stages"] == {"upper": 2} and meta["train_clips"] == r1["train_clips"]
    assert set(stats.mean) == {"upper", "hands", "lower", "face"}
    with pytest.raises(ConfigError, match="region hands has not finished stage 1"):
        train_tokenizer(synth, out, cfg, region="hands", stage=2, progress=False)
    other = load_experiment("demo", {**TINY, "tokenizer.hidden": 48})
    with pytest.raises(ConfigError, match="different tokenizer config"):
        train_tokenizer(synth, out, other, region="upper", stage=1, progress=False)


def test_cli_train_and_report(synth, tmp_path):
    runner = CliRunner()
    out = tmp_path / "t.safetensors"
    sets = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]
    for stage in ("1", "2"):
        res = runner.invoke(app, ["train", "tokenizer", "--data", str(synth), "--out", str(out),
                                  "--region", "face", "--stage", stage, *sets])
        assert res.exit_code == 0, res.output
        assert "face" in res.output and "wrote" in res.output
    js = tmp_path / "rep.json"
    res = runner.invoke(app, ["report", "tokenizer", "--model", str(out), "--data", str(synth),
                              "--json", str(js)])
    assert res.exit_code == 0, res.output
    rep = json.loads(js.read_text())
    assert rep["clips"] == ["2_scott_0_3_3", "2_scott_0_4_4"]  # not the training clips
    face = rep["regions"]["face"]
    assert {"mean_pose", "stage1", "stage2", "codebook"} <= set(face)
    assert face["stage2"]["expr_l1"] > 0 and 1 <= face["codebook"]["perplexity"] <= 32


def test_not_a_model_file(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_tokenizer(bad)


def test_stage2_rerun_with_other_codebook_settings_keeps_stage1(synth, tmp_path):
    import torch

    cfg = load_experiment("demo", {**TINY, "data.tokenizer_stride_frames": 4})  # windows at 4-frame steps
    out = tmp_path / "tok.safetensors"
    train_tokenizer(synth, out, cfg, region="all", stage=1, progress=False)
    train_tokenizer(synth, out, cfg, region="hands", stage=2, progress=False)
    before, _, _ = load_tokenizer(out)
    pair = load_experiment("demo", {**TINY, "data.tokenizer_stride_frames": 4, "tokenizer.codebook_size": 49,
                                    "model.codebook_size": 49, "tokenizer.pair_regions": ["hands"],
                                    "model.pair_head_regions": ["hands"]})
    train_tokenizer(synth, out, pair, region="hands", stage=2, progress=False)
    tok, _, meta = load_tokenizer(out)
    assert tok.cfg == pair.tokenizer and tok["hands"].quantizer.num_codes == 49
    # the other regions go back to 'stage 1 done' (their codebooks no longer match the config)
    assert meta["stages"] == {"upper": 1, "hands": 2, "lower": 1, "face": 1}
    for r in ("upper", "hands"):
        for a, b in zip(before[r].decoder.state_dict().values(), tok[r].decoder.state_dict().values()):
            assert torch.equal(a, b)
    stage1_change = load_experiment("demo", {**TINY, "tokenizer.codebook_size": 49, "model.codebook_size": 49,
                                             "tokenizer.latent_dim": 12})
    with pytest.raises(ConfigError, match="different tokenizer config"):
        train_tokenizer(synth, out, stage1_change, region="hands", stage=2, progress=False)


def test_stage3_fine_tunes_the_decoder_on_the_tokens_only(synth, tmp_path):
    import numpy as np
    import torch

    from livegesture.data import WindowDataset, find_clips, load_clip, training_features
    from livegesture.tokenizer.report import boundary_jump

    # without the preset's boundary loss, which trades some reconstruction error for smooth joins
    cfg = load_experiment("demo", {**TINY, "tokenizer_stage1.steps": 150, "tokenizer_stage2.steps": 60,
                                   "tokenizer_stage3.steps": 150, "tokenizer_stage3.lr": 0.002,
                                   "tokenizer.finetune_boundary_weight": 0.0})
    out = tmp_path / "tok.safetensors"
    with pytest.raises(ConfigError, match="run stage 1 first"):
        train_tokenizer(synth, out, cfg, region="upper", stage=3, progress=False)
    train_tokenizer(synth, out, cfg, region="upper", stage=1, progress=False)
    with pytest.raises(ConfigError, match="region upper has not finished stage 2"):
        train_tokenizer(synth, out, cfg, region="upper", stage=3, progress=False)
    train_tokenizer(synth, out, cfg, region="upper", stage=2, progress=False)
    before, stats, _ = load_tokenizer(out)
    clip = load_clip(find_clips(synth, ids=["2_scott_0_1_1"])[0]).motion
    x = torch.from_numpy(stats.normalize("upper", training_features(clip[:len(clip) // 4 * 4])["upper"]))[None]

    def jump_and_error(tok):
        with torch.no_grad():
            ids = tok["upper"].encode(x)
            rec = tok["upper"].decode(ids)
        return ids, boundary_jump([rec[0].numpy()]), float((rec - x).abs().mean())

    res = train_tokenizer(synth, out, cfg, region="upper", stage=3, progress=False)["regions"]["upper"]
    assert res["last_loss"] < res["first_loss"]
    after, _, meta = load_tokenizer(out)
    assert meta["stages"] == {"upper": 3}
    ids0, jump0, err0 = jump_and_error(before)
    ids1, jump1, err1 = jump_and_error(after)
    assert torch.equal(ids0, ids1)  # the tokens are those of stage 2
    sd0, sd1 = before["upper"].state_dict(), after["upper"].state_dict()
    for k in sd0:
        same = torch.equal(sd0[k], sd1[k])
        assert same != k.startswith("decoder."), k  # the decoder alone changed
    real = boundary_jump([x[0].numpy()])
    assert jump1 < jump0 and abs(jump1 - real) < abs(jump0 - real)  # closer to real motion's joins
    assert err1 < err0
    # new codebooks on these fine-tuned decoders are refused
    pair = load_experiment("demo", {**TINY, "tokenizer.codebook_size": 49, "model.codebook_size": 49})
    with pytest.raises(ConfigError, match="fine-tuned on the old codebook"):
        train_tokenizer(synth, out, pair, region="upper", stage=2, progress=False)
    # other stage-3 loss weights continue on the same file
    w = load_experiment("demo", {**TINY, "tokenizer.finetune_acceleration_weight": 0.0, "tokenizer_stage3.steps": 30})
    train_tokenizer(synth, out, w, region="upper", stage=3, progress=False)
    assert load_tokenizer(out)[0].cfg.finetune_acceleration_weight == 0.0
    b = load_experiment("demo", {**TINY, "tokenizer.finetune_boundary_weight": 2.0, "tokenizer_stage3.steps": 30})
    train_tokenizer(synth, out, b, region="upper", stage=3, progress=False)
    assert load_tokenizer(out)[0].cfg.finetune_boundary_weight == 2.0
    assert np.isfinite(jump1)


def test_stage3_fine_tunes_the_decoders_inside_a_model_file(synth, tmp_path):
    import torch

    from livegesture.bundle import ModelBundle
    from livegesture.modelio import load_model_file

    cfg = load_experiment("demo", {**TINY, "model.dim": 16, "model.heads": 2, "model.audio.dim": 16})
    tok_path = tmp_path / "tok.safetensors"
    for stage in (1, 2):
        train_tokenizer(synth, tok_path, cfg, region="all", stage=stage, progress=False)
    tok, stats, meta = load_tokenizer(tok_path)
    model_path = tmp_path / "model.safetensors"
    ModelBundle.create(cfg, tok, stats, tokenizer_stages=meta["stages"]).save(model_path, half=True)
    before = ModelBundle.load(model_path)
    with pytest.raises(ConfigError, match="only stage 3"):
        train_tokenizer(synth, model_path, cfg, region="upper", stage=2, progress=False)
    b3 = load_experiment("demo", {**TINY, "model.dim": 16, "model.heads": 2, "model.audio.dim": 16,
                                  "tokenizer.finetune_boundary_weight": 5.0, "cleanup.handover.boundary_weight": 0.2})
    train_tokenizer(synth, model_path, b3, region="upper", stage=3, progress=False)
    after = ModelBundle.load(model_path)
    assert load_model_file(model_path)[1]["weights_dtype"] == "float16"
    assert after.stages["tokenizer"]["upper"] == 3 and after.stages["tokenizer"]["hands"] == 2
    assert after.config.tokenizer.finetune_boundary_weight == 5.0
    assert after.config.cleanup.handover.boundary_weight == 0.2
    for k, v in before.model.state_dict().items():
        assert torch.equal(v, after.model.state_dict()[k]), k  # the AR model is untouched
    sd0, sd1 = before.tokenizer.state_dict(), after.tokenizer.state_dict()
    changed = {k for k in sd0 if not torch.equal(sd0[k], sd1[k])}
    assert changed and all(k.startswith("regions.upper.decoder.") for k in changed)
