"""Make the bundled sample corpus: 30 short utterances, 5 espeak-ng voices, 16 kHz FLAC.

    apt-get install espeak-ng      # Debian package
    python scripts/make_sample_corpus.py [--out scripts/sample_data/audio]
    python scripts/make_sample_corpus.py --heldout --out /tmp/heldout   # never trained on

``--more-voices`` writes 48 utterances of four flite voices (``apt-get install flite``:
awb, rms, slt, kal16, English) and 72 of six festival voices (``apt-get install
festival festvox-kallpc16k festvox-kdlpc16k festvox-czech-dita festvox-czech-krb
festvox-czech-machac festvox-ca-ona-hts``, or ``bash scripts/setup.sh --voices``: two
American English diphone voices, three Czech voices (a woman, a man, a boy) and a
Catalan woman, each reading in its language), none of them espeak's, for training
decoders on more voices than the bundled five (``scripts/vocoder_quality.py
--train-extra``); never bundled, and none of the held-out set's voices or languages.
``--no-festival`` leaves the festival voices out.

``--heldout`` writes 30 utterances of other voices and languages (German, French,
Spanish, Italian, Hindi, Finnish, Welsh, Caribbean, New York and Received Pronunciation
English, three sentences each in the language): what tokenizers and vocoders trained on
the bundled corpus are scored on (``scripts/vocoder_quality.py``).

Five voices read six sentences each at slightly varied speeds; espeak's 22.05 kHz output
is resampled to 16 kHz with torchaudio and stored as 16-bit FLAC under
``<voice>/uttNN.flac``. Deterministic for a given espeak-ng version.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Speech tokens let language models listen and talk.",
    "Residual quantizers refine a vector one level at a time.",
    "A binary code splits the sphere into many small cells.",
    "Please encode the whole corpus before the morning meeting.",
    "Seven silver spoons sat on the wooden table by the window.",
]
VOICES = {
    "us_m": "en-us",
    "us_f": "en-us+f4",
    "gb_f": "en-gb+f3",
    "gb_m": "en-gb+m2",
    "sc_m": "en-gb-scotland+m3",
}
#: More sentences for the flite voices, which read the bundled six too.
MORE_SENTENCES = [
    "A small boat drifted slowly across the quiet harbour.",
    "Numbers like forty two and nine hundred are read aloud.",
    "The library closes early on public holidays.",
    "Bright colours make the old kitchen feel warm again.",
    "Every morning the baker opens the shop at six.",
    "Could you send me the report before Friday afternoon?",
]
#: flite's built-in voices used for training (none is espeak's or a held-out one).
FLITE_VOICES = {"fl_awb": "awb", "fl_rms": "rms", "fl_slt": "slt", "fl_kal": "kal16"}
CZECH = [
    "Vlak do Prahy odjíždí v osm hodin ráno.",
    "Celé odpoledne jsme pracovali na zahradě.",
    "Můžeš mi prosím podat sůl?",
    "Na stole leží tři červená jablka.",
    "Zítra bude pršet a foukat silný vítr.",
    "Knihovna je v neděli zavřená.",
    "Každé ráno piju kávu s mlékem.",
    "Děti si hrají na hřišti za školou.",
    "Potřebuji koupit nové boty na zimu.",
    "Náš pes rád běhá podél řeky.",
    "Dopis přišel až po týdnu.",
    "V létě jezdíme k moři.",
]
CATALAN = [
    "El tren cap a Girona surt a les vuit del matí.",
    "Hem treballat tota la tarda al jardí.",
    "Em pots passar la sal, si us plau?",
    "Hi ha tres pomes vermelles sobre la taula.",
    "Demà plourà i farà molt de vent.",
    "La biblioteca tanca els diumenges.",
    "Cada matí prenc un cafè amb llet.",
    "Els nens juguen a la plaça després de l'escola.",
    "Necessito comprar unes sabates noves.",
    "El nostre gos corre al costat del riu.",
    "La carta va arribar una setmana després.",
    "A l'estiu anem a la platja.",
]
#: festival voices used for training: (voice, its language as espeak names it, the
#: text encoding it reads, sentences). None is espeak's, and none speaks a held-out
#: language.
FESTIVAL_VOICES = {
    "fe_kal": ("kal_diphone", "en-us", "ascii", SENTENCES + MORE_SENTENCES),
    "fe_ked": ("ked_diphone", "en-us", "ascii", SENTENCES + MORE_SENTENCES),
    "fe_cs_f": ("czech_dita", "cs", "iso-8859-2", CZECH),
    "fe_cs_m": ("czech_machac", "cs", "iso-8859-2", CZECH),
    "fe_cs_boy": ("czech_krb", "cs", "iso-8859-2", CZECH),
    "fe_ca_f": ("upc_ca_ona_hts", "ca", "iso-8859-1", CATALAN),
}
SAMPLE_RATE = 16_000
#: Held-out voices: (name, espeak voice, three sentences in its language).
HELDOUT = [
    (
        "de_m",
        "de",
        [
            "Der Zug nach Berlin fährt um acht Uhr ab.",
            "Wir haben den ganzen Nachmittag im Garten gearbeitet.",
            "Kannst du mir bitte das Salz reichen?",
        ],
    ),
    (
        "fr_f",
        "fr-fr+f2",
        [
            "Le chat dort sur le canapé depuis ce matin.",
            "Nous partirons en vacances au bord de la mer.",
            "Il fait très beau aujourd'hui à Paris.",
        ],
    ),
    (
        "es_m",
        "es+m4",
        [
            "El mercado abre temprano todos los domingos.",
            "Mi hermana estudia música en la universidad.",
            "¿Dónde está la estación de autobuses?",
        ],
    ),
    (
        "it_f",
        "it+f1",
        [
            "La pasta è pronta, venite a tavola.",
            "Domani andremo a visitare il museo.",
            "Il treno per Roma è in ritardo.",
        ],
    ),
    (
        "hi_m",
        "hi",
        ["मैं हर सुबह पार्क में टहलने जाता हूँ।", "आज बाज़ार में बहुत भीड़ थी।", "क्या आप मेरी मदद कर सकते हैं?"],
    ),
    (
        "fi_f",
        "fi+f3",
        [
            "Talvella järvi jäätyy kokonaan.",
            "Hän luki kirjan yhdessä illassa.",
            "Huomenna sataa luultavasti lunta.",
        ],
    ),
    (
        "cy_m",
        "cy+m1",
        [
            "Mae'r tywydd yn braf heddiw.",
            "Rydw i'n hoffi darllen llyfrau.",
            "Ble mae'r orsaf drenau?",
        ],
    ),
    (
        "car_f",
        "en-029+f4",
        [
            "The market sells fresh fish every morning.",
            "She walked along the beach until sunset.",
            "Could you tell me the way to the harbour?",
        ],
    ),
    (
        "nyc_m",
        "en-us-nyc+m5",
        [
            "The subway was late again this morning.",
            "He ordered a coffee and a bagel to go.",
            "Our apartment looks out over the river.",
        ],
    ),
    (
        "rp_f",
        "en-gb-x-rp+f5",
        [
            "The garden party was cancelled because of rain.",
            "Please close the door quietly behind you.",
            "A letter arrived from an old friend.",
        ],
    ),
]


def synthesize(text: str, voice: str, speed: int) -> np.ndarray:
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return torchaudio.functional.resample(torch.from_numpy(audio), rate, SAMPLE_RATE).numpy()


def synthesize_flite(text: str, voice: str, stretch: float) -> np.ndarray:
    """flite's voice reading ``text`` (``stretch`` > 1 is slower), at 16 kHz."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.wav"
        subprocess.run(
            ["flite", "-voice", voice, "--setf", f"duration_stretch={stretch}", "-t", text,
             "-o", str(out)],
            check=True, capture_output=True,
        )  # fmt: skip
        audio, rate = sf.read(out, dtype="float32")
    return torchaudio.functional.resample(torch.from_numpy(audio), rate, SAMPLE_RATE).numpy()


