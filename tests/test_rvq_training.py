"""RVQ training features (EMA, dead codes, dropout), beam search, --levels, imports."""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import run_cli, write_config
from tokquant import RVQ
from tokquant.errors import FormatError
from tokquant.formats.tokens import read_tokens
from tokquant.quantizers.search import beam_search
from tokquant.storage.torch_load import load_state_dict
from tokquant.tokenizer.checkpoint import load_checkpoint
from tokquant.tokenizer.importers import import_rvq

# ---------------------------------------------------------------- EMA and dead codes


def test_ema_update_follows_the_closed_form():
    torch.manual_seed(0)
    decay = 0.9
    q = RVQ(1, 4, 3, ema_decay=decay).train()
    before = q.codebooks[0].detach().clone()
    assert not q.codebooks[0].requires_grad
    x = torch.randn(50, 3)
    out = q(x)
    idx = out.indices[:, 0]
    counts = torch.bincount(idx, minlength=4).float()
    sums = torch.zeros(4, 3).index_add_(0, idx, x)
    ema_count = decay * 1.0 + (1 - decay) * counts
    ema_sum = decay * before + (1 - decay) * sums
    total = ema_count.sum()
    expected = ema_sum / ((ema_count + 1e-5) / (total + 4e-5) * total).unsqueeze(-1)
    assert torch.allclose(q.codebooks[0], expected, atol=1e-6)
    # only the commitment term is a loss: codebooks move by EMA, not by gradient
    assert out.aux_loss.item() == pytest.approx(
        0.25 * ((before[idx] - x) ** 2).mean().item(), rel=1e-5
    )
    q.eval()
    frozen = q.codebooks[0].detach().clone()
    q(x)
    assert torch.equal(q.codebooks[0], frozen)  # no update outside training


@pytest.mark.parametrize("ema", [None, 0.8])
def test_dead_codes_are_replaced_by_batch_residuals_and_stay_replaced(ema):
    torch.manual_seed(1)
    q = RVQ(1, 8, 2, ema_decay=ema, dead_code_threshold=0.5, dead_code_window=2).train()
    with torch.no_grad():
        q.codebooks[0].copy_(
            torch.tensor([[0.0, 0.0]] * 4 + [[100.0, 100.0]] * 4)
            + torch.arange(8.0)[:, None] * 1e-3
        )
        if ema:
            q.levels[0].ema_sum.copy_(q.codebooks[0])
    x = torch.randn(64, 2) * 0.1  # only the codes near 0 are ever used
    out = q(x)  # window step 1 of 2: nothing yet
    assert out.metrics["rvq_dead_codes_replaced"].item() == 0
    out = q(x)  # end of window: codes 4..7 were never used
    assert out.metrics["rvq_dead_codes_replaced"].item() >= 4
    rows = {tuple(r) for r in x.tolist()}
    for k in range(4, 8):
        # the replacement is a residual of this batch, exactly: the EMA step did not
        # overwrite it afterwards
        assert tuple(q.codebooks[0][k].tolist()) in rows
        if ema:
            assert (
                torch.equal(q.levels[0].ema_sum[k], q.codebooks[0][k])
                and q.levels[0].ema_count[k] == 1.0
            )
    usage = torch.bincount(q.encode(x)[:, 0], minlength=8)
    assert (usage[4:] > 0).any()


def test_quantizer_dropout_uses_prefixes_of_levels():
    torch.manual_seed(2)
    q = RVQ(4, 16, 3, quantizer_dropout=1.0).train()
    x = torch.randn(20, 3)
    seen = set()
    for _ in range(40):
        out = q(x)
        n = int(out.metrics["rvq_active_levels"])
        seen.add(n)
        assert (out.indices[:, n:] == -1).all() and (out.indices[:, :n] >= 0).all()
        assert torch.allclose(out.quantized, q.decode(out.indices[:, :n]), atol=1e-6)
    assert seen == {1, 2, 3, 4}
    q.eval()
    assert (q(x).indices >= 0).all()


# ---------------------------------------------------------------- beam search


def brute_force(x: torch.Tensor, levels: list[torch.Tensor]) -> torch.Tensor:
    best = None
    for combo in itertools.product(*[range(c.shape[0]) for c in levels]):
        recon = sum(c[k] for c, k in zip(levels, combo, strict=True))
        err = ((x - recon) ** 2).sum(-1)
        if best is None:
            best_err, best = err, torch.tensor(combo).expand(x.shape[0], -1).clone()
        else:
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best[better] = torch.tensor(combo)
    return best


