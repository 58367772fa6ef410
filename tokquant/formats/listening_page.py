"""The listening page: one self-contained static ``index.html`` (no network, no CDN; opens
from the file system) beside the audio and images it links.

The page is built from plain data (:class:`Page`): the summary table, sortable by each
column (a few lines of inline script), then one row per file with a player for the
original and for every system's decoded audio, their log-mel images, and each system's
codebook-usage plot. Every text comes from strangers (file names, keys, paths) and is
escaped as text; every link is relative, percent-encoded, and checked to stay below the
page's folder (no ``..``, no scheme, no absolute path), so a name with ``<``, quotes or
``../`` neither breaks the page nor runs script.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from tokquant.errors import OutputNameError
from tokquant.storage.atomic import atomic_path


@dataclass
class SystemEntry:
    """One tokenizer and its decoder, and its summary numbers by column key."""

    name: str
    decoder: str
    values: dict[str, float | None]
    usage_image: str | None = None


@dataclass
class FileEntry:
    """One reference file: its key, the original's audio, and per system (in the order of
    :attr:`Page.systems`) its decoded audio and log-mel image (None where it failed)."""

    key: str
    original: str | None
    decoded: list[str | None]
    images: list[str | None]


@dataclass
class Page:
    title: str
    #: ``(key, label, higher_is_better)`` of the summary table's numeric columns
    columns: list[tuple[str, str, bool | None]]
    systems: list[SystemEntry]
    files: list[FileEntry]
    #: the original audio's own numbers (DNSMOS: the ceiling), shown as the last row
    reference: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def link(target: str) -> str:
    """A relative link below the page's folder, percent-encoded; anything else (``..``,
    an absolute path, a scheme) is refused: a page only ever links its own files."""
    path = PurePosixPath(target)
    if path.is_absolute() or ".." in path.parts or ":" in path.parts[0] or not path.parts:
        raise OutputNameError(f"{target!r}: not a link below the page's folder")
    return html.escape(quote(path.as_posix(), safe="/"), quote=True)


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return '<td data-v="">-</td>'
    return f'<td data-v="{value!r}">{value:.3f}</td>'


def render(page: Page) -> str:
    """The page's HTML text."""
    e = html.escape
    head = "".join(
        f'<th data-col="{i}" title="click to sort">{e(label)}'
        f"{'' if better is None else (' &uarr;' if better else ' &darr;')}</th>"
        for i, (_, label, better) in enumerate(page.columns, start=2)
    )
    rows = []
    for s in page.systems:
        cells = "".join(_number(s.values.get(key)) for key, _, _ in page.columns)
        rows.append(f"<tr><td>{e(s.name)}</td><td>{e(s.decoder)}</td>{cells}</tr>")
    if page.reference:
        cells = "".join(_number(page.reference.get(key)) for key, _, _ in page.columns)
        rows.append(f'<tr class="ref"><td>original audio</td><td>-</td>{cells}</tr>')
    names = "".join(f"<th>{e(s.name)}</th>" for s in page.systems)
    files = []
    for f in page.files:
        cells = [f"<td class='key'>{e(f.key)}</td>", _player(f.original)]
        for decoded, image in zip(f.decoded, f.images, strict=True):
            img = (f'<br><img src="{link(image)}" alt="log-mel of {e(f.key)}" loading="lazy">'
                   if image else "")  # fmt: skip
            cells.append(_player(decoded, closing=False) + img + "</td>")
        files.append("<tr>" + "".join(cells) + "</tr>")
    usage = "".join(
        f'<figure><img src="{link(s.usage_image)}" alt="codebook usage of {e(s.name)}">'
        f"<figcaption>{e(s.name)}</figcaption></figure>"
        for s in page.systems
        if s.usage_image
    )
    notes = "".join(f"<li>{e(n)}</li>" for n in page.notes)
    return _TEMPLATE.format(
        title=e(page.title),
        head=head,
        rows="\n".join(rows),
        names=names,
        files="\n".join(files),
        usage=usage,
        notes=f"<ul>{notes}</ul>" if notes else "",
    )


def _player(target: str | None, *, closing: bool = True) -> str:
    end = "</td>" if closing else ""
    if target is None:
        return f"<td>-{end}"
    return f'<td><audio controls preload="metadata" src="{link(target)}"></audio>{end}'


def write_page(path: Path, page: Page) -> None:
    """Write ``page`` as ``path`` (``index.html``), whole or not at all."""
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(render(page), encoding="utf-8")


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{title}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; }}
th[data-col] {{ cursor: pointer; background: #f4f4f4; }}
tr.ref td {{ font-style: italic; color: #555; }}
td.key {{ font-family: monospace; white-space: pre-wrap; }}
img {{ max-width: 420px; }}
figure {{ display: inline-block; margin: 0 1em 1em 0; }}
</style></head>
<body>
<h1>{title}</h1>
{notes}
<table id="summary"><thead><tr><th>system</th><th>decoder</th>{head}</tr></thead>
<tbody>
{rows}
</tbody></table>
<h2>Files</h2>
<table id="files"><thead><tr><th>file</th><th>original</th>{names}</tr></thead>
<tbody>
{files}
</tbody></table>
<h2>Codebook usage</h2>
{usage}
<script>
document.querySelectorAll("#summary th[data-col]").forEach(function (th) {{
  th.addEventListener("click", function () {{
    var col = +th.dataset.col, body = th.closest("table").tBodies[0];
    var ref = body.querySelector("tr.ref");
    var rows = Array.prototype.filter.call(body.rows, function (r) {{ return r !== ref; }});
    var up = th.dataset.dir !== "up";
    th.dataset.dir = up ? "up" : "down";
    rows.sort(function (a, b) {{
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      if (x === "") return 1;
      if (y === "") return -1;
      return up ? x - y : y - x;
    }});
    rows.forEach(function (r) {{ body.appendChild(r); }});
    if (ref) body.appendChild(ref);
  }});
}});
</script>
</body></html>
"""
