"""The audio tests step tiny tensors thousands of times: intra-op threads only add overhead there
(and spin badly when the cores are shared), so they run single-threaded and restore the setting."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
