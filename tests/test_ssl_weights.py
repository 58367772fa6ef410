"""SSL weights on a fresh machine: the whole download path against a real HTTP server on
127.0.0.1 (empty TORCH_HOME, download, the sha256 recorded, the second run from the
cache, an interrupted download that leaves nothing), ``--ssl-weights`` for a moved file,
and one-line messages for weights of another architecture (issue 23)."""

from __future__ import annotations

import dataclasses
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.conftest import run_cli
from tests.test_hostile_round3 import one_error
from tokquant.audio import ssl, ssl_models
from tokquant.formats.checkpoint import read_checkpoint_metadata

#: HuBERT base's framing (400-sample field, 320 hop) at a tiny width: 2 layers of 32.
SMALL = {
    "extractor_mode": "group_norm",
    "extractor_conv_layer_config": [(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2,
    "extractor_conv_bias": False, "encoder_embed_dim": 32, "encoder_projection_dropout": 0.0,
    "encoder_pos_conv_kernel": 16, "encoder_pos_conv_groups": 4, "encoder_num_layers": 2,
    "encoder_num_heads": 2, "encoder_attention_dropout": 0.0, "encoder_ff_interm_features": 64,
    "encoder_ff_interm_dropout": 0.0, "encoder_dropout": 0.0, "encoder_layer_norm_first": False,
    "encoder_layer_drop": 0.0, "aux_num_out": None,
}  # fmt: skip
NAME = "HUBERT_BASE"


class Server:
    """A static file server on 127.0.0.1 that counts requests; ``cut`` serves only the
    first bytes of a file while announcing its whole length (a dropped connection)."""

    def __init__(self, root: Path) -> None:
        self.root, self.requests, self.cut = root, [], None
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kw) -> None:
                super().__init__(*args, directory=str(root), **kw)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.requests.append(self.path)
                if server.cut is None:
                    return super().do_GET()
                data = (root / self.path.lstrip("/")).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: server.cut])
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


_architecture = ssl.architecture  # the real one, before a test replaces it


def _small_arch() -> ssl.Architecture:
    real = _architecture(NAME)
    return ssl.Architecture(NAME, real.model_type, SMALL, real.file_name, False)


def _clear_caches() -> None:
    _architecture.cache_clear()


@pytest.fixture
def small_hubert(monkeypatch, tmp_path) -> Iterator[tuple[Server, dict[str, torch.Tensor]]]:
    """HUBERT_BASE shrunk, its weights served by a local server, TORCH_HOME empty."""
    arch = _small_arch()
    _clear_caches()
    monkeypatch.setattr(ssl, "architecture", lambda name: arch if name == NAME else None)
    row = ssl_models.MODELS[NAME]  # what configs validate against: the small model's sizes
    monkeypatch.setitem(ssl_models.MODELS, NAME, dataclasses.replace(
        row, embed_dim=SMALL["encoder_embed_dim"], num_layers=SMALL["encoder_num_layers"],
        num_heads=SMALL["encoder_num_heads"]))  # fmt: skip
    served = tmp_path / "served"
    served.mkdir()
    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in arch.build().state_dict().items()}
    torch.save(state, served / arch.file_name)
    server = Server(served)
    monkeypatch.setattr(ssl, "WEIGHTS_BASE_URL", server.url)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    yield server, state
    server.close()
    _clear_caches()


def _audio(root: Path) -> Path:
    root.mkdir()
    t = np.arange(24000) / 16000
    for i, f in enumerate((150, 230, 310, 390)):
        sf.write(root / f"u{i}.wav", 0.3 * np.sin(2 * np.pi * f * t), 16000)
    return root


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "ssl.yaml"
    path.write_text(f"frontend: {{kind: ssl, model: {NAME}, layers: [2]}}\nquantizer: "
                    f"{{family: rvq, num_levels: 1, num_embeddings: 8}}\nprojection: "
                    f"{{kind: none}}\ntrain: {{steps: 0, kmeans_iters: 2}}\n")  # fmt: skip
    return path


