"""Self-contained HTML for the report pages: inline CSS, figures embedded as data URIs,
text escaped with URL schemes dropped, so a page needs nothing beside itself and links
nowhere. Shared by ``pipeline report`` and ``pipeline compare --html``."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

from pipeline.io import atomic_path

_SCHEME = re.compile(r"https?://")


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


CSS = """body{font-family:system-ui,sans-serif;max-width:78rem;margin:1.5rem auto;padding:0 1rem;
color:#222;line-height:1.35}table{border-collapse:collapse;margin:.5rem 0 1rem}
td,th{border:1px solid #ccc;padding:.2rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.figs{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-start}
.figs img{max-width:37rem;max-height:30rem;border:1px solid #eee}.figs img.wide{max-width:100%;
max-height:none}section.dataset{border-top:3px solid #bbb;margin-top:2rem}
section.study{border-top:1px solid #ddd;margin-top:1.2rem}details{margin:.4rem 0}
summary{cursor:pointer;color:#345}code{background:#f6f6f6}.muted{color:#666}"""


def escape(value: Any) -> str:
    """Escaped text with URL schemes dropped, so nothing in the page links out."""
    return html.escape(_SCHEME.sub("", str(value)))


def kv_table(rows: dict) -> str:
    body = "".join(f"<tr><td>{escape(k)}</td><td class='num'>{escape(fmt(v))}</td></tr>"
                   for k, v in rows.items())
    return f"<table><tr><th>name</th><th>value</th></tr>{body}</table>"


def grid(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(fmt(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def img(png: bytes, alt: str, wide: bool = False) -> str:
    data = base64.b64encode(png).decode("ascii")
    cls = " class='wide'" if wide else ""
    return f'<img{cls} alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def figure_html(path: Path) -> str:
    png = path.read_bytes()
    width = int.from_bytes(png[16:20], "big")  # the PNG header's width field
    return img(png, path.stem, wide=width > 900)


def collapsed(summary: str, body: str) -> str:
    return f"<details><summary>{escape(summary)}</summary>{body}</details>"


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}"
            f"</title><style>{CSS}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>\n")


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
