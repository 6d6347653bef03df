"""The viewer page plays a .glb from write_gltf with three.js's GLTFLoader (an independent glTF
reader): 55 skin joints named as SMPL-X, one key per frame, and the joints' world positions at
several times equal the project's forward kinematics. Skips when Debian's chromium is absent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from livegesture.body import JOINT_NAMES, forward_kinematics
from livegesture.data.synthetic import synthetic_motion
from livegesture.export import write_gltf

CHROMIUM = os.environ.get("LIVEGESTURE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"chromium not installed ({CHROMIUM})")


def test_viewer_plays_the_glb_at_fk_positions(server, tmp_path):
    from playwright.sync_api import sync_playwright

    m = synthetic_motion(60, seed=2)
    glb = write_gltf(m, tmp_path / "m.glb")
    frames = (0, 13, 59)
    console: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
        try:
            page = browser.new_page(viewport={"width": 800, "height": 600})
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            page.goto(server.http + "/")
            page.wait_for_function("window.lgGltf && window.lgState", timeout=20_000)
            page.set_input_files("#glb", str(glb))
            page.wait_for_function("['playing', 'error'].includes(window.lgGltf.status)", timeout=20_000)
            state = page.evaluate("({status: lgGltf.status, error: lgGltf.error, names: lgGltf.names, "
                                  "keys: lgGltf.keys, duration: lgGltf.duration, fps: lgGltf.fps})")
            got = {f: np.array(page.evaluate(f"lgGltf.jointsAt({f} / 30)")) for f in frames}
            page.evaluate("lgGltf.jointsAt(0.5)")
            page.screenshot(path=os.environ.get("LIVEGESTURE_GLTF_SCREENSHOT", str(tmp_path / "gltf.png")))
        finally:
            browser.close()
    assert state["status"] == "playing", (state["error"], console)
    assert state["names"] == list(JOINT_NAMES) and state["keys"] == len(m) and state["fps"] == 30
    assert state["duration"] == pytest.approx((len(m) - 1) / 30, abs=1e-4)
    fk = forward_kinematics(m)
    for f in frames:
        np.testing.assert_allclose(got[f], fk[f], atol=1e-5)
    assert not console, console
