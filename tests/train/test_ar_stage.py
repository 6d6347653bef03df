"""The AR model's training stages and `train all` on synthetic data (tiny sizes)."""

import pytest
from typer.testing import CliRunner

from livegesture.bundle import ModelBundle
from livegesture.cli import app
from livegesture.data import write_synthetic_beat2
from livegesture.errors import ConfigError
from livegesture.train.ar_stage import heldout_token_nll, make_datasets, train_model_stage
from livegesture.train.config import load_experiment
from livegesture.data import load_clip
from livegesture.train.data import select_clip_files

TINY = {
    "tokenizer.hidden": 32, "tokenizer.latent_dim": 16, "tokenizer.code_dim": 8,
    "tokenizer.codebook_size": 36, "model.codebook_size": 36, "model.dim": 32, "model.heads": 2,
    "model.expert_blocks": 1, "model.fuse_blocks": 1, "model.window_tokens": 8,
    "model.audio": {"dim": 32, "dilations": [1, 2]}, "masking.ramp_steps": 10,
    "data.window_frames": 32, "data.audio_context_frames": 12,
    **{f"{s}.{k}": v for s in ("tokenizer_stage1", "tokenizer_stage2", "tokenizer_stage3", "experts", "fuse")
       for k, v in (("steps", 30), ("batch_size", 8), ("device", "cpu"), ("checkpoint_every", 15),
                    ("warmup_steps", 5))},
    "experts.lr": 0.003, "fuse.lr": 0.003,
}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    write_synthetic_beat2(root, n_clips=4, seconds=10, seed=2)
    return root


