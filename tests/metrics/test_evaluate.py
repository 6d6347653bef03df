"""Evaluation runner and the metric commands (evaluate-gt, train fgd-extractor)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from livegesture.body import forward_kinematics
from livegesture.cli import app, main
from livegesture.data import find_clips, load_clip, write_synthetic_beat2
from livegesture.metrics import beat_consistency, joint_speed, l1_diversity
from livegesture.metrics.evaluate import evaluate_ground_truth
from tests.body.fake_smplx import write_fake_smplx

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write_synthetic_beat2(out, n_clips=2, seconds=10.0, seed=0)
    return out


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
             *args: str) -> tuple[int, str, str]:
    """The real entry point (``livegesture.cli.main``) in-process: exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["livegesture", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_evaluate_matches_the_metric_functions(synth: Path) -> None:
    r = evaluate_ground_truth(synth, progress=False)
    assert r["clips"] == 2 and r["frames"] == 600 and r["bc_frames"] == 600 - 2 * 120
    assert r["approximate_skeleton"] is True and "approximate" in r["skeleton"]
    assert r["mean_vel_source"] == "mean speed per joint of these clips"
    data = [load_clip(c) for c in find_clips(synth)]
    joints = [forward_kinematics(d.motion, zero_trans=True) for d in data]
    assert r["l1div"] == pytest.approx(l1_diversity(joints))
    mv = np.concatenate([joint_speed(j) for j in joints]).mean(0)
    assert r["bc"] == pytest.approx(beat_consistency(joints, [d.audio for d in data], mean_vel=mv))
    assert 0 < r["bc"] <= 1 and 0 < r["bc_published_indexing"] <= 1
    # an explicit mean-speed array is used as given
    r2 = evaluate_ground_truth(synth, mean_vel=mv * 2, progress=False)
    assert r2["mean_vel_source"] == "given array" and r2["bc"] != r["bc"]


def test_evaluate_with_a_model_file_is_exact(synth: Path, tmp_path: Path) -> None:
    fake = write_fake_smplx(tmp_path / "SMPLX_NEUTRAL.npz")
    r = evaluate_ground_truth(synth, smplx_model=tmp_path, progress=False)
    assert r["approximate_skeleton"] is False and "exact SMPL-X" in r["skeleton"]
    assert r["l1div"] > 0
    assert fake.path.is_file()


def test_cli_no_data_is_one_clear_error(tmp_path: Path, monkeypatch, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run_main(monkeypatch, capsys, "evaluate-gt", "--data", str(empty))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livegesture: error:")
    assert str(empty) in lines[0] and "no BEAT2 clips" in lines[0]
    assert "Traceback" not in err


def test_cli_missing_smplx_model_names_it(synth: Path, tmp_path: Path, monkeypatch,
                                          capsys) -> None:
    code, _, err = run_main(monkeypatch, capsys, "evaluate-gt", "--data", str(synth),
                            "--smplx-model", str(tmp_path / "SMPLX_NEUTRAL.npz"), "--no-progress")
    assert code == 2 and "SMPLX_NEUTRAL.npz: no such SMPL-X model file" in err


def test_console_script_exits_2(tmp_path: Path) -> None:
    """Once through a real process, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "livegesture", "evaluate-gt", "--data",
                        str(tmp_path / "missing")], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [f"livegesture: error: {tmp_path / 'missing'}: "
                                             "no such data folder"]


def test_cli_evaluate_gt_on_real_files(beat2_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "gt.json"
    res = CliRunner().invoke(app, ["evaluate-gt", "--data", str(beat2_dir), "--no-progress",
                                   "--json", str(out)])
    print(res.output)
    assert res.exit_code == 0, res.output
    assert "BC" in res.output and "L1div" in res.output
    assert "joints: approximate neutral skeleton" in res.output
    r = json.loads(out.read_text())
    assert r["clips"] == 2 and r["frames"] == 1906 + 1804
    assert r["mean_vel_source"].endswith("mean_vel_smplxflame_30.npy")
    # figures of real speech gestures (approximate skeleton): BEAT2 ground truth is
    # reported at BC 0.70, L1div 11.97 with the published code and the real model
    assert 0.25 < r["bc"] < 0.6
    assert 0.55 < r["bc_published_indexing"] < 0.85
    assert 8 < r["l1div"] < 18


def test_cli_train_fgd_extractor(synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "fgd.safetensors"
    res = CliRunner().invoke(app, ["train", "fgd-extractor", "--data", str(synth), "--out",
                                   str(out), "--steps", "3", "--batch-size", "2", "--window",
                                   "32", "--device", "cpu", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert out.is_file() and "trained on 2 clip(s), 600 frames" in res.output
