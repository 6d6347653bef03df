"""`livegesture evaluate` and `livegesture report tokenizer` as a user runs them: the bundled model by
default, --out-dir, the JSON rows, the labels of every table, and refusals before any work."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from livegesture.assets import demo_model_path
from livegesture.cli import app, main
from livegesture.data import find_clips, load_clip, write_synthetic_beat2
from livegesture.motion import Motion

CLIP = "2_scott_0_1_1"


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write_synthetic_beat2(out, n_clips=2, seconds=8.0, seed=1)
    return out


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["livegesture", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_evaluate_defaults_to_the_bundled_model(synth: Path, tmp_path: Path) -> None:
    out, js = tmp_path / "out", tmp_path / "r.json"
    res = CliRunner().invoke(app, ["evaluate", "--data", str(synth), "--ids", CLIP, "--out-dir", str(out),
                                   "--json", str(js), "--no-progress"])
    assert res.exit_code == 0, res.output
    r = json.loads(js.read_text())
    assert Path(r["model"]) == demo_model_path()
    # every table names its protocol, skeleton and extractor
    for label in ("protocol: beat2", "skeleton: approximate", "extractor: none", "BC mean speeds: the clips' own",
                  "face: expression-coefficient"):
        assert label in res.output
    assert r["protocol"]["name"] == "beat2" and "approximate" in r["skeleton"] and r["extractor"].startswith("none")
    # rows are numbers; no FGD without an extractor
    assert set(r["rows"]) == {"generated", "ground_truth"}
    assert set(r["rows"]["generated"]) == {"bc", "l1div", "face_mse", "lvd"}
    assert all(isinstance(v, float) for row in r["rows"].values() for v in row.values())
    # --out-dir: the scored frames of every generated clip, BEAT2 layout, with the clip's betas
    m = Motion.load(out / f"{CLIP}.npz")
    gt = load_clip(find_clips(synth, ids=[CLIP])[0]).motion
    assert len(m) == r["frames"] == 240  # 8 s: whole seconds (beat2)
    np.testing.assert_array_equal(m.betas, gt.betas)
    assert f"wrote 1 generated clip(s) to {out.resolve()}" in res.output


def test_the_same_clip_scores_differently_under_each_protocol(synth: Path, tmp_path: Path) -> None:
    bcs = {}
    for p in ("beat2", "evaltools", "strict"):
        js = tmp_path / f"{p}.json"
        res = CliRunner().invoke(app, ["evaluate", "--data", str(synth), "--ids", CLIP, "--protocol", p,
                                       "--json", str(js), "--no-progress"])
        assert res.exit_code == 0, res.output
        r = json.loads(js.read_text())
        assert r["protocol"]["name"] == p and f"protocol: {p}" in res.output
        bcs[p] = r["rows"]["ground_truth"]["bc"]
    assert len({round(v, 9) for v in bcs.values()}) == 3


@pytest.mark.parametrize("where", ["data", "motion"])
def test_out_dir_in_the_data_folder_is_refused(synth: Path, monkeypatch, capsys, where: str) -> None:
    target = synth if where == "data" else synth / "smplxflame_30"
    before = sorted(p.name for p in target.iterdir())
    code, _, err = run_main(monkeypatch, capsys, "evaluate", "--data", str(synth), "--ids", CLIP,
                            "--out-dir", str(target), "--no-progress")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "that is the data folder" in lines[0]
    assert sorted(p.name for p in target.iterdir()) == before


def test_bad_mean_vel_and_json_paths_fail_first(synth: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    code, _, err = run_main(monkeypatch, capsys, "evaluate", "--data", str(synth), "--ids", CLIP,
                            "--mean-vel", str(tmp_path / "nope.npy"))
    assert code == 2 and err.strip() == f"livegesture: error: {tmp_path / 'nope.npy'}: no such mean joint speed file"
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run_main(monkeypatch, capsys, "evaluate", "--data", str(synth), "--ids", CLIP,
                            "--json", str(blocker / "r.json"))
    assert code == 2 and "--json" in err and len(err.strip().splitlines()) == 1


def test_report_tokenizer_defaults_to_the_bundled_model(synth: Path, tmp_path: Path) -> None:
    js = tmp_path / "tok.json"
    res = CliRunner().invoke(app, ["report", "tokenizer", "--data", str(synth), "--ids", CLIP, "--json", str(js)])
    assert res.exit_code == 0, res.output
    r = json.loads(js.read_text())
    assert Path(r["model"]) == demo_model_path() and r["clips"] == [CLIP]
