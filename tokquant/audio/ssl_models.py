"""The SSL models a config may name, as plain data: no torch, no torchaudio.

A config is validated (its layers, its window's attention memory, its feature width)
before anything heavy is imported, so ``tokquant train --help`` style checks and
``TokenizerConfig.validate`` stay fast and work where torchaudio cannot load. The table
mirrors torchaudio's pipeline bundles of the same names (its ASR fine-tunes left out);
``tests/test_ssl.py`` compares every row with the bundle, so the two cannot drift apart.
Building a model reads the full parameters from the bundle itself
(:func:`tokquant.audio.ssl.architecture`).

Every one of these models frames 16 kHz audio with a 400-sample receptive field and a
320-sample hop: 50 frames a second.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokquant.errors import ConfigError

SAMPLE_RATE = 16000
HOP = 320
RECEPTIVE_FIELD = 400
FRAME_RATE = SAMPLE_RATE / HOP


@dataclass(frozen=True)
class SSLModel:
    """What a config needs of an SSL model: its size, and where its weights live."""

    name: str
    model_type: str  # "Wav2Vec2" (wav2vec 2.0, HuBERT) or "WavLM"
    file_name: str  # the weights' name in torch.hub's cache
    normalize_waveform: bool
    embed_dim: int
    num_layers: int
    num_heads: int


MODELS: dict[str, SSLModel] = {
    m.name: m
    for m in (
        SSLModel("HUBERT_BASE", "Wav2Vec2", "hubert_fairseq_base_ls960.pth", False, 768, 12, 12),
        SSLModel("HUBERT_LARGE", "Wav2Vec2", "hubert_fairseq_large_ll60k.pth", True, 1024, 24, 16),
        SSLModel(
            "HUBERT_XLARGE", "Wav2Vec2", "hubert_fairseq_xlarge_ll60k.pth", True, 1280, 48, 16
        ),
        SSLModel(
            "WAV2VEC2_BASE", "Wav2Vec2", "wav2vec2_fairseq_base_ls960.pth", False, 768, 12, 12
        ),
        SSLModel(
            "WAV2VEC2_LARGE", "Wav2Vec2", "wav2vec2_fairseq_large_ls960.pth", False, 1024, 24, 16
        ),
        SSLModel(
            "WAV2VEC2_LARGE_LV60K",
            "Wav2Vec2",
            "wav2vec2_fairseq_large_lv60k.pth",
            True,
            1024,
            24,
            16,
        ),
        SSLModel(
            "WAV2VEC2_XLSR53", "Wav2Vec2", "wav2vec2_fairseq_large_xlsr53.pth", True, 1024, 24, 16
        ),
        SSLModel("WAV2VEC2_XLSR_1B", "Wav2Vec2", "wav2vec2_xlsr_1b.pth", True, 1280, 48, 16),
        SSLModel("WAV2VEC2_XLSR_2B", "Wav2Vec2", "wav2vec2_xlsr_2b.pth", True, 1920, 48, 16),
        SSLModel("WAV2VEC2_XLSR_300M", "Wav2Vec2", "wav2vec2_xlsr_300m.pth", True, 1024, 24, 16),
        SSLModel("WAVLM_BASE", "WavLM", "wavlm_base.pth", False, 768, 12, 12),
        SSLModel("WAVLM_BASE_PLUS", "WavLM", "wavlm_base_plus.pth", False, 768, 12, 12),
        SSLModel("WAVLM_LARGE", "WavLM", "wavlm_large.pth", True, 1024, 24, 16),
    )
}


def ssl_model(name: object) -> SSLModel:
    """The model a config names; ConfigError listing the known ones otherwise."""
    model = MODELS.get(name) if isinstance(name, str) else None
    if model is None:
        raise ConfigError(
            f"frontend.model: must be a torchaudio SSL bundle ({', '.join(sorted(MODELS))}), "
            f"found {name!r}"
        )
    return model