def _hub_files(tmp_path: Path) -> list[str]:
    folder = tmp_path / "torch-home" / "hub" / "checkpoints"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_weights_download_into_a_fresh_cache_once(tmp_path, small_hubert):
    server, state = small_hubert
    data = _audio(tmp_path / "in")
    ckpt = tmp_path / "m.safetensors"
    res = run_cli("train", "-c", _config(tmp_path), "-d", data, "-o", ckpt)
    assert res.code == 0, res.err
    name = _small_arch().file_name
    assert server.requests == [f"/{name}"]
    assert _hub_files(tmp_path) == [name]  # the folder was made; no temp file left
    recorded = read_checkpoint_metadata(ckpt)["config"]["frontend"]["weights_sha256"]
    assert recorded == ssl.weights_digest(state)
    res = run_cli("encode", ckpt, data, "--out", tmp_path / "units")
    assert res.code == 0, res.err
    assert server.requests == [f"/{name}"]  # the second run read the cache


def test_an_interrupted_download_leaves_no_half_file(tmp_path, small_hubert):
    server, _ = small_hubert
    server.cut = 1000
    data = _audio(tmp_path / "in")
    res = run_cli("train", "-c", _config(tmp_path), "-d", data, "-o", tmp_path / "m.safetensors")
    line = one_error(res)
    assert "could not be downloaded (the download ended after 1000 of" in line
    assert _hub_files(tmp_path) == []
    server.cut = None  # the next run, with the network back, downloads it whole
    res = run_cli("train", "-c", _config(tmp_path), "-d", data, "-o", tmp_path / "m.safetensors")
    assert res.code == 0, res.err
    assert _hub_files(tmp_path) == [_small_arch().file_name]


def test_moved_weights_are_named_with_ssl_weights_and_checked(tmp_path, small_hubert):
    _, state = small_hubert
    data = _audio(tmp_path / "in")
    weights = tmp_path / "w.pth"
    torch.save(state, weights)
    config = _config(tmp_path)
    config.write_text(config.read_text().replace("layers: [2]", f"layers: [2], weights: {weights}"))
    ckpt = tmp_path / "m.safetensors"
    assert run_cli("train", "-c", config, "-d", data, "-o", ckpt).code == 0
    moved = tmp_path / "elsewhere.safetensors"
    from safetensors.torch import save_file

    save_file(state, str(moved))  # another file and format, the same tensors
    weights.unlink()
    _clear_caches()
    res = run_cli("encode", ckpt, data, "--out", tmp_path / "a")
    assert "w.pth: file not found" in one_error(res)
    res = run_cli("encode", ckpt, data, "--out", tmp_path / "b", "--ssl-weights", moved)
    assert res.code == 0, res.err
    for command in ("audit", "stats"):
        args = [data] if command == "audit" else [tmp_path / "b", "--features", data]
        res = run_cli(command, ckpt, *args, "--ssl-weights", moved)
        assert res.code == 0, (command, res.err)
    other = {k: v + 1 for k, v in state.items()}
    save_file(other, str(tmp_path / "other.safetensors"))
    res = run_cli("encode", ckpt, data, "--out", tmp_path / "c", "--ssl-weights",
                  tmp_path / "other.safetensors")  # fmt: skip
    assert "are not the ones this tokenizer was trained on" in one_error(res)


def test_ssl_weights_on_a_checkpoint_without_ssl_is_refused(tmp_path, trained, corpus):
    res = run_cli("encode", trained, corpus, "--out", tmp_path / "o", "--ssl-weights", trained)
    assert "has no SSL front end" in one_error(res)


def test_weights_of_another_architecture_name_three_keys_and_a_count(tmp_path, small_hubert):
    wrong = {"encoder.w1": torch.zeros(2), "encoder.w2": torch.zeros(2)}
    path = tmp_path / "wrong.pth"
    torch.save(wrong, path)
    config = _config(tmp_path)
    config.write_text(config.read_text().replace("layers: [2]", f"layers: [2], weights: {path}"))
    res = run_cli("train", "-c", config, "-d", _audio(tmp_path / "in"), "-o",
                  tmp_path / "m.safetensors")  # fmt: skip
    line = one_error(res)
    missing = len(_small_arch().build().state_dict())
    assert f"{missing} tensor(s) missing: " in line and f"and {missing - 3} more" in line
    assert "2 tensor(s) unexpected: encoder.w1, encoder.w2" in line and len(line) < 600


def test_fewer_frames_than_codes_warns_in_one_line(tmp_path, corpus):
    from tests.conftest import write_config

    config = write_config(tmp_path / "c.yaml", "rvq", quantizer__num_embeddings=[512, 8, 8],
                          train__steps=2)  # fmt: skip
    res = run_cli("train", "-c", config, "-d", corpus, "-o", tmp_path / "m.safetensors")
    assert res.code == 0, res.err
    warnings = [line for line in res.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "345 frames for codebooks of 512 codes" in warnings[0]