@pytest.fixture(scope="module")
def trained(synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "m.safetensors"
    res = CliRunner().invoke(app, ["train", "all", "--data", str(synth), "--out", str(out),
                                   *[x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_train_all_writes_a_self_contained_model(trained):
    out, output = trained
    assert "experts: loss" in output and "fuse: loss" in output
    b = ModelBundle.load(out)
    assert b.stages["experts"] and b.stages["fuse"]
    assert b.stages["tokenizer"] == {r: 3 for r in ("upper", "hands", "lower", "face")}  # decoders fine-tuned
    assert "tokenizer_stage3 upper" in output
    assert b.config.model.dim == 32 and b.meta["train_clips"] == ["2_scott_0_1_1", "2_scott_0_2_2"]
    assert set(b.meta["versions"]) >= {"livegesture", "torch"}


@pytest.mark.parametrize("residual", [False, True], ids=["fuse", "residual-fuse"])
def test_stage_losses_fall_and_heldout_nll_is_finite(synth, tmp_path, residual):
    over = {**TINY, "experts.steps": 60, "fuse.steps": 40, "model.fuse_residual": residual}
    if residual:  # it starts at the experts' loss, and UGM's ramp makes its task harder as it trains
        over.update({"masking.max_ratio": 0.0, "masking.region_prob": 0.0})  # (demo model: 1.34 -> 1.60)
    cfg = load_experiment("demo", over)
    from livegesture.train.tokenizer_stage import train_tokenizer

    tok = tmp_path / "tok.safetensors"
    for s in (1, 2):
        train_tokenizer(synth, tok, cfg, "all", s, progress=False)
    out = tmp_path / "m.safetensors"
    with pytest.raises(ConfigError, match="train the experts first"):
        train_model_stage(synth, out, None, "fuse", progress=False)
    e = train_model_stage(synth, out, cfg, "experts", tok, progress=False)
    assert e["last_loss"] < e["first_loss"]
    f = train_model_stage(synth, out, None, "fuse", progress=False)
    assert f["last_loss"] < f["first_loss"]
    b = ModelBundle.load(out)
    val = [load_clip(f) for f in select_clip_files(synth, cfg.data, "val")]
    _, val_set = make_datasets(b.stats, b.vocab, val, val, cfg)
    nll = heldout_token_nll(b, val_set)
    assert set(nll) == {"experts", "fuse", "fuse_no_audio"}
    assert all(0 < v < 10 for v in nll.values())


def test_decode_generated_tokens_to_motion(trained):
    import torch

    b = ModelBundle.load(trained[0])
    from livegesture.data import synthetic_audio

    audio, _ = synthetic_audio(2.0, seed=5)
    toks = b.model.generate_tokens(torch.from_numpy(audio)[None], seed=0, sampling=b.config.sampling)
    m = b.tokens_to_motion(toks[0])
    assert len(m) == toks.shape[-1] * 4 == 60 - 60 % 4
    assert m.poses.shape == (len(m), 55, 3)


def test_evaluate_prints_the_table(trained, synth, tmp_path):
    import json

    js = tmp_path / "e.json"
    res = CliRunner().invoke(app, ["evaluate", "--model", str(trained[0]), "--data", str(synth),
                                   "--json", str(js)])
    assert res.exit_code == 0, res.output
    out = json.loads(js.read_text())
    assert out["clips"] == ["2_scott_0_4_4"]  # the split CSV's test clip
    gen, gt = out["rows"]["generated"], out["rows"]["ground_truth"]
    assert gen["l1div"] > 0 and gt["l1div"] > 0 and gen["face_mse"] > 0
    assert "generated" in res.output and "ground_truth" in res.output and "approximate" in res.output


def test_evaluation_commands_take_a_cache(trained, synth, tmp_path):
    """`evaluate` and `report tokenizer` on a prepared cache print the folder's figures."""
    import json

    from livegesture.data.prepare import prepare_cache

    assert (trained[0].parent / "m.safetensors.work" / "cache" / "index.json").is_file()  # train all made one
    cache = prepare_cache(synth, tmp_path / "cache", workers=1, progress=False).root
    rows = []
    for data in (synth, cache):
        js = tmp_path / "e.json"
        res = CliRunner().invoke(app, ["evaluate", "--model", str(trained[0]), "--data", str(data), "--json", str(js)])
        assert res.exit_code == 0, res.output
        rows.append(json.loads(js.read_text())["rows"])
        res = CliRunner().invoke(app, ["report", "tokenizer", "--model", str(trained[0]), "--data", str(data),
                                       "--json", str(js)])
        assert res.exit_code == 0, res.output
        rows.append(json.loads(js.read_text())["regions"])
    assert rows[0] == rows[2] and rows[1] == rows[3]


def test_half_precision_bundle_is_smaller_and_decodes_like_float32(trained, tmp_path):
    import numpy as np
    import torch

    out = trained[0]
    b = ModelBundle.load(out)
    half = b.save(tmp_path / "half.safetensors", half=True)
    assert half.stat().st_size < 0.6 * out.stat().st_size
    h = ModelBundle.load(half)
    assert all(t.dtype == torch.float32 for t in [*h.model.parameters(), *h.tokenizer.parameters()])
    assert "weights_dtype" not in h.meta and h.stages == b.stages
    K = b.config.model.codebook_size
    tokens = torch.randint(0, K, (4, 12), generator=torch.Generator().manual_seed(0))
    ma, mb = b.tokens_to_motion(tokens), h.tokens_to_motion(tokens)
    assert np.abs(ma.poses - mb.poses).max() < 2e-2  # radians
    assert np.abs(ma.poses - mb.poses).mean() < 2e-3
    assert not np.array_equal(ma.poses, mb.poses)  # really rounded
    from livegesture.data import synthetic_audio

    audio = torch.from_numpy(synthetic_audio(2.0, seed=5)[0])[None]
    with torch.no_grad():
        la = b.model.teacher_forced(tokens[None, :, :10], audio[:, :10 * 4 * 1600 // 3 + 1600])["fused"]
        lb = h.model.teacher_forced(tokens[None, :, :10], audio[:, :10 * 4 * 1600 // 3 + 1600])["fused"]
    pa, pb = la.softmax(-1), lb.softmax(-1)
    assert (pa - pb).abs().sum(-1).max() < 0.05  # total variation of the token distributions


def test_cli_half_writes_float16_weights(trained, synth, tmp_path):
    import shutil

    from safetensors import safe_open

    src = trained[0]
    out = tmp_path / "m.safetensors"
    shutil.copy(src, out)
    shutil.copytree(src.with_name(src.name + ".work"), out.with_name(out.name + ".work"))
    res = CliRunner().invoke(app, ["train", "fuse", "--data", str(synth), "--model", str(out), "--half"])
    assert res.exit_code == 0, res.output
    assert "float16 weights" in res.output and out.stat().st_size < 0.6 * src.stat().st_size
    with safe_open(str(out), framework="pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys() if k.startswith("model.")}
    assert "F16" in dtypes and "F32" not in dtypes
    assert ModelBundle.load(out).stages == ModelBundle.load(src).stages


def test_report_tokenizer_reads_the_tokenizer_inside_a_model_file(trained, synth):
    res = CliRunner().invoke(app, ["report", "tokenizer", "--model", str(trained[0]), "--data", str(synth)])
    assert res.exit_code == 0, res.output
    assert "codebook: perplexity" in res.output and "below the mean pose" in res.output


def test_cli_fuse_set_changes_only_the_fuse_settings(trained, synth, tmp_path):
    import shutil

    src = trained[0]
    out = tmp_path / "m.safetensors"
    shutil.copy(src, out)
    before = ModelBundle.load(src).config
    # another experts setting: refused with one line, the file untouched
    res = CliRunner().invoke(app, ["train", "fuse", "--data", str(synth), "--model", str(out),
                                   "--set", "experts.steps=3"])
    # (the entry point prints a LiveGestureError as one line with exit 2; CliRunner shows the exception)
    assert res.exit_code != 0 and "fuse.* / masking.*" in str(res.exception)
    assert out.read_bytes() == src.read_bytes()
    steps = before.fuse.steps + 2  # the stage's checkpoint is not copied: it trains from the experts
    res = CliRunner().invoke(app, ["train", "fuse", "--data", str(synth), "--model", str(out),
                                   "--set", f"fuse.steps={steps}", "--set", "masking.max_ratio=0.2"])
    assert res.exit_code == 0, res.output
    after = ModelBundle.load(out).config
    assert after.fuse.steps == steps and after.masking.max_ratio == 0.2
    assert after.experts == before.experts and after.model == before.model and after.data == before.data


def test_ar_windows_reach_past_the_attention_window(synth, tmp_path):
    """Training windows of the AR stages default to twice the attention window; a shorter one than
    the window + 1 token is refused before the tokenizers train (streams attend over every position)."""
    cfg = load_experiment("demo", TINY)
    assert cfg.data.ar_window_frames == 0 and cfg.ar_window_frames == 2 * 4 * cfg.model.window_tokens == 64
    clips = [load_clip(f) for f in select_clip_files(synth, cfg.data, "train")]
    train, _ = make_datasets(None, None, clips, [], cfg)
    assert train[0]["upper"].shape[0] == 64 and train.window_frames == 64
    out = tmp_path / "m.safetensors"
    res = CliRunner().invoke(app, ["train", "all", "--data", str(synth), "--out", str(out),
                                   *[x for k, v in {**TINY, "data.ar_window_frames": 32}.items()
                                     for x in ("--set", f"{k}={v}")]])
    # (the entry point prints a LiveGestureError as one line with exit 2; CliRunner shows the exception)
    assert isinstance(res.exception, ConfigError)
    assert "data.ar_window_frames 32 is too short for model.window_tokens 8" in str(res.exception)
    assert not out.with_name(out.name + ".work").exists()
    assert load_experiment("demo", {**TINY, "data.ar_window_frames": 36}).ar_window_frames == 36  # window + 1 token


def _from_before_ar_windows(path, tmp_path):
    """A copy of model file `path` as written before data.ar_window_frames existed."""
    from livegesture.bundle import KIND
    from livegesture.modelio import load_model_file, save_model_file

    tensors, meta = load_model_file(path, kind=KIND)
    del meta["config"]["data"]["ar_window_frames"]
    old = tmp_path / "old.safetensors"
    save_model_file(old, tensors, KIND, meta)
    return old


def test_model_files_from_before_ar_windows_record_their_training_windows(trained, tmp_path):
    """A file written before data.ar_window_frames existed trained its AR stages on data.window_frames."""
    b = ModelBundle.load(_from_before_ar_windows(trained[0], tmp_path))
    assert b.config.ar_window_frames == b.config.data.window_frames == 32
    assert ModelBundle.load(trained[0]).config.ar_window_frames == 64


def test_a_model_file_with_too_short_windows_is_not_trained_further(trained, synth, tmp_path):
    """A file from before the rule (windows shorter than its attention window + 1 token) cannot be
    trained further: its experts never saw the positions a stream uses; the refusal names the file."""
    old = _from_before_ar_windows(trained[0], tmp_path)  # windows of data.window_frames = 32 frames < 36
    before = old.read_bytes()
    res = CliRunner().invoke(app, ["train", "fuse", "--data", str(synth), "--model", str(old)])
    assert isinstance(res.exception, ConfigError)
    assert str(old) in str(res.exception) and "train a new model file" in str(res.exception)
    assert old.read_bytes() == before
