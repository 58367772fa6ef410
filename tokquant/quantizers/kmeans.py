"""Lloyd's k-means with k-means++-style seeding, chunked like the RVQ search."""

from __future__ import annotations

import torch

from tokquant.quantizers.functional import DEFAULT_CHUNK_ELEMENTS
from tokquant.quantizers.search import nearest_code


@torch.no_grad()
def kmeans(
    x: torch.Tensor,
    k: int,
    *,
    iters: int = 20,
    generator: torch.Generator | None = None,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Return ``[k, D]`` centroids of ``x`` ``[N, D]``.

    Seeding is k-means++ over a random candidate subsample, which keeps it O(N*k). A cluster
    that empties during Lloyd iterations is re-seeded with the point currently worst
    served, so every returned centroid is in use on ``x`` when ``N >= k``.
    """
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"kmeans needs a non-empty [N, D] tensor. Found shape: {list(x.shape)}")
    n = x.shape[0]
    x = x.float()
    gen_device = generator.device if generator is not None else torch.device("cpu")
    if n <= k:
        # Fewer points than codes: use every point, pad with jittered copies.
        extra = torch.randint(n, (k - n,), generator=generator, device=gen_device).to(x.device)
        noise = torch.randn(k - n, x.shape[1], generator=generator, device=gen_device).to(x.device)
        return torch.cat([x, x[extra] + 1e-3 * noise * x.std(unbiased=False).clamp(min=1e-6)])

    centroids = _seed(x, k, generator, gen_device)
    for _ in range(iters):
        idx = nearest_code(x, centroids, chunk_elements=chunk_elements)
        counts = torch.bincount(idx, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, idx, x)
        new = sums / counts.clamp(min=1).unsqueeze(-1).to(x.dtype)
        empty = (counts == 0).nonzero().flatten()
        if empty.numel():
            err = (x - centroids[idx]).pow(2).sum(-1)
            worst = err.topk(empty.numel()).indices
            new[empty] = x[worst]
        if torch.equal(new, centroids):
            break
        centroids = new
    return centroids


def _seed(
    x: torch.Tensor, k: int, generator: torch.Generator | None, gen_device: torch.device
) -> torch.Tensor:
    """k-means++ on a random candidate subsample (at most max(16k, 4096) points)."""
    n = x.shape[0]
    perm = torch.randperm(n, generator=generator, device=gen_device).to(x.device)
    candidates = x[perm[: min(n, max(16 * k, 4096))]]
    chosen = [0]
    dist = (candidates - candidates[0]).pow(2).sum(-1)
    for _ in range(1, k):
        total = dist.sum()
        if total <= 0:  # every candidate coincides with a seed: take the next one
            j = len(chosen) % candidates.shape[0]
        else:
            probs = (dist / total).to(gen_device)
            j = int(torch.multinomial(probs, 1, generator=generator))
        chosen.append(j)
        dist = torch.minimum(dist, (candidates - candidates[j]).pow(2).sum(-1))
    return candidates[torch.tensor(chosen, device=x.device)].clone()
