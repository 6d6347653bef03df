"""Build the six minutes of held-out speech that benchmarks/motion_quality.py scores (one wav).

What it holds, in order, with 0.5 s of silence between parts (the manifest is printed):
- BEAT2 speaker 2 speech without motion in the sample folder: ``2_scott_0_4_4.wav`` (67 s; never
  used to train the bundled demo model);
- ``2_scott_0_2_2.wav`` (62 s; the demo model's test clip: held out for the demo model, but a model
  trained on both sample clips has seen it);
- English speech synthesised with espeak-ng (Debian package ``espeak-ng``; four voices, 150-175
  words per minute) from the nine passages below, written for this benchmark; cut at six minutes.

``2_scott_0_1_1.wav`` is left out: the demo model was trained on it.

    python benchmarks/heldout_speech.py --data ../shared/data/beat2 --out runs/heldout_6min.wav
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

PASSAGES = [
    ("en-us", 160, "Good morning, and thank you all for coming. Today I want to talk about something "
     "that sounds simple but turns out to be surprisingly hard: keeping a project on schedule when "
     "the plan keeps changing underneath you. Most of us have been there. You agree on a date, you "
     "split the work, and two weeks later half of the assumptions are gone. So what do you do? "
     "First, you admit it early. The worst thing you can do is to hope the problem goes away."),
    ("en-gb", 150, "Let me tell you about the first bicycle I ever built. It was a disaster, honestly. "
     "The frame came from a neighbour, the wheels from a scrap yard, and the brakes, well, the brakes "
     "were more of an idea than a machine. I rode it down the hill behind our house exactly once. "
     "I remember the wind, the noise, and then the hedge. But I also remember the feeling that I had "
     "made something move, and that feeling has stayed with me ever since."),
    ("en+m3", 170, "Here is the thing about cooking for a crowd. Nobody remembers whether the sauce "
     "was perfect. They remember whether there was enough, whether it was warm, and whether the host "
     "looked relaxed. So plan the menu backwards. Start with what can be made the day before, then "
     "what needs the oven, and only then the things that must happen at the last minute. Keep those "
     "to one or two. And please, taste everything before it leaves the kitchen."),
    ("en+f2", 155, "When people ask me why I moved to the coast, I usually say it was for the light. "
     "In the morning it comes off the water almost silver, and by evening the whole town turns "
     "orange for about ten minutes. That is partly true. The other part is that I needed a place "
     "where I could walk for an hour without seeing a screen. It took me a year to notice how much "
     "calmer I had become. Now I cannot imagine going back."),
    ("en-us", 175, "Okay, quick update on the numbers. Sales in the north were up about eight percent, "
     "which is better than we expected, mostly because of the new distributor. The south was flat. "
     "Not bad, not great. The real surprise was online: it doubled, and we still do not fully "
     "understand why. My guess is the video campaign, but we need another month of data before "
     "anyone gets too excited. Questions so far? No? Then let us move on."),
    ("en-gb", 165, "I think the most useful thing a teacher ever told me was that being confused is "
     "not a sign that you are failing. It is a sign that you are at the edge of what you know, which "
     "is exactly where learning happens. At the time I did not believe her. I thought clever people "
     "simply understood things. Years later, working with people who really are brilliant, I noticed "
     "they are confused all the time. They are just not embarrassed by it."),
    ("en+m3", 160, "Picture a small harbour just before a storm. The fishing boats are coming in one "
     "after another, the gulls have gone quiet, and someone on the pier is shouting instructions "
     "that nobody can hear over the wind. Ropes are thrown, caught, tied. Within half an hour every "
     "boat is in, the nets are stowed, and the cafe on the corner is full of people in wet coats, "
     "laughing a little too loudly, the way people do when something has gone right."),
    ("en+f2", 150, "So, to sum up. We looked at three options. The first is cheap but slow. The second "
     "is fast but expensive, and it locks us in for five years. The third is somewhere in between, "
     "and it is the one I would recommend, with one condition: that we review it after six months "
     "and are honest about whether it works. If it does not, we switch. That is all from me. Thank "
     "you for your patience, and I am happy to take any questions."),
    ("en-us", 165, "One last story before we finish. A friend of mine spent three summers restoring an "
     "old wooden boat. Every weekend, sanding, painting, replacing planks one at a time. When it was "
     "finally done, she sailed it across the bay, turned around, and sold it the following week. I "
     "asked her why. She said the boat was never the point. The point was learning that she could "
     "finish something that big, slowly, with her own hands."),
]
TARGET_SECONDS = 360.0
GAP_SECONDS = 0.5


def espeak(text: str, voice: str, wpm: int, rate: int) -> np.ndarray:
    from livegesture.data.audio import load_audio

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), text], check=True,
                       capture_output=True)
        return load_audio(wav, rate)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="the BEAT2 sample folder (2_scott_0_4_4.wav, 2_scott_0_2_2.wav)")
    ap.add_argument("--out", required=True, help="wav to write (16 kHz mono float32)")
    args = ap.parse_args()
    import soundfile as sf

    from livegesture.data.audio import SAMPLE_RATE, load_audio

    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not on PATH (Debian: apt-get install espeak-ng)")
    gap = np.zeros(int(GAP_SECONDS * SAMPLE_RATE), np.float32)
    parts: list[np.ndarray] = []
    total = 0.0
    for name in ("2_scott_0_4_4.wav", "2_scott_0_2_2.wav"):
        a = load_audio(Path(args.data) / name, SAMPLE_RATE)
        parts += [a, gap]
        total += (len(a) + len(gap)) / SAMPLE_RATE
        print(f"{total - len(a) / SAMPLE_RATE - GAP_SECONDS:7.1f} s  BEAT2 {name} ({len(a) / SAMPLE_RATE:.1f} s)")
    for i, (voice, wpm, text) in enumerate(PASSAGES):
        if total >= TARGET_SECONDS:
            break
        a = espeak(text, voice, wpm, SAMPLE_RATE)
        peak = np.abs(a).max()
        a = (a * (0.5 / peak if peak > 0 else 1.0)).astype(np.float32)
        print(f"{total:7.1f} s  espeak-ng -v {voice} -s {wpm}, passage {i + 1} ({len(a) / SAMPLE_RATE:.1f} s)")
        parts += [a, gap]
        total += (len(a) + len(gap)) / SAMPLE_RATE
    if total < TARGET_SECONDS:
        raise SystemExit(f"only {total:.1f} s of speech; add passages")
    audio = np.concatenate(parts)[: int(TARGET_SECONDS * SAMPLE_RATE)]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sf.write(args.out, audio, SAMPLE_RATE, subtype="FLOAT")
    print(f"wrote {args.out}: {len(audio) / SAMPLE_RATE:.1f} s")


if __name__ == "__main__":
    main()
