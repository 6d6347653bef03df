"""A VMC receiver for the tests: a loopback UDP socket read by a thread (raw datagrams, parsed
afterwards with python-osc), and the conversion of what arrived back to SMPL-X world joints."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
from pythonosc.osc_packet import OscPacket
from scipy.spatial.transform import Rotation

# Unity's humanoid hierarchy (parent of each HumanBodyBones bone), written from Unity's docs
UNITY_PARENT = {
    "Spine": "Hips", "Chest": "Spine", "UpperChest": "Chest", "Neck": "UpperChest", "Head": "Neck",
    "Jaw": "Head", "LeftEye": "Head", "RightEye": "Head",
    **{f"{s}UpperLeg": "Hips" for s in ("Left", "Right")},
    **{f"{s}LowerLeg": f"{s}UpperLeg" for s in ("Left", "Right")},
    **{f"{s}Foot": f"{s}LowerLeg" for s in ("Left", "Right")},
    **{f"{s}Toes": f"{s}Foot" for s in ("Left", "Right")},
    **{f"{s}Shoulder": "UpperChest" for s in ("Left", "Right")},
    **{f"{s}UpperArm": f"{s}Shoulder" for s in ("Left", "Right")},
    **{f"{s}LowerArm": f"{s}UpperArm" for s in ("Left", "Right")},
    **{f"{s}Hand": f"{s}LowerArm" for s in ("Left", "Right")},
    **{f"{s}{f}Proximal": f"{s}Hand" for s in ("Left", "Right")
       for f in ("Thumb", "Index", "Middle", "Ring", "Little")},
    **{f"{s}{f}{b}": f"{s}{f}{a}" for s in ("Left", "Right")
       for f in ("Thumb", "Index", "Middle", "Ring", "Little")
       for a, b in (("Proximal", "Intermediate"), ("Intermediate", "Distal"))},
}
UNITY_BONES = ("Hips", *UNITY_PARENT)


class Receiver:
    """Collects datagrams on 127.0.0.1:port until closed."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.datagrams: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.datagrams.append(self.sock.recv(65536))
            except (socket.timeout, TimeoutError):
                continue

    def wait_for(self, n_frames: int, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while len(self.frames()) < n_frames and time.monotonic() < end:
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def frames(self) -> list[list]:
        """One list of messages per bundle that carries a /VMC/Ext/T (i.e. per frame)."""
        out = []
        for d in list(self.datagrams):
            msgs = [m.message for m in OscPacket(d).messages]
            if any(m.address == "/VMC/Ext/T" for m in msgs):
                out.append(msgs)
        return out

    def __enter__(self) -> "Receiver":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def world_joints_from_vmc(msgs: list, names: tuple[str, ...]) -> np.ndarray:
    """Compose the received local transforms down Unity's hierarchy (from the root), then mirror X
    back to SMPL-X's right-handed axes: (len(names), 3) world positions."""
    root = next(m for m in msgs if m.address == "/VMC/Ext/Root/Pos").params
    bones = {m.params[0]: m.params[1:] for m in msgs if m.address == "/VMC/Ext/Bone/Pos"}
    world: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def get(name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in world:
            parent = UNITY_PARENT.get(name)
            pr, pp = (Rotation.from_quat(root[4:8]).as_matrix(), np.array(root[1:4])) if parent is None \
                else get(parent)
            v = bones[name]
            world[name] = (pr @ Rotation.from_quat(v[3:7]).as_matrix(), pp + pr @ np.array(v[0:3]))
        return world[name]

    return np.array([get(n)[1] for n in names]) * np.array([-1.0, 1.0, 1.0])
