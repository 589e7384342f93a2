"""A report as a list of blocks, rendered to Markdown and to self-contained HTML."""

from __future__ import annotations

import base64
import html
import os
import re
from dataclasses import dataclass
from pathlib import Path

from gan_lightning.record import Status


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Text:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Image:
    path: Path
    caption: str = ""


@dataclass
class ImageGrid:
    """Images laid out in a table: ``cells[row][col]`` is (image or None, caption)."""

    row_labels: list[str]
    col_labels: list[str]
    cells: list[list[tuple[Path | None, str]]]


Block = Heading | Text | Table | Image | ImageGrid


def to_markdown(blocks: list[Block], base: Path) -> str:
    def link(path: Path) -> str:
        return Path(os.path.relpath(path, base)).as_posix()

    def row(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Text):
            out.append(block.text)
        elif isinstance(block, Table):
            out += [row(block.header), row(["---"] * len(block.header))]
            out += [row(r) for r in block.rows]
        elif isinstance(block, Image):
            out.append(f"![{block.caption}]({link(block.path)})")
        elif isinstance(block, ImageGrid):
            out.append(row(["", *block.col_labels]))
            out.append(row(["---"] * (len(block.col_labels) + 1)))
            for label, cells in zip(block.row_labels, block.cells, strict=True):
                shown = [(f"![{c}]({link(p)})<br>{c}" if p else c) for p, c in cells]
                out.append(row([f"**{label}**" if label else "", *shown]))
        out.append("")
    return "\n".join(out)


NUMBER = re.compile(r"[-+]?[\d.]+(e[-+]?\d+)?( ± [\d.]+)?|-")
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { text-align: right; } .grid th { text-align: center; }
td.img { text-align: center; } img { max-width: 100%; }
.grid img { width: 220px; image-rendering: pixelated; }
.status-ok { color: #1a7f37; } .status-bad { color: #c62828; font-weight: bold; }
"""


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


STATUSES = {s.value for s in Status}


def to_html(blocks: list[Block], title: str) -> str:
    esc = html.escape

    def cell(text: str, tag: str = "td") -> str:
        klass = ""
        if tag == "td" and text != Status.OK and text.split(" ")[0] in STATUSES:
            klass = ' class="status-bad"'
        elif tag == "td" and text == Status.OK:
            klass = ' class="status-ok"'
        elif tag == "td" and NUMBER.fullmatch(text):
            klass = ' class="num"'
        return f"<{tag}{klass}>{esc(text)}</{tag}>"

    out = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{esc(title)}</title>",
           f"<style>{STYLE}</style></head><body>"]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{esc(block.text)}</h{block.level}>")
        elif isinstance(block, Text):
            out.append(f"<p>{esc(block.text)}</p>")
        elif isinstance(block, Table):
            out.append("<table><tr>" + "".join(cell(h, "th") for h in block.header) + "</tr>")
            out += ["<tr>" + "".join(cell(c) for c in r) + "</tr>" for r in block.rows]
            out.append("</table>")
        elif isinstance(block, Image):
            out.append(f"<figure><img src='{data_uri(block.path)}' alt='{esc(block.caption)}'>"
                       f"<figcaption>{esc(block.caption)}</figcaption></figure>")
        elif isinstance(block, ImageGrid):
            out.append("<table class='grid'><tr><th></th>"
                       + "".join(f"<th>{esc(c)}</th>" for c in block.col_labels) + "</tr>")
            for label, cells in zip(block.row_labels, block.cells, strict=True):
                tds = "".join(
                    f"<td class='img'><img src='{data_uri(p)}' alt='{esc(c)}'><br>{esc(c)}</td>"
                    if p else f"<td class='img'>{esc(c)}</td>" for p, c in cells)
                out.append(f"<tr><th>{esc(label)}</th>{tds}</tr>")
            out.append("</table>")
    out.append("</body></html>\n")
    return "\n".join(out)
