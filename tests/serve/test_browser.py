"""The web viewer in headless Chromium: the page loads, streams a file chosen in its file input
to the server in real time, and the figure's joints move over time. Saves a screenshot to
$LIVEGESTURE_SCREENSHOT (default: the test's tmp folder).

Needs Debian's chromium (/usr/bin/chromium, or $LIVEGESTURE_CHROMIUM) and the playwright package;
skips when the browser is absent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ..test_engine import audio_of

CHROMIUM = os.environ.get("LIVEGESTURE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"chromium not installed ({CHROMIUM})")


@pytest.fixture(scope="module")
def viewer_server(tmp_path_factory):
    """The TINY random model, denormalised with the statistics of synthetic motion (arms down, idle
    sway): its output stays near a human pose, so the screenshot shows a recognisable figure."""
    import torch

    from livegesture import LiveGesture
    from livegesture.bundle import ModelBundle
    from livegesture.data.features import RegionStats
    from livegesture.data.synthetic import synthetic_motion
    from livegesture.serve.config import ServerConfig
    from livegesture.serve.runner import ServerThread
    from livegesture.tokenizer import MotionTokenizer
    from livegesture.train.config import load_experiment

    from ..train.test_ar_stage import TINY

    # the untrained model's visible motion is mostly its drifting root, which the default clean-up
    # holds: this page test shows the raw output
    cfg = load_experiment("demo", {**TINY, "cleanup.handover.enabled": False, "cleanup.root.mode": "raw",
                                   "cleanup.feet.enabled": False})
    stats = RegionStats.compute([synthetic_motion(600, seed=s).to_regions() for s in range(3)])
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("viewer") / "viewer.safetensors"
    ModelBundle.create(cfg, MotionTokenizer(cfg.tokenizer), stats).save(path)
    with ServerThread(LiveGesture.load(path), ServerConfig(max_sessions=4)) as srv:
        yield srv


def test_page_streams_a_file_and_the_figure_moves(viewer_server, tmp_path):
    server = viewer_server
    import soundfile as sf
    from playwright.sync_api import sync_playwright

    wav = tmp_path / "speech.wav"
    sf.write(wav, audio_of(4.0, seed=2), 16000, subtype="PCM_16")
    shot = Path(os.environ.get("LIVEGESTURE_SCREENSHOT", tmp_path / "viewer.png"))
    console: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                                          "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            page.goto(server.http + "/")
            page.wait_for_function("window.lgState && window.lgState.status.startsWith('idle')", timeout=20_000)
            page.set_input_files("#file", str(wav))
            page.click("#play")
            page.wait_for_function("window.lgState.frames >= 8", timeout=20_000)
            first = np.array(page.evaluate("window.lgState.lastJoints"))
            page.wait_for_timeout(1500)
            second = np.array(page.evaluate("window.lgState.lastJoints"))
            page.wait_for_function("window.lgState.ended || window.lgState.error", timeout=30_000)
            state = page.evaluate("({frames: lgState.frames, played: lgState.played, error: lgState.error, "
                                  "latency: lgState.latencyMs, text: document.getElementById('latency').textContent})")
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert state["error"] is None, (state, console)
    assert not [c for c in console if c.startswith("pageerror")], console
    assert first.shape == (165,) and np.isfinite(first).all()
    assert np.abs(second - first).max() > 1e-3  # the joints moved between the two reads
    assert state["frames"] == 120 and state["played"] > 10  # 4 s -> 120 frames, animated (software GL is slow)
    assert state["latency"] is not None and "ms" in state["text"]
    assert shot.is_file() and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}; page latency {state['latency']:.0f} ms")
