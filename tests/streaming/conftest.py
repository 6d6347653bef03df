"""The streaming tests use tiny tensors: one intra-op thread is faster and immune to
OpenMP contention on a busy machine. The previous setting is restored afterwards."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
