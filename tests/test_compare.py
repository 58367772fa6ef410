"""``tokquant compare`` (issue 40): several tokenizers, each with its decoder, scored on the
same audio in one run give the numbers separate ``eval`` runs give, file by file; the
listening page is self-contained, links only its own files, and shows a hostile file
name as text."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest

from tests.conftest import SAMPLES, run_cli, save_small_dac
from tokquant.formats.listening_page import FileEntry, Page, SystemEntry, link, render
from tokquant.jobs import EvalJob

pytest.importorskip("matplotlib")
HOSTILE = '<b onmouseover=alert(1)>it\'s "x"'


class Links(HTMLParser):
    """Every src/href of a page, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [(tag, v) for k, v in attrs if k in ("src", "href") and v is not None]

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def compared(logmel_rvq, tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    wav = root / "wav"
    wav.mkdir()
    (wav / "utt00.flac").write_bytes((SAMPLES / "us_m" / "utt00.flac").read_bytes())
    (wav / f"{HOSTILE}.flac").write_bytes((SAMPLES / "us_f" / "utt01.flac").read_bytes())
    pytest.importorskip("transformers")
    save_small_dac(root / "dac")  # a codec tokenizer: its own decoder
    assert run_cli("import", "codec", root / "dac", "--out", root / "dac.safetensors").code == 0
    res = run_cli("compare", logmel_rvq, logmel_rvq, root / "dac.safetensors", "--audio", wav,
                  "--out", root / "cmp", "--html", "--json")  # fmt: skip
    assert res.code == 0, res.err
    return root, json.loads(res.out)


def test_compare_gives_the_numbers_of_separate_eval_runs(compared, logmel_rvq):
    root, report = compared
    first, second, codec = (s["name"] for s in report["systems"])
    assert second == f"{first}-2"  # the same file twice: two systems, two folders
    checkpoints = {first: logmel_rvq, second: logmel_rvq, codec: root / "dac.safetensors"}
    for system in report["systems"]:
        tokens = root / "cmp" / "systems" / system["name"] / "tokens"
        alone = EvalJob(checkpoints[system["name"]], [tokens], [root / "wav"]).run()
        assert system["rows"] == alone.rows and system["overall"] == alone.overall
        assert system["bitrate_kbps"] == alone.bitrate_kbps and system["decoder"] == alone.decoder
        assert system["encode_x_real_time"] > 0 and system["decode_x_real_time"] > 0
    assert [s["decoder"][:4] for s in report["systems"]] == ["grif", "grif", "dac:"]
    assert report["audio_seconds"] == pytest.approx(sum(r["seconds"] for r in alone.rows))


def test_the_page_links_only_its_own_files_and_shows_names_as_text(compared):
    root, report = compared
    page = root / "cmp" / "index.html"
    assert report["page"] == str(page)
    text = page.read_text(encoding="utf-8")
    parser = Links()
    parser.feed(text)
    audio = [v for tag, v in parser.links if tag == "audio"]
    images = [v for tag, v in parser.links if tag == "img"]
    assert len(audio) == 2 * (1 + 3) and len(images) == 2 * 3 + 3  # mels, usage plots
    for _, target in parser.links:
        assert "://" not in target and not target.startswith(("/", "..")), target
        assert (root / "cmp" / unquote(target)).is_file(), target
    assert "b" not in parser.tags  # the hostile name is no tag
    assert HOSTILE in "".join(parser.text)
    assert "http" not in text.lower().replace("http-equiv", "")


def test_page_links_below_its_folder_only():
    assert link("systems/a b/wav/x.wav") == "systems/a%20b/wav/x.wav"
    assert link('original/"x".wav') == "original/%22x%22.wav"
    for bad in ("../x.wav", "/etc/passwd", "javascript:alert(1)", "a/../../x"):
        with pytest.raises(Exception, match="not a link below"):
            link(bad)
    page = Page("t", [("stoi", "STOI", True)], [SystemEntry("<s>", "d", {"stoi": 0.5})],
                [FileEntry("k", None, [None], [None])])  # fmt: skip
    assert "<s>" not in render(page) and "&lt;s&gt;" in render(page)


def test_one_vocoder_per_tokenizer_or_none(logmel_rvq, tmp_path):
    res = run_cli("compare", logmel_rvq, logmel_rvq, "--vocoder", "default", "--audio",
                  SAMPLES / "us_m", "--out", tmp_path / "c")  # fmt: skip
    assert res.code == 2 and "names 1 decoder(s) for 2 tokenizer(s)" in res.err, res.err
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())
