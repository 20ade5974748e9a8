"""Headless Chromium for the tests: a page's DOM after its scripts ran (``--dump-dom``), read
with a small stdlib element tree, and screenshots."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not on PATH (Debian: apt-get install chromium)"
)

_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "wbr",
}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self):
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Element]:
        return [
            e
            for e in self.iter()
            if (tag is None or e.tag == tag) and (cls is None or cls in e.classes)
        ]

    def one(self, tag: str | None = None, cls: str | None = None) -> Element:
        (found,) = self.find_all(tag, cls)
        return found


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in _VOID:
            self.stack.append(element)

    def handle_endtag(self, tag):
        while len(self.stack) > 1:
            if self.stack.pop().tag == tag:
                break

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse(markup: str) -> Element:
    builder = _Builder()
    builder.feed(markup)
    builder.close()
    return builder.root


def chromium(target: str, profile_dir: Path, *options: str) -> str:
    """Run headless Chromium on ``target`` with ``options``; its stdout."""
    assert CHROMIUM is not None
    result = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile_dir / 'chromium-profile'}",
            "--window-size=1400,1000", *options, target,
        ],
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    return result.stdout


def dump_dom(page: Path, tmp_path: Path, fragment: str = "") -> str:
    """The DOM of ``page`` after its scripts ran, as Chromium serialises it."""
    return chromium(page.as_uri() + fragment, tmp_path, "--dump-dom")


def render_app(url: str, tmp_path: Path, screenshot: Path | None = None) -> Element:
    """The DOM of a web app's page once it has loaded its data (virtual time lets its
    requests finish), and optionally a screenshot of it."""
    budget = "--virtual-time-budget=25000"
    if screenshot is not None:
        chromium(url, tmp_path, budget, f"--screenshot={screenshot}")
    return parse(chromium(url, tmp_path, budget, "--dump-dom"))


def visible_text(dom: Element) -> str:
    """The page's text without its styles and scripts, whitespace collapsed."""
    parts: list[str] = []

    def walk(element: Element) -> None:
        if element.tag in ("style", "script", "head"):
            return
        for child in element.children:
            if isinstance(child, str):
                parts.append(child)
            else:
                walk(child)

    walk(dom)
    return " ".join(" ".join(parts).split())
