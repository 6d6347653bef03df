"""The streaming product kernel of the compiled one-row step (docs/design.md §6 "Compiled step").

At batch 1 the step's products have 2-4 rows and read weights that no cache holds, and the
library's GEMMs read those at about a third of the memory bandwidth. ``stream_kernel.cpp``
reads each weight once, in order, from a tile-packed copy (:func:`pack`). It is registered as
the operator ``livegesture::stream_mm``, so that inductor calls it from the compiled program.

It is built on first use with the machine's C++ compiler (the one ``torch.compile`` needs
anyway) for this CPU (``-march=native``), into a per-user cache keyed by the source, the flags,
torch's version and the CPU's feature flags; a failed build is reported in one line, and the
compiled step then keeps the library's products. The eager step never uses it: the float32 bits
that the exactness tests and frozen reference clips rely on stay the library's.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

__all__ = ["TILE", "cxx_compiler", "load", "pack", "packable", "ring_attention", "stream_mm"]

#: output columns per packed tile (the kernel's register block)
TILE = 64
_SOURCE = Path(__file__).with_name("stream_kernel.cpp")
_FLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-ffp-contract=off", "-std=c++17", "-shared", "-fPIC"]
_loaded: list[str | None] = []  # [reason or None] once tried


def cxx_compiler() -> str | None:
    """The C++ compiler on the PATH ($CXX, else g++, else clang++), or None: what the kernel and
    inductor's C++ wrapper build with."""
    cxx = os.environ.get("CXX")
    return (cxx and shutil.which(cxx)) or shutil.which("g++") or shutil.which("clang++")


def _cpu_tag() -> str:
    """The CPU's feature flags (a cached library built with -march=native must not move to a CPU without them)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cache_dir() -> Path:
    base = os.environ.get("LIVEGESTURE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "livegesture")
    return Path(base) / "kernels"


def _build(cxx: str) -> Path:
    """The shared library, built unless the cache holds it (written atomically: racing processes are safe)."""
    from torch.utils import cpp_extension

    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    flags = [*_FLAGS, f"-D_GLIBCXX_USE_CXX11_ABI={abi}"]
    src = _SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([src, " ".join(flags).encode(), torch.__version__.encode(),
                                     _cpu_tag().encode(), cxx.encode()])).hexdigest()[:16]
    out = _cache_dir() / f"stream_kernel_{key}.so"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    libs = cpp_extension.library_paths()
    cmd = [cxx, *flags, *(f"-I{p}" for p in cpp_extension.include_paths()), str(_SOURCE),
           *(f"-L{p}" for p in libs), *(f"-Wl,-rpath,{p}" for p in libs), "-lc10", "-ltorch_cpu"]
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        part = Path(tmp) / out.name
        r = subprocess.run([*cmd, "-o", str(part)], capture_output=True, text=True)
        if r.returncode != 0:
            err = (r.stderr.strip().splitlines() or ["no message"])[0]
            raise RuntimeError(f"{Path(cxx).name} failed: {err[:200]}")
        os.replace(part, out)
    return out


def load() -> str | None:
    """Build (once per machine) and register ``livegesture::stream_mm``: None when it is ready,
    else the reason in one line. Tried once per process."""
    if _loaded:
        return _loaded[0]
    why: str | None = None
    cxx = cxx_compiler()
    if sys.platform == "win32":
        why = "the streaming product kernel is built only on Linux and macOS"
    elif cxx is None:
        why = "the streaming product kernel needs a C++ compiler (g++ or clang++, or $CXX)"
    else:
        try:
            torch.ops.load_library(str(_build(cxx)))
            torch.library.register_fake("livegesture::stream_mm")(_fake)
            torch.library.register_fake("livegesture::ring_attn")(_fake_attn)
        except Exception as e:  # a compiler or loader failure: one line, the library's products stay
            why = f"the streaming product kernel did not build: {str(e).strip().splitlines()[0][:240]}"
    _loaded.append(why)
    return why


def _fake(b: torch.Tensor, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return x.new_empty(x.shape[0], x.shape[1], p.shape[1] * TILE)


def _fake_attn(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return q.new_empty(q.shape)  # contiguous, as the kernel returns


def ring_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``F.scaled_dot_product_attention(q, k, v, attn_mask=mask)`` for float32 q (B, H, Tq, D), k, v
    (B, H, C, D) and a bool mask (B, 1 or H, Tq, C) that opens at least one key per query (after
    :func:`load`)."""
    return torch.ops.livegesture.ring_attn(q, k, v, mask)


def packable(w: torch.Tensor) -> bool:
    """Whether a (G, K, N) weight can go through the kernel (float32 on the CPU, N a multiple of 64)."""
    return w.dim() == 3 and w.dtype == torch.float32 and w.device.type == "cpu" and w.shape[2] % TILE == 0


def pack(w: torch.Tensor) -> torch.Tensor:
    """(G, K, N) -> (G, N/64, K, 64): each tile of 64 output columns contiguous, read in order."""
    G, K, N = w.shape
    return w.reshape(G, K, N // TILE, TILE).permute(0, 2, 1, 3).contiguous()


def stream_mm(b: torch.Tensor, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``torch.baddbmm(b, x, w)`` for x (G, M, K) and ``p = pack(w)`` (after :func:`load`)."""
    return torch.ops.livegesture.stream_mm(b, x, p)
