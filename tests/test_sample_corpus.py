"""The sample corpora of ``scripts/make_sample_corpus.py``: held-out voices and languages
stay out of every training set, every sentence can be handed to its voice, and (where
the synthesisers are installed) each training voice reads its text aloud."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

spec = importlib.util.spec_from_file_location(
    "make_sample_corpus",
    Path(__file__).resolve().parent.parent / "scripts" / "make_sample_corpus.py",
)
corpus = importlib.util.module_from_spec(spec)
spec.loader.exec_module(corpus)


def _language(espeak_voice: str) -> str:
    return espeak_voice.split("+")[0]


def test_no_held_out_voice_or_language_is_trained_on():
    held_voices = {voice for _, voice, _ in corpus.HELDOUT}
    held_languages = {_language(voice) for voice in held_voices}
    trained_espeak = set(corpus.VOICES.values())
    assert not held_voices & trained_espeak
    assert not held_languages & {_language(v) for v in trained_espeak}
    for voice, language, _, _ in corpus.FESTIVAL_VOICES.values():
        assert language not in held_languages, voice
    held_text = {text for _, _, sentences in corpus.HELDOUT for text in sentences}
    for _, _, _, sentences in corpus.FESTIVAL_VOICES.values():
        assert not held_text & set(sentences)


def test_every_training_sentence_fits_its_voices_encoding():
    for voice, _, encoding, sentences in corpus.FESTIVAL_VOICES.values():
        for text in sentences:
            assert text.encode(encoding).decode(encoding) == text, (voice, text)


@pytest.mark.skipif(shutil.which("text2wave") is None, reason="festival is not installed")
def test_each_festival_voice_reads_its_first_sentence():
    for name, (voice, _, encoding, sentences) in corpus.FESTIVAL_VOICES.items():
        if not any(Path("/usr/share/festival/voices").glob(f"*/{voice}")):
            pytest.skip(f"festival voice {voice} is not installed")
        audio = corpus.synthesize_festival(sentences[0], voice, encoding, 1.0)
        assert np.isfinite(audio).all(), name
        assert 1.0 < len(audio) / corpus.SAMPLE_RATE < 6.0, name  # a sentence, not a letter
        assert np.sqrt(np.mean(audio**2)) > 0.01, name  # spoken, not silence
        slower = corpus.synthesize_festival(sentences[0], voice, encoding, 1.3)
        assert len(slower) > 1.15 * len(audio), name  # the stretch reaches the voice
