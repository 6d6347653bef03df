"""VMC protocol sender: every motion frame as one OSC bundle over UDP (messages built by python-osc).

Per frame, in this order (the layout of the protocol's reference performer):

* ``/VMC/Ext/Root/Pos`` ``"root"`` at the origin with the identity rotation;
* ``/VMC/Ext/Bone/Pos`` for each of the 55 humanoid bones (:data:`.humanoid.HUMANOID_BONES`):
  name, local position (x, y, z), local rotation (x, y, z, w), Unity's left-handed axes
  (:mod:`.humanoid`); the Hips carry the root translation;
* ``/VMC/Ext/Blend/Val`` ``"A"`` (the VRM mouth-open preset) from the jaw's opening, then
  ``/VMC/Ext/Blend/Apply``: what the face can give, as the FLAME expression coefficients have no
  standard VRM counterpart;
* ``/VMC/Ext/OK`` 1, 3, 0, 1 (loaded, calibrated, normal mode, tracking ok) and
  ``/VMC/Ext/T`` with the frame's time in the motion (s).

The address is checked when the sender opens: a host that does not resolve, a network that
cannot be reached, or (where the OS reports it) no UDP receiver on the port raise
:class:`~livegesture.errors.OutputError`. Once streaming, a receiver that goes away and comes back
is tolerated: refused packets are counted in :attr:`VmcSender.refused`.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import numpy as np

from ..body.kinematics import Skeleton, approximate_skeleton
from ..errors import ConfigError, OutputError
from .humanoid import HUMANOID_BONES, jaw_open, unity_bones

__all__ = ["DEFAULT_PORT", "VmcConfig", "VmcSender", "parse_address"]

#: the port VMC receivers commonly listen on
DEFAULT_PORT = 39539


@dataclass(frozen=True)
class VmcConfig:
    """What the sender adds beyond the bones."""

    blend_name: str = "A"            # VRM 0.x mouth-open preset ("aa" in VRM 1.0)
    jaw_full_open_deg: float = 6.0   # jaw angle sent as a fully open mouth (BEAT2 speech: ~3 degrees at p99)
    probe_seconds: float = 0.2       # how long opening waits for a refusal from the address


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6 literals) -> (host, port); :class:`ConfigError` if malformed."""
    s = str(text).strip()
    host, sep, port = s.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"VMC address must be HOST:PORT with a port in 1-65535 "
                          f"(receivers commonly use {DEFAULT_PORT}), got {text!r}")
    return host, int(port)


class VmcSender:
    """Sends motion frames to one VMC receiver. Use as a context manager or call :meth:`close`."""

    def __init__(self, address: str, skeleton: Skeleton | None = None, config: VmcConfig = VmcConfig(),
                 check: bool = True) -> None:
        from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
        from pythonosc.osc_message_builder import OscMessageBuilder

        self._bundle, self._immediately, self._message = OscBundleBuilder, IMMEDIATELY, OscMessageBuilder
        self.host, self.port = parse_address(address)
        self.address = f"{self.host}:{self.port}"
        self.config = config
        sk = skeleton or approximate_skeleton()
        self._rest = np.asarray(sk.rest_joints, np.float64)
        self._offsets = np.asarray(sk.offsets, np.float64)
        self.frames_sent = 0
        self.refused = 0
        try:
            family, kind, proto, _, addr = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        except (socket.gaierror, UnicodeError) as exc:
            raise OutputError(f"cannot resolve the VMC host {self.host!r}: {exc}") from None
        self._sock = socket.socket(family, kind, proto)
        try:
            self._sock.connect(addr)   # a connected UDP socket reports ICMP refusals as errors
            if check:
                self._probe()
        except OSError as exc:
            self._sock.close()
            raise self._error(exc) from None

    # ------------------------------------------------------------------ checks
    def _error(self, exc: OSError) -> OutputError:
        if isinstance(exc, ConnectionRefusedError):
            return OutputError(f"nothing receives VMC on UDP {self.address} (the port is closed or used by "
                               f"something else): start the VMC receiver first")
        return OutputError(f"cannot send VMC to {self.address}: {exc.strerror or exc}")

    def _probe(self) -> None:
        """Send one 'not loaded yet' message; a refusal comes back within the probe time on most systems."""
        self._sock.send(self._msg("/VMC/Ext/OK", "i", 0).dgram)
        self._sock.settimeout(self.config.probe_seconds)
        try:
            self._sock.recv(1)
        except (TimeoutError, socket.timeout):
            pass
        finally:
            self._sock.settimeout(None)

    # ------------------------------------------------------------------ messages
    def _msg(self, address: str, types: str = "", *args):
        """One OSC message; `types` are the OSC type tags of `args` (s string, f float32, i int32)."""
        b = self._message(address=address)
        for tag, a in zip(types, args, strict=True):
            b.add_arg(a, tag)
        return b.build()

    def frame_bundles(self, poses: np.ndarray, trans: np.ndarray, times: np.ndarray) -> list[bytes]:
        """The datagrams (one OSC bundle per frame) for frames poses (T, 55, 3), trans (T, 3)."""
        pos, quat = unity_bones(poses, trans, self._rest, self._offsets)
        pos, quat = pos.astype(np.float32), quat.astype(np.float32)
        mouth = jaw_open(poses, self.config.jaw_full_open_deg).astype(np.float32)
        root = self._msg("/VMC/Ext/Root/Pos", "sfffffff", "root", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
        apply, ok = self._msg("/VMC/Ext/Blend/Apply"), self._msg("/VMC/Ext/OK", "iiii", 1, 3, 0, 1)
        out = []
        for t in range(len(pos)):
            b = self._bundle(self._immediately)
            b.add_content(root)
            p, q = pos[t].tolist(), quat[t].tolist()
            for j, name in enumerate(HUMANOID_BONES):
                b.add_content(self._msg("/VMC/Ext/Bone/Pos", "sfffffff", name, *p[j], *q[j]))
            b.add_content(self._msg("/VMC/Ext/Blend/Val", "sf", self.config.blend_name, float(mouth[t])))
            b.add_content(apply)
            b.add_content(ok)
            b.add_content(self._msg("/VMC/Ext/T", "f", float(times[t])))
            out.append(b.build().dgram)
        return out

    # ------------------------------------------------------------------ sending
    def send_frames(self, poses: np.ndarray, trans: np.ndarray, times: np.ndarray) -> int:
        """Send frames (see :meth:`frame_bundles`) at once; returns how many were sent."""
        for dgram in self.frame_bundles(poses, trans, times):
            try:
                self._sock.send(dgram)
            except ConnectionRefusedError:
                self.refused += 1   # the receiver is (re)starting: keep streaming
            except OSError as exc:
                raise self._error(exc) from None
            self.frames_sent += 1
        return len(poses)

    def send_motion(self, motion, first_index: int = 0) -> int:
        """Send every frame of a Motion; frame k's time is ``(first_index + k) / motion.fps``."""
        n = len(motion)
        times = (first_index + np.arange(n)) / float(motion.fps)
        return self.send_frames(motion.poses, motion.trans, times)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "VmcSender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
