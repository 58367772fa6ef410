"""A screenshot of a listening page (``tokquant compare --html``) in headless Chromium,
for the README: ``python scripts/screenshot_page.py runs/demo/compare/index.html
docs/listening-page.png``."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from selenium import webdriver


def main() -> None:
    page, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1600",
                "--hide-scrollbars"):  # fmt: skip
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.get(page.as_uri())
        driver.execute_script("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
        driver.implicitly_wait(2)
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
    print(out)


if __name__ == "__main__":
    main()
