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


def test_strict_protocol_matches_the_metric_functions(synth: Path) -> None:
    r = evaluate_ground_truth(synth, protocol="strict", progress=False)
    assert r["clips"] == ["2_scott_0_1_1", "2_scott_0_2_2"] and r["frames"] == 600
    assert r["protocol"]["name"] == "strict" and r["protocol"]["comparable_with_published"] is False
    assert "approximate" in r["skeleton"] and "not comparable" in r["mean_vel"]
    data = [load_clip(c) for c in find_clips(synth)]
    joints = [forward_kinematics(d.motion, zero_trans=True) for d in data]
    gt = r["rows"]["ground_truth"]
    assert gt["l1div"] == pytest.approx(l1_diversity(joints))
    mv = np.concatenate([joint_speed(j) for j in joints]).mean(0)
    assert gt["bc"] == pytest.approx(beat_consistency(joints, [d.audio for d in data], mean_vel=mv))
    assert 0 < gt["bc"] <= 1
    # an explicit mean-speed array is used as given
    r2 = evaluate_ground_truth(synth, protocol="strict", mean_vel=mv * 2, progress=False)
    assert r2["mean_vel"] == "given array" and r2["rows"]["ground_truth"]["bc"] != gt["bc"]


def test_protocols_differ_and_name_themselves(synth: Path) -> None:
    rs = {p: evaluate_ground_truth(synth, protocol=p, progress=False) for p in ("beat2", "evaltools", "strict")}
    assert {p: r["protocol"]["name"] for p, r in rs.items()} == {p: p for p in rs}
    assert rs["beat2"]["frames"] == 600  # 10 s clips: whole seconds already
    assert len({round(r["rows"]["ground_truth"]["bc"], 9) for r in rs.values()}) == 3
    # evaltools zeroes the root orientation before FK, the others do not
    assert rs["beat2"]["rows"]["ground_truth"]["l1div"] == pytest.approx(rs["strict"]["rows"]["ground_truth"]["l1div"])
    assert rs["evaltools"]["rows"]["ground_truth"]["l1div"] != rs["beat2"]["rows"]["ground_truth"]["l1div"]


def test_evaluate_with_a_model_file_is_exact(synth: Path, tmp_path: Path) -> None:
    fake = write_fake_smplx(tmp_path / "SMPLX_NEUTRAL.npz")
    r = evaluate_ground_truth(synth, smplx_model=tmp_path, progress=False)
    assert "exact SMPL-X" in r["skeleton"] and "mean hand pose" in r["skeleton"]
    assert r["rows"]["ground_truth"]["l1div"] > 0
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
    assert res.exit_code == 0, res.output
    for label in ("protocol: beat2", "skeleton: approximate neutral skeleton", "extractor: none",
                  "BC mean speeds: "):
        assert label in res.output
    r = json.loads(out.read_text())
    assert r["clips"] == ["2_scott_0_1_1", "2_scott_0_2_2"] and r["frames"] == 1890 + 1800  # whole seconds
    assert r["mean_vel"].endswith("mean_vel_smplxflame_30.npy")
    gt = r["rows"]["ground_truth"]
    assert isinstance(gt["bc"], float) and isinstance(gt["l1div"], float)
    # real speech gestures, approximate skeleton: BEAT2 ground truth is reported at BC 0.70, L1div
    # 11.97 with the published code and the real SMPL-X model
    assert 0.55 < gt["bc"] < 0.85 and 8 < gt["l1div"] < 18


def test_cli_unknown_protocol_is_one_line(synth: Path, monkeypatch, capsys) -> None:
    code, _, err = run_main(monkeypatch, capsys, "evaluate-gt", "--data", str(synth), "--protocol", "emage")
    assert code == 2 and err.strip() == ("livegesture: error: unknown protocol 'emage'; use one of beat2, "
                                         "evaltools, strict")


def test_cli_train_fgd_extractor(synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "fgd.safetensors"
    res = CliRunner().invoke(app, ["train", "fgd-extractor", "--data", str(synth), "--out",
                                   str(out), "--steps", "3", "--batch-size", "2", "--window",
                                   "32", "--device", "cpu", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert out.is_file() and "trained on 2 clip(s), 600 frames" in res.output
