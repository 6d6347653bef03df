"""Every figure of the bundled model's card (livegesture/assets/MODEL_CARD.md), from one command:

    python benchmarks/model_card_figures.py --data ../shared/data/beat2 [--model MODEL.safetensors]

Runs, and prints with its own command line, each command the card quotes: the tokenizer report,
the held-out AR figures (generation through ``livegesture evaluate``'s code, the model file's
sampling config), the motion statistics and the motion quality (foot slide, contact, root
excursion, token-boundary ratio) over six minutes of held-out speech. Rerun it after
retraining the demo model and copy the figures into the card.
"""

from __future__ import annotations

import argparse
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
    ap.add_argument("--heldout", default="2_scott_0_2_2", help="the test clip (never trained on)")
    ap.add_argument("--train", default="2_scott_0_1_1", help="the training clip")
    ap.add_argument("--speech-only", default="2_scott_0_4_4", help="a clip with audio and no motion")
    ap.add_argument("--work", default=Path("runs"), type=Path, help="folder for the six minutes of held-out speech")
    a = ap.parse_args()
    d, m, py = a.data, a.model, sys.executable
    example = ROOT / "livegesture" / "assets" / "example_speech.flac"
    commands = [
        [py, "-m", "livegesture", "report", "tokenizer", "--model", m, "--data", d, "--ids", a.heldout],
        [py, "benchmarks/heldout_figures.py", "--model", m, "--data", d, "--heldout", a.heldout,
         "--other", a.train, "--seeds", "3"],
        [py, "benchmarks/motion_stats.py", "--model", m, "--audio", example, d / f"{a.heldout}.wav",
         d / f"{a.speech_only}.wav", "--real", d / f"{a.heldout}.npz", d / f"{a.train}.npz", "--seeds", "2"],
        [py, "benchmarks/heldout_speech.py", "--data", d, "--out", a.work / "heldout_6min.wav"],
        [py, "benchmarks/motion_quality.py", "--model", m, "--real", d / f"{a.train}.npz", d / f"{a.heldout}.npz",
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
