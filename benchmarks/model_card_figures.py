"""Every figure of the bundled model's card (livegesture/assets/MODEL_CARD.md), from one command:

    python benchmarks/model_card_figures.py --data ../shared/data/beat2 [--model MODEL.safetensors]

Runs, and prints with its own command line, each command the card quotes: the cross-validation
table (benchmarks/bundled_cv.py, which must have run), then for each of its two folds at the chosen
settings the tokenizer report and the held-out AR figures on the clip that fold did not train on
(generation through ``livegesture evaluate``'s code, the model file's sampling config), then, for
the bundled model, the motion statistics on speech without motion and the motion quality (foot
slide, contact, root excursion, token-boundary ratio) over six minutes of speech. Rerun it after
retraining the demo model and copy the figures into the card.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path, help="folder with the BEAT2 sample clips")
    ap.add_argument("--model", default=str(ROOT / "livegesture" / "assets" / "demo_model.safetensors"))
    ap.add_argument("--clips", default="2_scott_0_1_1,2_scott_0_2_2", help="the two clips with motion")
    ap.add_argument("--speech-only", default="2_scott_0_4_4", help="a clip with audio and no motion")
    ap.add_argument("--cv", default=Path("runs/cv"), type=Path,
                    help="the cross-validation folder of benchmarks/bundled_cv.py (its two fold models)")
    ap.add_argument("--work", default=Path("runs"), type=Path, help="folder for the six minutes of speech")
    a = ap.parse_args()
    d, m, py = a.data, a.model, sys.executable
    first, second = a.clips.split(",")
    example = ROOT / "livegesture" / "assets" / "example_speech.flac"
    # held-out figures come from the two folds (each trained on one clip, tested on the other) at the
    # chosen settings: the bundled model itself has seen both clips
    chosen = json.loads((a.cv / "chosen.json").read_text())
    commands = [[py, "benchmarks/bundled_cv.py", "--data", d, "--work", a.cv, "--phase", "grid"]]
    for k, (train, test) in enumerate(((first, second), (second, first))):
        fm = a.cv / f"fold{k}" / f"{chosen['cell']}.safetensors"
        commands += [
            [py, "-m", "livegesture", "report", "tokenizer", "--model", fm, "--data", d, "--ids", test],
            [py, "benchmarks/heldout_figures.py", "--model", fm, "--data", d, "--heldout", test,
             "--other", train, "--seeds", "3"],
        ]
    commands += [
        [py, "benchmarks/motion_stats.py", "--model", m, "--audio", example, d / f"{a.speech_only}.wav",
         "--real", d / f"{second}.npz", d / f"{first}.npz", "--seeds", "2"],
        [py, "benchmarks/heldout_speech.py", "--data", d, "--out", a.work / "heldout_6min.wav"],
        [py, "benchmarks/motion_quality.py", "--model", m, "--real", d / f"{first}.npz", d / f"{second}.npz",
         "--audio", a.work / "heldout_6min.wav", "--seeds", "3"],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for cmd in commands:
        cmd = [str(c) for c in cmd]
        print(f"$ {shlex.join(cmd)}", flush=True)
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
        print(flush=True)


if __name__ == "__main__":
    main()
