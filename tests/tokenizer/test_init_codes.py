import torch

from livegesture.tokenizer.quantizer import EMAQuantizer


def test_init_codes_is_kmeans_on_all_latents_not_a_copy_of_them():
    torch.manual_seed(0)
    centres = torch.randn(4, 3) * 10
    x = (centres[:, None] + 0.1 * torch.randn(4, 200, 3)).reshape(-1, 3)
    q = EMAQuantizer(4, 3)
    q.init_codes(x, torch.Generator().manual_seed(0))
    assert bool(q.initialised)
    d = torch.cdist(q.codebook, centres)
    assert d.min(1).values.max() < 0.1  # every code sits on a cluster centre
    assert len(set(d.argmin(1).tolist())) == 4
