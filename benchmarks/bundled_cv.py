"""Cross-validation of the bundled demo model's training settings on the two real clips (issue 12).

The sample folder has motion for two clips only. Each fold trains the whole recipe of the model
card (tokenizer stages 1-3, experts, fuse; the `demo` preset) on one clip and tests on the other,
both ways; the AR step counts are the settings chosen (a grid: the experts of each step count
trained from scratch, the fuse of each cell from scratch on them, since the cosine schedule
depends on the total steps). The chosen cell is the one with the lowest
mean held-out token NLL of the fuse over both folds; the final model is that cell trained on both
clips. Every figure printed is measured here; the commands are printed as they run.

    python benchmarks/bundled_cv.py --data ../shared/data/beat2 --work runs/cv --phase tokenizers
    python benchmarks/bundled_cv.py --data ../shared/data/beat2 --work runs/cv --phase grid
    python benchmarks/bundled_cv.py --data ../shared/data/beat2 --work runs/cv --phase final

A phase skips every output that already exists, so phases can run apart (e.g. the two folds'
tokenizers on two cores: ``--folds 0`` and ``--folds 1``) and a killed run continues.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

IDS = ("2_scott_0_1_1", "2_scott_0_2_2")


def run(cmd: list[str], log: Path) -> float:
    """Run one CLI command (output to `log`); returns its wall time."""
    print("$ livegesture " + " ".join(cmd[3:]), flush=True)
    t0 = time.perf_counter()
    with open(log, "a") as f:
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT)
    dt = time.perf_counter() - t0
    print(f"  {dt:.0f} s", flush=True)
    return dt


def lg(*args: str) -> list[str]:
    return [sys.executable, "-m", "livegesture", *args]


def train_tokenizer(data: str, out: Path, train_ids: str, log: Path, times: dict) -> None:
    """Stages 1-3 of the model card's recipe on `train_ids` (stage 3 with the preset's boundary loss)."""
    for stage in (1, 2, 3):
        done = out.with_suffix(f".stage{stage}.done")
        if done.exists():
            continue
        times[f"tokenizer_stage{stage}"] = run(lg("train", "tokenizer", "--data", data, "--out", str(out),
                                                  "--region", "all", "--stage", str(stage), "--config", "demo",
                                                  "--train-ids", train_ids, "--device", "cpu"), log)
        done.write_text("")


def train_ar(data: str, tok: Path, out: Path, train_ids: str, experts: int, fuse: int, log: Path,
             times: dict) -> None:
    """Experts then fuse from scratch with the given step counts (the preset otherwise)."""
    if out.exists():
        return
    tmp = out.with_name(out.stem + ".partial.safetensors")
    stale = tmp.with_name(tmp.name + ".work")  # the trainer's checkpoints of a killed run: start again
    if stale.exists():
        shutil.rmtree(stale)
    if tmp.exists():
        tmp.unlink()
    experts_file = out.with_name(f"experts{experts}.safetensors")  # shared by the cells of one experts count
    if not experts_file.exists():
        part = out.with_name(f"experts{experts}.partial.safetensors")
        if part.exists():
            part.unlink()
        times["experts"] = run(lg("train", "experts", "--data", data, "--tokenizer", str(tok), "--out", str(part),
                                  "--config", "demo", "--train-ids", train_ids, "--device", "cpu",
                                  "--set", f"experts.steps={experts}"), log)
        part.rename(experts_file)
    shutil.copyfile(experts_file, tmp)
    if fuse > 0:
        times["fuse"] = run(lg("train", "fuse", "--data", data, "--model", str(tmp), "--device", "cpu",
                               "--set", f"fuse.steps={fuse}", "--half"), log)
    tmp.rename(out)


def figures(model: Path, data: str, test_id: str, other_id: str, seeds: int) -> dict:
    """Held-out NLL (experts, fuse, fuse without audio), the repeat-last-token baseline, and BC /
    L1div of motion generated from the test audio under the published BEAT2 protocol (`evaluate`)."""
    import torch

    from livegesture.bundle import ModelBundle
    from livegesture.data import find_clips, load_clip
    from livegesture.evaluate import evaluate_model
    from livegesture.law import repeat_last_token_nll
    from livegesture.train.ar_stage import heldout_token_nll, make_datasets

    torch.set_num_threads(1)
    b = ModelBundle.load(model)
    held = load_clip(find_clips(data, ids=[test_id])[0])
    other = load_clip(find_clips(data, ids=[other_id])[0])
    _, val = make_datasets(b.stats, b.vocab, [held], [held], b.config)
    with torch.no_grad():
        nll = heldout_token_nll(b, val)
    base = repeat_last_token_nll(b, [held.motion], [other.motion])
    pub = [evaluate_model(str(model), data, ids=[test_id], seed=s, protocol="beat2", progress=False)
           for s in range(seeds)]
    gen = [r["rows"]["generated"] for r in pub]
    gt = pub[0]["rows"]["ground_truth"]
    return {"nll_experts": nll["experts"], "nll_fuse": nll["fuse"], "nll_fuse_no_audio": nll["fuse_no_audio"],
            "nll_baseline": float(np.mean(list(base.values()))),
            "bc": [g["bc"] for g in gen], "l1div": [g["l1div"] for g in gen],
            "gt_bc": gt["bc"], "gt_l1div": gt["l1div"]}


def cell_name(e: int, f: int) -> str:
    return f"e{e}_f{f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--phase", choices=("tokenizers", "grid", "final", "all"), default="all")
    ap.add_argument("--folds", default="0,1", help="which folds to run: 0 = train on the first id, 1 = the second; "
                    "with --phase tokenizers, 'final' also trains the final model's tokenizer (both clips)")
    ap.add_argument("--experts-steps", default="150,600")
    ap.add_argument("--fuse-steps", default="100,400")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", default=None, help="where to copy the final model (default: WORK/final/model.safetensors)")
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    folds = [int(x) for x in a.folds.split(",") if x != "final"]
    final_tok = "final" in a.folds.split(",")
    grid = [(int(e), int(f)) for e in a.experts_steps.split(",") for f in a.fuse_steps.split(",")]
    times: dict = {}
    if a.phase in ("tokenizers", "all"):
        for k in folds:
            d = work / f"fold{k}"
            d.mkdir(exist_ok=True)
            print(f"fold {k}: tokenizer on {IDS[k]}", flush=True)
            train_tokenizer(a.data, d / "tok.safetensors", IDS[k], d / "log.txt", times)
        if final_tok:  # the final tokenizer does not depend on the grid: it can train beside the folds
            (work / "final").mkdir(exist_ok=True)
            print("final: tokenizer on both clips", flush=True)
            train_tokenizer(a.data, work / "final" / "tok.safetensors", ",".join(IDS), work / "final" / "log.txt", times)
    if a.phase in ("grid", "all"):
        for k in folds:
            d = work / f"fold{k}"
            res_path = d / "figures.json"
            res = json.loads(res_path.read_text()) if res_path.exists() else {}
            for e, f in grid:
                name = cell_name(e, f)
                if name in res:
                    continue
                print(f"fold {k} (train {IDS[k]}, test {IDS[1 - k]}): experts {e} steps, fuse {f} steps", flush=True)
                cell_times: dict = {}
                model = d / f"{name}.safetensors"
                train_ar(a.data, d / "tok.safetensors", model, IDS[k], e, f, d / "log.txt", cell_times)
                res[name] = {**figures(model, a.data, IDS[1 - k], IDS[k], a.seeds), "seconds": cell_times}
                res_path.write_text(json.dumps(res, indent=1))
                r = res[name]
                print(f"  held-out NLL experts {r['nll_experts']:.3f} fuse {r['nll_fuse']:.3f} "
                      f"no-audio {r['nll_fuse_no_audio']:.3f} baseline {r['nll_baseline']:.3f}; "
                      f"BC {np.mean(r['bc']):.4f} (GT {r['gt_bc']:.4f}), L1div {np.mean(r['l1div']):.3f} "
                      f"(GT {r['gt_l1div']:.3f})", flush=True)
        best = report(work, grid)
    if a.phase in ("final", "all"):
        if a.phase == "final":
            best = report(work, grid)
        e, f = best
        d = work / "final"
        d.mkdir(exist_ok=True)
        both = ",".join(IDS)
        print(f"final: both clips, experts {e}, fuse {f}", flush=True)
        train_tokenizer(a.data, d / "tok.safetensors", both, d / "log.txt", times)
        model = d / "model.safetensors"
        train_ar(a.data, d / "tok.safetensors", model, both, e, f, d / "log.txt", times)
        if a.out:
            shutil.copyfile(model, a.out)
            print(f"final model copied to {a.out}")
    if times:
        print("wall times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))


def report(work: Path, grid: list[tuple[int, int]]) -> tuple[int, int]:
    """Print the grid (both folds, their mean) and return the cell of the lowest mean fuse NLL."""
    res = [json.loads((work / f"fold{k}" / "figures.json").read_text()) if (work / f"fold{k}" / "figures.json").exists()
           else {} for k in (0, 1)]
    rows = []
    print("cell | fold 0 (train 1_1, test 2_2) NLL fuse / experts / no audio, BC, L1div | fold 1 (train 2_2, test 1_1) "
          "| mean NLL fuse")
    for e, f in grid:
        name = cell_name(e, f)
        if not all(name in r for r in res):
            continue
        cells = [r[name] for r in res]
        mean = float(np.mean([c["nll_fuse"] for c in cells]))
        rows.append((mean, (e, f)))
        print(f"{name} | " + " | ".join(
            f"{c['nll_fuse']:.3f} / {c['nll_experts']:.3f} / {c['nll_fuse_no_audio']:.3f}, BC {np.mean(c['bc']):.4f} "
            f"(GT {c['gt_bc']:.4f}), L1div {np.mean(c['l1div']):.2f} (GT {c['gt_l1div']:.2f})" for c in cells)
              + f" | {mean:.3f}")
    if not rows:
        raise SystemExit("no grid cell has figures for both folds yet: run --phase grid for both folds")
    for k, r in enumerate(res):
        any_cell = next(iter(r.values()))
        print(f"fold {k}: repeat-last-token baseline NLL {any_cell['nll_baseline']:.3f}")
    best = min(rows)[1]
    print(f"chosen: experts {best[0]} steps, fuse {best[1]} steps (lowest mean held-out fuse NLL)")
    (work / "chosen.json").write_text(json.dumps({"experts": best[0], "fuse": best[1], "cell": cell_name(*best),
                                                  "folds": {str(k): {"train": IDS[k], "test": IDS[1 - k]}
                                                            for k in (0, 1)}}))
    return best


if __name__ == "__main__":
    main()
