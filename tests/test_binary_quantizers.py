"""BSQ and LFQ against float64 oracles written from the reference formulas."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tokquant import BSQ, LFQ
from tokquant.quantizers import functional as Fq

# --------------------------------------------------------------------------------------
# Oracles: the reference math, enumerating all 2^D codes explicitly, in float64.
# --------------------------------------------------------------------------------------


def all_codes(d: int, scale: float) -> torch.Tensor:
    """Row k = code k, MSB-first: bit i of k (from the top) set -> +scale."""
    rows = [[scale if (k >> (d - 1 - i)) & 1 else -scale for i in range(d)] for k in range(2**d)]
    return torch.tensor(rows, dtype=torch.float64)


def entropy_terms(z: torch.Tensor, scale: float, tau: float, floor: float):
    """(mean per-sample entropy, batch-mean entropy) of softmax(2 tau <z, c>) over all c."""
    prob = torch.softmax(2 * tau * z @ all_codes(z.shape[-1], scale).T, dim=-1)
    log = (lambda p: p.clamp(min=floor).log()) if floor > 0 else (lambda p: p.log())
    per_sample = (-(prob * log(prob)).sum(-1)).mean()
    avg = prob.mean(0)
    return per_sample, -(avg * log(avg)).sum()


def speechbrain_bsq_oracle(x: torch.Tensor, weight=0.1, gamma=1.0, tau=100.0):
    """SpeechBrain BinarySphericalQuantizer.forward for a [B, T, D] input, in float64."""
    d = x.shape[-1]
    xn = F.normalize(x.double(), dim=-1)
    quantized = torch.where(xn > 0, 1.0, -1.0).double() / math.sqrt(d)
    mask = 2 ** torch.arange(d - 1, -1, -1)
    indices = ((xn > 0).long() * mask).sum(-1)
    h_s, h_c = entropy_terms(xn.reshape(-1, d), 1 / math.sqrt(d), tau, 1e-5)
    return quantized, indices, weight * (h_s - gamma * h_c)


def python_index(bits: list[bool]) -> int:
    return sum(1 << (len(bits) - 1 - i) for i, b in enumerate(bits) if b)


# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 50, 13), (3, 17, 8), (1, 5, 1)])
@pytest.mark.parametrize("tau", [100.0, 3.0])
def test_bsq_exact_matches_speechbrain_reference(shape, tau):
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64)
    q_ref, idx_ref, aux_ref = speechbrain_bsq_oracle(x, tau=tau)
    out = BSQ(shape[-1], entropy="exact")(x, inv_temperature=tau)
    assert torch.equal(out.indices[..., 0], idx_ref)
    assert torch.equal(out.quantized, q_ref)
    assert out.aux_loss.dim() == 0
    assert abs(out.aux_loss.item() - aux_ref.item()) < 1e-5
    # and in float32, the ordinary precision
    out32 = BSQ(shape[-1], entropy="exact")(x.float(), inv_temperature=tau)
    assert torch.equal(out32.indices[..., 0], idx_ref)
    assert torch.allclose(out32.quantized.double(), q_ref, rtol=0, atol=1e-7)
    assert abs(out32.aux_loss.item() - aux_ref.item()) < 1e-5


def test_sign_rule_and_msb_first_index():
    q = BSQ(4)
    x = torch.tensor([1.0, -1.0, 0.0, 2.0])  # bits 1 0 0 1: zero goes negative
    assert q.encode(x).tolist() == [9]
    assert torch.equal(q(x).quantized, torch.tensor([0.5, -0.5, -0.5, 0.5]))
    lfq = LFQ(3, scale=0.25)
    assert lfq.encode(torch.tensor([0.0, 3.0, -0.0])).tolist() == [2]
    assert torch.equal(lfq.decode(torch.tensor([5])), torch.tensor([0.25, -0.25, 0.25]))


@pytest.mark.parametrize("cls", [BSQ, LFQ])
@pytest.mark.parametrize("entropy", ["exact", "factorized"])
def test_any_leading_shape_gives_same_vectors_and_flat_batch_loss(cls, entropy):
    torch.manual_seed(1)
    d = 6
    flat = torch.randn(2 * 3 * 4, d)
    q = cls(d, entropy=entropy)
    ref = q(flat)
    for shape in [(24, d), (4, 6, d), (2, 3, 4, d)]:
        out = q(flat.reshape(shape))
        assert out.aux_loss.dim() == 0
        assert torch.allclose(out.aux_loss, ref.aux_loss, rtol=0, atol=1e-6)
        assert torch.equal(out.quantized.reshape(-1, d), ref.quantized)
        assert torch.equal(out.indices.reshape(-1, 1), ref.indices)
    single = q(flat[5])
    assert single.quantized.shape == (d,) and single.indices.shape == (1,)
    assert torch.equal(single.quantized, ref.quantized[5])


@pytest.mark.parametrize("d", [1, 3, 6, 9])
@pytest.mark.parametrize("tau", [0.5, 5.0, 100.0])
def test_factorized_entropy_against_exact_float64(d, tau):
    torch.manual_seed(d)
    z = F.normalize(torch.randn(64, d, dtype=torch.float64), dim=-1)
    scale = 1 / math.sqrt(d)
    h_s, h_c = entropy_terms(z, scale, tau, floor=0.0)
    u = Fq.bit_logits(z, scale, tau)
    assert torch.allclose(Fq.factorized_sample_entropy(u), h_s, rtol=1e-10, atol=1e-12)
    # one group holding every bit is the exact codebook entropy ...
    assert torch.allclose(Fq.grouped_codebook_entropy(u, d), h_c, rtol=1e-10, atol=1e-12)
    # ... and smaller groups only ever over-estimate it (subadditivity)
    for g in range(1, d):
        assert Fq.grouped_codebook_entropy(u, g) >= h_c - 1e-12
    # the library's exact path without the seed clamp is the same oracle
    e_s, e_c = Fq.exact_entropies(z, scale, tau, log_floor=0.0)
    assert torch.allclose(e_s, h_s, rtol=1e-10) and torch.allclose(e_c, h_c, rtol=1e-10)


def test_grouped_entropy_strictly_above_exact_for_correlated_bits():
    # Two perfectly correlated bits: joint entropy log 2, sum of marginals 2 log 2.
    z = torch.tensor([[1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    u = Fq.bit_logits(z, 1.0, 100.0)
    assert torch.allclose(
        Fq.grouped_codebook_entropy(u, 2), torch.tensor(math.log(2), dtype=torch.float64)
    )
    assert torch.allclose(
        Fq.grouped_codebook_entropy(u, 1), torch.tensor(2 * math.log(2), dtype=torch.float64)
    )


def test_exact_entropy_chunking_matches_one_block_including_gradients():
    torch.manual_seed(2)
    z1 = torch.randn(37, 7, dtype=torch.float64, requires_grad=True)
    z2 = z1.detach().clone().requires_grad_(True)
    a = Fq.exact_entropies(z1, 0.3, 10.0, chunk_elements=1 << 30)
    b = Fq.exact_entropies(z2, 0.3, 10.0, chunk_elements=3 * 128)  # 3 rows per chunk
    assert torch.allclose(a[0], b[0]) and torch.allclose(a[1], b[1])
    (a[0] - a[1]).backward()
    (b[0] - b[1]).backward()
    assert torch.allclose(z1.grad, z2.grad)
    u1 = torch.randn(29, 9, dtype=torch.float64, requires_grad=True)
    u2 = u1.detach().clone().requires_grad_(True)
    g1 = Fq.grouped_codebook_entropy(u1, 5, chunk_elements=1 << 30)
    g2 = Fq.grouped_codebook_entropy(u2, 5, chunk_elements=64)
    assert torch.allclose(g1, g2)
    g1.backward()
    g2.backward()
    assert torch.allclose(u1.grad, u2.grad)


@pytest.mark.parametrize("d", [1, 5, 31, 32, 33, 40, 64])
def test_code_columns_layout_and_roundtrip(d):
    torch.manual_seed(d)
    x = torch.randn(50, d)
    for q in (BSQ(d), LFQ(d, scale=0.7)):
        q.eval()
        codes = q.encode(x)
        widths = [32] * (d // 32) + ([d % 32] if d % 32 else [])
        assert codes.shape == (50, len(widths)) and codes.dtype == torch.int64
        assert q.column_cardinalities == [2**w for w in widths]
        for row in range(50):
            bits = (x[row] > 0).tolist()
            full = python_index(bits)
            # columns, most significant first, concatenate to the full MSB-first index
            joined = 0
            for w, c in zip(widths, codes[row].tolist(), strict=True):
                joined = (joined << w) | c
            assert joined == full
        out = q(x)
        assert torch.equal(out.indices, codes)
        assert torch.equal(q.decode(codes), out.quantized)


@pytest.mark.parametrize("cls", [BSQ, LFQ])
def test_straight_through_gradient_is_that_of_the_unquantized_path(cls):
    torch.manual_seed(3)
    x = torch.randn(10, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(10, 5, dtype=torch.float64)
    kwargs = {"entropy_loss_weight": 0.0}
    if cls is LFQ:
        kwargs.update(commitment_loss_weight=0.0, activation="tanh")
    q = cls(5, **kwargs)
    (q(x).quantized * w).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    path = F.normalize(x2, dim=-1) if cls is BSQ else torch.tanh(x2)
    (path * w).sum().backward()
    assert torch.allclose(x.grad, x2.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls", [BSQ, LFQ])
@pytest.mark.parametrize("entropy", ["exact", "factorized"])
def test_entropy_gradients_finite_and_no_nan_at_zero(cls, entropy):
    x = torch.zeros(8, 12)
    x[1:] = torch.randn(7, 12)
    x.requires_grad_(True)
    out = cls(12, entropy=entropy)(x)
    assert torch.isfinite(out.quantized).all() and torch.isfinite(out.aux_loss)
    (out.quantized.sum() + out.aux_loss).backward()
    assert torch.isfinite(x.grad).all()
    assert out.indices[0].item() == 0  # the zero vector is all-negative


def test_lfq_aux_loss_is_entropy_plus_commitment():
    torch.manual_seed(4)
    z = torch.randn(40, 5, dtype=torch.float64)
    s, tau, w_e, w_c, gamma = 0.5, 7.0, 0.2, 0.3, 1.5
    q = LFQ(
        5,
        scale=s,
        entropy_loss_weight=w_e,
        commitment_loss_weight=w_c,
        diversity_gamma=gamma,
        entropy="exact",
    )
    out = q(z, inv_temperature=tau)
    h_s, h_c = entropy_terms(z, s, tau, 1e-5)
    corners = torch.where(z > 0, s, -s)
    expected = w_e * (h_s - gamma * h_c) + w_c * ((z - corners) ** 2).mean()
    assert torch.allclose(out.aux_loss, expected, rtol=1e-10)
    # factorized mode: same per-sample term without the clamp, exact codebook with g = D
    qf = LFQ(
        5,
        scale=s,
        entropy_loss_weight=w_e,
        commitment_loss_weight=w_c,
        diversity_gamma=gamma,
        entropy="factorized",
        group_size=5,
    )
    h_s0, h_c0 = entropy_terms(z, s, tau, 0.0)
    expected0 = w_e * (h_s0 - gamma * h_c0) + w_c * ((z - corners) ** 2).mean()
    assert torch.allclose(qf(z, inv_temperature=tau).aux_loss, expected0, rtol=1e-10)


@pytest.mark.parametrize("cls", [BSQ, LFQ])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_codes_identical_to_fp32(cls, dtype):
    torch.manual_seed(5)
    x = torch.randn(64, 14)
    q = cls(14)
    ref = q(x)
    model = torch.nn.Linear(14, 14)
    with torch.no_grad():
        model.weight.copy_(torch.eye(14))
        model.bias.zero_()
    with torch.autocast("cpu", dtype=dtype):
        h = model(x)  # a half-precision activation, as in a real mixed-precision model
        out = q(h)
    assert h.dtype == dtype
    assert out.quantized.dtype == torch.float32
    assert torch.equal(out.indices, q.encode(h.float()))
    assert torch.equal(out.indices, ref.indices)  # sign survives the half cast here
    assert torch.isfinite(out.aux_loss)
    assert abs(out.aux_loss.item() - q(h.float()).aux_loss.item()) < 1e-6


def test_metrics_against_hand_counts():
    torch.manual_seed(6)
    x = torch.randn(300, 4)
    out = BSQ(4)(x)
    bits = (x > 0).float()
    assert torch.allclose(out.metrics["bit_balance"], bits.mean(0))
    idx = [python_index(row) for row in (x > 0).tolist()]
    counts = Counter(idx)
    assert out.metrics["codebook_usage"].item() == pytest.approx(len(counts) / 16)
    h = -sum(c / 300 * math.log2(c / 300) for c in counts.values())
    assert out.metrics["code_entropy_bits"].item() == pytest.approx(h, rel=1e-12)


def test_auto_mode_and_limits():
    assert BSQ(10).entropy_mode == "exact"
    assert BSQ(11).entropy_mode == "factorized"
    assert BSQ(64).group_size == 8 and BSQ(5).group_size == 5
    out = BSQ(64)(torch.randn(3, 64))  # widest code, factorized, runs
    assert out.indices.shape == (3, 2)


@pytest.mark.parametrize(
    ("make", "exc", "words"),
    [
        (lambda: BSQ(0), ValueError, "code_dim must be in [1, 64]"),
        (lambda: BSQ(65), ValueError, "code_dim must be in [1, 64]"),
        (lambda: BSQ(2.0), TypeError, "code_dim must be an int"),
        (lambda: BSQ(21, entropy="exact"), ValueError, "code_dim <= 20"),
        (lambda: BSQ(8, entropy="fast"), ValueError, "entropy must be"),
        (lambda: BSQ(8, group_size=9), ValueError, "group_size must be in [1, 8]"),
        (lambda: LFQ(8, scale=0), ValueError, "scale must be"),
        (lambda: LFQ(8, activation="relu6"), ValueError, "activation must be one of"),
        (lambda: BSQ(8)(torch.randn(3, 7)), ValueError, "last dimension 8"),
        (lambda: BSQ(8)(torch.ones(3, 8, dtype=torch.int64)), TypeError, "floating-point"),
        (
            lambda: BSQ(8).decode(torch.zeros(3, 2, dtype=torch.int64)),
            ValueError,
            "codes must have shape",
        ),
        (lambda: BSQ(8).decode(torch.zeros(3, 1)), TypeError, "integer tensor"),
        (lambda: BSQ(8)(torch.randn(3, 8), inv_temperature=0.0), ValueError, "inv_temperature"),
    ],
)
def test_bad_arguments_name_the_parameter(make, exc, words):
    with pytest.raises(exc) as info:
        make()
    assert words in str(info.value)


def test_every_pattern_decodes_to_its_corner():
    q = BSQ(3)
    codes = torch.arange(8).unsqueeze(-1)
    expected = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=3))) / math.sqrt(3)
    assert torch.allclose(q.decode(codes), expected)
    assert torch.equal(q.encode(q.decode(codes)), codes)


@pytest.mark.parametrize("entropy", ["exact", "factorized"])
def test_codebook_entropy_gradient_when_a_code_probability_underflows(entropy):
    """The LFQ NaN at step ~50: once every row puts a code below exp(-104), its batch-mean
    probability is exactly 0 in float32 and `xlogy`'s backward gave NaN. The float32
    gradient must be finite and equal the float64 one (where nothing underflows, and that
    code's term contributes ~1e-60)."""
    torch.manual_seed(0)
    # saturated LFQ-like inputs: 3 clusters, logits of |u| ~ 60-200 per bit
    centers = torch.sign(torch.randn(3, 6))
    x = (centers[torch.arange(48) % 3] * (0.15 + 0.35 * torch.rand(48, 6))).double()
    grads = {}
    for dtype in (torch.float32, torch.float64):
        xi = x.to(dtype).requires_grad_(True)
        if entropy == "exact":
            _, h = Fq.exact_entropies(xi, 1.0, 100.0, log_floor=0.0)
        else:
            h = Fq.grouped_codebook_entropy(Fq.bit_logits(xi, 1.0, 100.0), 6)
        h.backward()
        grads[dtype] = xi.grad
    probs32 = torch.softmax(
        2 * 100.0 * x.float() @ ((2 * Fq.all_bit_patterns(6, "cpu", torch.float32) - 1).T), -1
    ).mean(0)
    assert (probs32 == 0).any()  # the case that broke: some codes underflow
    assert torch.isfinite(grads[torch.float32]).all()
    assert torch.allclose(grads[torch.float32].double(), grads[torch.float64], rtol=1e-3,
                          atol=1e-6)  # fmt: skip


#: Every shipped config with its own front end or none (the SSL ones need their models'
#: weights); RVQ's with 1 k-means iteration, as its 8 x 1,024 fit of 20 takes minutes
#: (and the beam config with 30 steps too: its own are 0, the fit alone).
SHIPPED = ["bsq-16bit", "lfq-14bit", "logmel-bsq-16bit", "logmel-fsq-16bit",
           "logmel-lfq-16bit", "logmel-rvq-8x1024", "logmel-rvq-8x256-beam5",
           "rvq-8x1024", "logmel-vocos-rvq-8x1024", "logmel-bigvgan-bsq-16bit"]  # fmt: skip
#: Configs that are another shipped config on a pretrained vocoder's mel: each front end
#: and each quantizer trains above, and these hold nothing else new (checked below).
ON_VOCODER_MELS = {"logmel-vocos-bsq-16bit": "logmel-bsq-16bit",
                   "logmel-bigvgan-rvq-8x1024": "logmel-rvq-8x1024"}  # fmt: skip


def test_configs_on_vocoder_mels_change_only_the_front_end():
    import yaml

    root = Path(__file__).resolve().parent.parent / "configs"
    for name, base in ON_VOCODER_MELS.items():
        ours, theirs = (yaml.safe_load((root / f"{n}.yaml").read_text()) for n in (name, base))
        assert ours.pop("frontend") != theirs.pop("frontend")
        assert ours == theirs, name


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_train_on_logmels_without_a_non_finite_loss(tmp_path, name):
    """Every shipped config (feature-file ones with the log-mel front end) trains on the
    bundled corpus. configs/lfq-14bit.yaml reached a NaN loss at step 51 for seed 0
    before the entropy fix, hence 70 steps; scripts/train_stability.py runs 2,000 steps
    for seeds 0-4."""
    import yaml

    from tests.conftest import run_cli

    root = Path(__file__).resolve().parent.parent
    configs = {p.stem: yaml.safe_load(p.read_text()) for p in (root / "configs").glob("*.yaml")}
    assert {stem for stem, c in configs.items()
            if c.get("frontend", {}).get("kind") != "ssl"} == {*SHIPPED, *ON_VOCODER_MELS}  # fmt: skip
    config = configs[name]
    if "frontend" not in config:
        logmel = configs["logmel-bsq-16bit"]
        config["frontend"] = logmel["frontend"]
        config.pop("features")
    if config["quantizer"]["family"] == "rvq":
        config["train"]["kmeans_iters"] = 1
    path = tmp_path / "logmel.yaml"
    path.write_text(yaml.safe_dump(config))
    steps, batch = ("70", "4096") if name == "lfq-14bit" else ("30", "1024")
    res = run_cli("train", "--config", path, "--data", root / "scripts/sample_data/audio",
                  "--out", tmp_path / "model.safetensors", "--steps", steps,
                  "--batch-frames", batch, "--json")  # fmt: skip
    assert res.code == 0, res.err
    summary = json.loads(res.out)
    assert math.isfinite(summary["final_loss"]) and math.isfinite(summary["val_mse"])


def test_bsq_sphere_commitment_is_the_closed_form_on_the_sphere():
    """aux(w) - aux(0) = w * mean((u - q)^2), u = x / |x| and q its corner (+-1/sqrt(D) by
    sign), with the gradient reaching x through the normalisation only (q held fixed)."""
    x = torch.randn(4, 30, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    plain, pulled = BSQ(12), BSQ(12, sphere_commitment_weight=0.7)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    base, with_commit = plain(xa).aux_loss, pulled(xb).aux_loss
    u = F.normalize(x, dim=-1)
    q = torch.where(u > 0, 1.0, -1.0).double() / math.sqrt(12)
    assert torch.equal(plain.decode(plain.encode(x)), q.float())
    xc = x.clone().requires_grad_()
    expected = 0.7 * (F.normalize(xc, dim=-1) - q).pow(2).mean()
    assert torch.allclose(with_commit - base, expected, rtol=1e-10, atol=1e-12)
    base.backward()
    with_commit.backward()
    expected.backward()
    assert torch.allclose(xb.grad - xa.grad, xc.grad, rtol=1e-8, atol=1e-12)


def test_bsq_sphere_commitment_stays_out_of_checkpoints_at_its_default():
    """At 0 a BSQ checkpoint's quantizer section (its bytes and id) is what it was; set, it
    round-trips under its own name, not LFQ's commitment_loss_weight, which every
    checkpoint holds at 0.25."""
    from tokquant.quantizers.params import BSQParams
    from tokquant.tokenizer.config.schema import _quantizer_from_dict, _quantizer_to_dict

    assert "sphere_commitment_weight" not in _quantizer_to_dict(BSQParams())
    assert _quantizer_from_dict(_quantizer_to_dict(BSQParams())).sphere_commitment_weight == 0
    stored = _quantizer_to_dict(BSQParams(sphere_commitment_weight=1.5))
    assert stored["commitment_loss_weight"] == 0.25  # LFQ's default, ignored by BSQ
    assert _quantizer_from_dict(stored).sphere_commitment_weight == 1.5