def synthesize_festival(text: str, voice: str, encoding: str, stretch: float) -> np.ndarray:
    """festival's ``voice`` reading ``text`` (``stretch`` > 1 is slower), at 16 kHz. The
    text goes in a file in the encoding the voice reads, never through a shell. Diphone
    voices take the stretch from ``Duration_Stretch``; HTS voices (``*_hts``) ignore it
    and take their engine's speech rate (``-r``, its inverse) instead."""
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "x.txt", Path(tmp) / "x.wav"
        source.write_bytes(text.encode(encoding))
        setup = f"(voice_{voice}) (Parameter.set 'Duration_Stretch {stretch})"
        if voice.endswith("_hts"):
            speech_rate = f'(list "-r" {1 / stretch})'
            setup += f" (set! hts_engine_params (append hts_engine_params (list {speech_rate})))"
        setup = f"(begin {setup})"
        subprocess.run(
            ["text2wave", "-eval", setup, str(source), "-o", str(out)],
            check=True, capture_output=True,
        )  # fmt: skip
        audio, rate = sf.read(out, dtype="float32")
    return torchaudio.functional.resample(torch.from_numpy(audio), rate, SAMPLE_RATE).numpy()


def write(path: Path, audio: np.ndarray) -> float:
    """``audio`` as 16-bit FLAC (scaled down where it peaks above full scale); its seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    sf.write(str(path), audio / max(peak, 1.0), SAMPLE_RATE, subtype="PCM_16")
    return len(audio) / SAMPLE_RATE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "sample_data" / "audio")
    parser.add_argument(
        "--heldout",
        action="store_true",
        help="other voices and languages, for scoring (not bundled)",
    )
    parser.add_argument(
        "--more-voices",
        action="store_true",
        help="flite and festival voices, for training decoders on more voices (not bundled)",
    )
    parser.add_argument(
        "--no-festival", action="store_true", help="with --more-voices: flite's voices only"
    )
    args = parser.parse_args()
    if args.more_voices:
        if shutil.which("flite") is None:
            raise SystemExit("flite not found: apt-get install flite")
        if not args.no_festival and shutil.which("text2wave") is None:
            raise SystemExit("festival not found: apt-get install festival (or --no-festival)")
        seconds, count = 0.0, 0
        for v, (name, voice) in enumerate(FLITE_VOICES.items()):
            for i, text in enumerate(SENTENCES + MORE_SENTENCES):
                audio = synthesize_flite(text, voice, stretch=0.9 + 0.1 * ((i + v) % 3))
                seconds += write(args.out / name / f"utt{i:02d}.flac", audio)
                count += 1
        festival = {} if args.no_festival else FESTIVAL_VOICES
        for v, (name, (voice, _, encoding, sentences)) in enumerate(festival.items()):
            for i, text in enumerate(sentences):
                stretch = 0.9 + 0.1 * ((i + v) % 3)
                audio = synthesize_festival(text, voice, encoding, stretch)
                seconds += write(args.out / name / f"utt{i:02d}.flac", audio)
                count += 1
        print(f"wrote {count} utterances, {seconds:.1f} s of audio, to {args.out}")
        return
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng not found: apt-get install espeak-ng")
    plan = (
        [(name, voice, sentences) for name, voice, sentences in HELDOUT]
        if args.heldout
        else [(name, voice, SENTENCES) for name, voice in VOICES.items()]
    )
    seconds, count = 0.0, 0
    for v, (name, voice, sentences) in enumerate(plan):
        for i, text in enumerate(sentences):
            audio = synthesize(text, voice, speed=150 + 10 * ((i + v) % 3))
            path = args.out / name / f"utt{i:02d}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), np.clip(audio, -1, 1), SAMPLE_RATE, subtype="PCM_16")
            seconds += len(audio) / SAMPLE_RATE
            count += 1
    print(f"wrote {count} utterances, {seconds:.1f} s of audio, to {args.out}")


if __name__ == "__main__":
    main()
