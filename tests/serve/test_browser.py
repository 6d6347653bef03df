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
def viewer_model(tmp_path_factory):
    """The TINY random model, denormalised with the statistics of synthetic motion (arms down, idle
    sway): its output stays near a human pose, so the screenshot shows a recognisable figure."""
    import torch

    from livegesture import LiveGesture
    from livegesture.bundle import ModelBundle
    from livegesture.data.features import RegionStats
    from livegesture.data.synthetic import synthetic_motion
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
    return LiveGesture.load(path)


@pytest.fixture(scope="module")
def viewer_server(viewer_model):
    from livegesture.serve.config import ServerConfig
    from livegesture.serve.runner import ServerThread

    with ServerThread(viewer_model, ServerConfig(max_sessions=4)) as srv:
        yield srv


def _launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, headless=True,
                             args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                                   "--autoplay-policy=no-user-gesture-required",
                                   "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"])


def _orange_share(png: Path) -> float:
    """Share of pixels in the joints' orange (the lit 0xf0b060 material)."""
    from PIL import Image

    a = np.asarray(Image.open(png).convert("RGB")).astype(int)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    return float(((r > 150) & (r - b > 60) & (g > 0.45 * r) & (g < 0.85 * r)).mean())


def test_page_streams_a_file_and_the_figure_moves(viewer_server, tmp_path):
    server = viewer_server
    import soundfile as sf
    from playwright.sync_api import sync_playwright

    wav = tmp_path / "speech.wav"
    sf.write(wav, audio_of(4.0, seed=2), 16000, subtype="PCM_16")
    shot = Path(os.environ.get("LIVEGESTURE_SCREENSHOT", tmp_path / "viewer.png"))
    console: list[str] = []
    with sync_playwright() as p:
        browser = _launch(p)
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
    assert 1e-4 < _orange_share(shot) < 0.02  # the figure's joints: small spheres
    print(f"screenshot: {shot}; page latency {state['latency']:.0f} ms")


def test_before_the_first_frame_no_sphere_and_the_microphone_says_what_it_does(viewer_server, tmp_path):
    """Before any frame the 55 joint instances held identity matrices: one 1 m sphere at the origin
    filled the view (and, drawn in software, made the page slow to answer clicks). The microphone
    button says at once what it is waiting for."""
    from playwright.sync_api import sync_playwright

    shot = tmp_path / "empty.png"
    with sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.goto(viewer_server.http + "/")
            page.wait_for_function("window.lgState && window.lgState.status.startsWith('idle')", timeout=20_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(shot))
            page.click("#mic")
            right_after = page.evaluate("document.getElementById('status').textContent")
            page.wait_for_function("document.getElementById('status').textContent.startsWith('microphone (')",
                                   timeout=20_000)
            page.click("#stop")
        finally:
            browser.close()
    assert _orange_share(shot) < 1e-4, _orange_share(shot)
    assert right_after.startswith("microphone: "), right_after  # not still "idle"


def test_a_token_server_page_asks_for_the_token(viewer_model, tmp_path):
    import soundfile as sf
    from playwright.sync_api import sync_playwright

    from livegesture.serve.config import ServerConfig
    from livegesture.serve.runner import ServerThread

    wav = tmp_path / "speech.wav"
    sf.write(wav, audio_of(1.0, seed=3), 16000, subtype="PCM_16")
    with ServerThread(viewer_model, ServerConfig(max_sessions=2, token="page-token")) as srv, \
            sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.goto(srv.http + "/")
            page.wait_for_function("window.lgState && window.lgState.status.startsWith('idle')", timeout=20_000)
            assert page.is_visible("#token") and "token" in page.text_content("#status")
            page.set_input_files("#file", str(wav))
            page.click("#play")  # no token yet: refused
            page.wait_for_function("document.getElementById('status').textContent.includes('refused')",
                                   timeout=20_000)
            assert page.evaluate("window.lgState.frames") == 0
            page.fill("#token", "page-token")
            page.click("#play")
            page.wait_for_function("window.lgState.ended || window.lgState.error", timeout=30_000)
            state = page.evaluate("({frames: lgState.frames, error: lgState.error})")
            tab = browser.new_page()
            tab.goto(srv.http + "/#token=from-link")  # a link can carry it (kept for the tab, not the URL)
            tab.wait_for_function("window.lgState && window.lgState.status.startsWith('idle')", timeout=20_000)
            link = tab.evaluate("[document.getElementById('token').value, location.hash]")
        finally:
            browser.close()
    assert state == {"frames": 28, "error": None}, state  # 1 s -> 7 whole tokens
    assert link == ["from-link", ""]