def test_wide_beam_finds_the_exhaustive_optimum():
    torch.manual_seed(3)
    levels = [torch.randn(6, 4, dtype=torch.float64) * s for s in (1.0, 0.7, 0.5)]
    x = torch.randn(40, 4, dtype=torch.float64)
    assert torch.equal(beam_search(x, levels, beam=36), brute_force(x, levels))


def test_beam_one_is_greedy_and_wider_beams_do_not_hurt_on_average():
    torch.manual_seed(4)
    q = RVQ(4, 32, 6)
    with torch.no_grad():
        for level, cb in enumerate(q.codebooks):
            cb.mul_(0.7**level)
    x = torch.randn(500, 6)
    greedy = q.encode(x)
    assert torch.equal(beam_search(x, [q.level_vectors(lv) for lv in range(4)], beam=1), greedy)
    mse = {b: ((q.decode(q.encode(x, beam=b)) - x) ** 2).mean().item() for b in (1, 2, 4, 8)}
    assert mse[1] >= mse[2] >= mse[4] >= mse[8] and mse[4] < mse[1]
    assert q.encode(x, num_levels=2, beam=4).shape == (500, 2)


def test_beam_ties_go_to_the_lowest_code():
    levels = [
        torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]),
        torch.tensor([[0.0, 0.0], [0.0, 0.0]]),
    ]
    assert beam_search(torch.tensor([[1.0, 0.0]]), levels, beam=3).tolist() == [[0, 0]]


def test_beam_needs_plain_levels():
    q = RVQ(2, 8, 4, codebook_dim=2)
    with pytest.raises(ValueError, match="beam search needs plain levels"):
        q.encode(torch.randn(3, 4), beam=2)


# ---------------------------------------------------------------- CLI: levels and beam


def test_encode_and_decode_with_fewer_levels_and_a_beam(tmp_path, corpus):
    ckpt = tmp_path / "rvq.safetensors"
    assert (
        run_cli(
            "train", "-c", write_config(tmp_path / "c.yaml", "rvq"), "-d", corpus, "-o", ckpt
        ).code
        == 0
    )
    run_cli("encode", ckpt, corpus / "a.npy", "--out", tmp_path / "full")
    assert (
        run_cli("encode", ckpt, corpus / "a.npy", "--out", tmp_path / "two", "--levels", "2").code
        == 0
    )
    full = read_tokens(tmp_path / "full" / "a.tokens.safetensors")
    two = read_tokens(tmp_path / "two" / "a.tokens.safetensors")
    assert two.codes.shape[1] == 2 and np.array_equal(two.codes, full.codes[:, :2])
    assert [c["cardinality"] for c in two.columns] == [16, 8]
    run_cli("decode", ckpt, tmp_path / "two", "--out", tmp_path / "d2")
    run_cli("decode", ckpt, tmp_path / "full", "--out", tmp_path / "d2b", "--levels", "2")
    assert np.array_equal(np.load(tmp_path / "d2" / "a.npy"), np.load(tmp_path / "d2b" / "a.npy"))
    model = load_checkpoint(ckpt).tokenizer
    x = torch.from_numpy(np.load(corpus / "a.npy"))
    assert np.array_equal(two.codes, model.encode(x, levels=2).numpy())
    assert (
        run_cli("encode", ckpt, corpus / "a.npy", "--out", tmp_path / "beam", "--beam", "4").code
        == 0
    )
    beam = read_tokens(tmp_path / "beam" / "a.tokens.safetensors").codes
    assert np.array_equal(beam, model.encode(x, beam=4).numpy())
    res = run_cli("encode", ckpt, corpus / "a.npy", "--out", tmp_path / "x", "--levels", "9")
    assert res.code == 2 and "--levels must be in [1, 3]" in res.err


def test_levels_refused_for_binary_checkpoints(tmp_path, trained, corpus):
    res = run_cli("encode", trained, corpus / "a.npy", "--out", tmp_path, "--levels", "1")
    assert res.code == 2 and "apply to RVQ checkpoints only" in res.err


# ---------------------------------------------------------------- imports from peers


def _save(module: torch.nn.Module, path: Path) -> Path:
    torch.save(module.state_dict(), path)
    return path


def _import(tmp_path: Path, kind: str, state_path: Path):
    out = tmp_path / f"{kind}.safetensors"
    res = run_cli("import", kind, state_path, "--out", out)
    assert res.code == 0, res.err
    return load_checkpoint(out).tokenizer


