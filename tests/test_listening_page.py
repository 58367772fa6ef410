"""The listening page in a real browser (issue 40): headless Chromium (Debian's chromium
and chromium-driver, installed by scripts/setup.sh) opens ``index.html`` from the file
system: no console error, no request that is not one of its own files, every ``<audio>``
reaches its metadata with the duration of its file, clicking a column header sorts the
table, and a hostile file name is text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import unquote

import pytest
import soundfile as sf

from tests.conftest import SAMPLES, run_cli, save_small_dac

webdriver = pytest.importorskip("selenium.webdriver")
if not (
    shutil.which("chromedriver") and (shutil.which("chromium") or shutil.which("chromium-browser"))
):
    pytest.skip("no chromium and chromedriver here (scripts/setup.sh installs them as root)",
                allow_module_level=True)  # fmt: skip
pytest.importorskip("matplotlib")

HOSTILE = '<img src=x onerror=alert(1)>it\'s "x"'


@pytest.fixture(scope="module")
def page(logmel_rvq, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("page")
    wav = root / "wav"
    wav.mkdir()
    (wav / "utt00.flac").write_bytes((SAMPLES / "us_m" / "utt00.flac").read_bytes())
    (wav / f"{HOSTILE}.flac").write_bytes((SAMPLES / "gb_f" / "utt01.flac").read_bytes())
    pytest.importorskip("transformers")
    save_small_dac(root / "dac")  # a codec tokenizer: its own decoder
    assert run_cli("import", "codec", root / "dac", "--out", root / "dac.safetensors").code == 0
    res = run_cli("compare", logmel_rvq, root / "dac.safetensors", "--audio", wav, "--out",
                  root / "cmp", "--html", "--json")  # fmt: skip
    assert res.code == 0, res.err
    return Path(json.loads(res.out)["page"])


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required"):  # fmt: skip
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()


def test_the_page_loads_offline_with_every_player_and_sorts(page, browser):
    browser.get(page.as_uri())
    durations = browser.execute_async_script(
        """
        var done = arguments[arguments.length - 1];
        var players = Array.from(document.querySelectorAll("audio"));
        var left = players.length, out = {};
        function settle(a) { out[a.getAttribute("src")] = a.duration; if (--left === 0) done(out); }
        players.forEach(function (a) {
          if (a.readyState >= 1) { settle(a); return; }
          a.addEventListener("loadedmetadata", function () { settle(a); }, {once: true});
          a.addEventListener("error", function () { out[a.getAttribute("src")] = -1; if (--left === 0) done(out); }, {once: true});
          a.load();
        });
        setTimeout(function () { done(out); }, 20000);
        """
    )
    assert len(durations) == 2 * 3, durations  # 2 files: the original and 2 systems each
    for src, seconds in durations.items():
        info = sf.info(page.parent / unquote(src))
        frame = 320 / info.samplerate  # one frame of either tokenizer (10 or 20 ms)
        assert abs(seconds - info.frames / info.samplerate) <= frame, (src, seconds)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
    requested = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requested.append(message["params"]["request"]["url"])
    # the browser's own media-control icons are data: URLs; nothing else leaves the folder
    files = [u for u in requested if not u.startswith("data:")]
    assert files and all(u.startswith(page.parent.as_uri() + "/") for u in files), files
    assert "data:" not in page.read_text(encoding="utf-8")
    # the hostile name is text, not an element, and ran nothing
    keys = [td.text for td in browser.find_elements("css selector", "td.key")]
    assert HOSTILE in keys and not browser.find_elements("css selector", "td.key img")
    # clicking a header sorts the systems by it (the original's row stays last)
    header = browser.find_element("css selector", '#summary th[data-col="6"]')  # STOI
    for _ in range(2):
        header.click()
        values = [
            float(r.find_elements("css selector", "td")[6].get_attribute("data-v"))
            for r in browser.find_elements("css selector", "#summary tbody tr:not(.ref)")
        ]
        direction = header.get_attribute("data-dir")
        assert values == sorted(values, reverse=direction == "down"), (direction, values)
    rows = browser.find_elements("css selector", "#summary tbody tr")
    assert rows[-1].get_attribute("class") == "ref"
