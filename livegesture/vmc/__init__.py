"""VMC protocol output (OSC over UDP) for VTuber and avatar apps: SMPL-X as Unity humanoid bones."""

from .humanoid import HUMANOID_BONES, jaw_open, mirror_positions, mirror_quaternions, unity_bones
from .sender import DEFAULT_PORT, VmcConfig, VmcSender, parse_address

__all__ = ["DEFAULT_PORT", "HUMANOID_BONES", "VmcConfig", "VmcSender", "jaw_open", "mirror_positions",
           "mirror_quaternions", "parse_address", "unity_bones"]