def test_import_vector_quantize_pytorch_residual_vq(tmp_path):
    vqp = pytest.importorskip("vector_quantize_pytorch")
    torch.manual_seed(5)
    peer = vqp.ResidualVQ(dim=16, num_quantizers=4, codebook_size=64).eval()
    with torch.no_grad():
        for level, layer in enumerate(peer.layers):
            layer._codebook.embed.normal_().mul_(0.6**level)
            layer._codebook.initted.fill_(True)
    tok = _import(tmp_path, "vqp", _save(peer, tmp_path / "vqp.pt"))
    x = torch.randn(4, 200, 16)
    quantized, codes, _ = peer(x)
    assert torch.equal(tok.encode(x), codes)
    assert torch.allclose(tok.decode(codes), quantized, atol=1e-5)


def test_import_encodec_residual_vector_quantizer(tmp_path):
    vq_mod = pytest.importorskip("encodec.quantization")
    torch.manual_seed(6)
    peer = vq_mod.ResidualVectorQuantizer(dimension=32, n_q=4, bins=64).eval()
    with torch.no_grad():
        for level, layer in enumerate(peer.vq.layers):
            layer._codebook.embed.normal_().mul_(0.6**level)
            layer._codebook.inited.fill_(1)
    tok = _import(tmp_path, "encodec", _save(peer, tmp_path / "encodec.pt"))
    x = torch.randn(3, 32, 150)  # EnCodec's [B, D, T]
    codes = peer.encode(x, 75, 1.8)  # 4 levels of 6 bits at 75 frames/s = 1.8 kbps
    assert codes.shape == (4, 3, 150)
    ours = tok.encode(x.transpose(1, 2))  # [B, T, 4]
    assert torch.equal(ours, codes.permute(1, 2, 0))
    assert torch.allclose(tok.decode(ours).transpose(1, 2), peer.decode(codes), atol=1e-5)


def _import_dac_quantize():
    spec = importlib.util.find_spec("dac")
    if spec is None:
        pytest.skip("descript-audio-codec not installed")
    # dac/__init__.py imports the whole codec (and descript-audiotools); the quantizer
    # module needs none of it, so load the package namespaces without running __init__.
    root = Path(next(iter(spec.submodule_search_locations)))
    saved = {name: sys.modules.get(name) for name in ("dac", "dac.nn")}
    for name, path in (("dac", root), ("dac.nn", root / "nn")):
        module = types.ModuleType(name)
        module.__path__ = [str(path)]
        sys.modules[name] = module
    try:
        import dac.nn.quantize as quantize

        return quantize
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)


def test_import_descript_audio_codec_residual_vector_quantize(tmp_path):
    quantize = _import_dac_quantize()
    torch.manual_seed(7)
    with pytest.warns(FutureWarning):  # DAC uses the old weight_norm API
        peer = quantize.ResidualVectorQuantize(
            input_dim=32, n_codebooks=4, codebook_size=64, codebook_dim=8
        )
    peer.eval()
    tok = _import(tmp_path, "dac", _save(peer, tmp_path / "dac.pt"))
    x = torch.randn(2, 32, 120)
    z_q, codes, *_ = peer(x)
    ours = tok.encode(x.transpose(1, 2))
    assert torch.equal(ours, codes.transpose(1, 2))
    assert torch.allclose(tok.decode(ours).transpose(1, 2), z_q, atol=1e-4)
    assert torch.allclose(tok.decode(ours).transpose(1, 2), peer.from_codes(codes)[0], atol=1e-4)


def test_import_errors_are_clean(tmp_path):
    torch.save({"nothing": torch.zeros(1)}, tmp_path / "x.pt")
    with pytest.raises(FormatError, match="not a descript-audio-codec"):
        import_rvq("dac", load_state_dict(tmp_path / "x.pt"))
    res = run_cli("import", "vqp", tmp_path / "x.pt", "--out", tmp_path / "o.safetensors")
    assert res.code == 2 and "not a vector-quantize-pytorch ResidualVQ state dict" in res.err
    assert not (tmp_path / "o.safetensors").exists()
    res = run_cli("import", "faiss", tmp_path / "x.pt", "--out", tmp_path / "o.safetensors")
    assert res.code == 2


def test_imported_checkpoint_info(tmp_path):
    vqp = pytest.importorskip("vector_quantize_pytorch")
    peer = vqp.ResidualVQ(dim=8, num_quantizers=2, codebook_size=16).eval()
    run_cli("import", "vqp", _save(peer, tmp_path / "p.pt"), "--out", tmp_path / "c.safetensors")
    data = json.loads(run_cli("info", tmp_path / "c.safetensors", "--json").out)
    assert data["summary"]["imported_from"] == "vqp"
    assert data["config"]["quantizer"]["num_levels"] == 2
