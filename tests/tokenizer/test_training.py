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
        "tokenizer_stage2.device": "cpu"}


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
