"""Every ```python block of README.md and docs/*.md runs, as written.

A page's blocks run in order in one fresh Python process, so a block can use
what the page set up before it. A block that is not meant to run (a signature, a
sketch of a multi-machine setup) says so on the line before its fence, with the
reason: `<!-- no-run: a signature, not a call -->`. A block marked
`<!-- backend: jax -->` runs only on that backend: a page with such blocks runs
once per backend named, each time with its unmarked blocks and the blocks
marked for that backend. A page that needs TensorFlow throughout (tf.data) says
`<!-- docs-test: backend=tensorflow -->` once.

Like `tests/integration/test_examples.py`, each page runs on one backend in `make test`,
rotating over the pages, and on every backend with `-m slow`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BACKENDS = ("tensorflow", "jax", "torch")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)\s*$")
_MARK = re.compile(r"^\s*<!--\s*(?P<key>no-run|backend)\s*:\s*(?P<value>.*?)\s*-->\s*$")
_PAGE_BACKEND = re.compile(r"<!--\s*docs-test:\s*backend=(\w+)\s*-->")

# Environment a page needs before its framework starts (what the page shows
# on its command line).
PAGE_ENV = {
    "scaling-out.md": {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
}


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    code: str
    no_run: str | None  # the reason, when marked `no-run`
    backend: str | None  # the only backend it runs on, when marked


def extract_blocks(text: str) -> list[Block]:
    """The page's ```python blocks, with their markers."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if fence is None or fence["lang"] == "":
            index += 1
            continue
        start, lang, indent = index, fence["lang"], fence["indent"]
        index += 1
        body = []
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence
        if lang != "python":
            continue
        marks: dict[str, str] = {}
        above = start - 1
        while above >= 0 and (mark := _MARK.match(lines[above])):
            marks[mark["key"]] = mark["value"]
            above -= 1
        code = textwrap.dedent("\n".join(line.removeprefix(indent) for line in body))
        blocks.append(Block(start + 1, code, marks.get("no-run"), marks.get("backend")))
    return blocks


def page_backends(page: Path, blocks: list[Block]) -> tuple[str, ...]:
    fixed = _PAGE_BACKEND.search(page.read_text())
    if fixed:
        return (fixed[1],)
    marked = {block.backend for block in blocks if block.backend}
    return tuple(b for b in BACKENDS if b in marked) or BACKENDS


def script(page: Path, blocks: list[Block], backend: str) -> str:
    """One program: each block, in order, announced on stderr (with the time
    since the start) so that a traceback's line is easy to place."""
    parts = ["import sys as _sys, time as _time\n_start = _time.perf_counter()\n"]
    for block in blocks:
        if block.no_run is not None or block.backend not in (None, backend):
            continue
        compile(block.code, f"{page.name}:{block.line}", "exec")  # names a SyntaxError
        parts.append(
            f"print(f'--- {page.name}:{block.line} at "
            "{_time.perf_counter() - _start:.1f} s', file=_sys.stderr, flush=True)\n"
            + block.code
            + "\n"
        )
    return "\n".join(parts)


# The backends pages without one of their own take in turn in `make test`:
# the TensorFlow pass already runs the tf.data pages (and is the longest), so
# the others share the rest; `-m slow` runs every page on TensorFlow too.
ROTATION = ("torch", "jax")


def _cases() -> list[Any]:
    """(page, backend) pairs. The page's own backend(s) when it names some;
    otherwise one backend per page in turn in `make test`, every one with
    `-m slow`."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    cases = []
    rotating = 0
    for page in PAGES:
        blocks = extract_blocks(page.read_text())
        if all(block.no_run is not None for block in blocks):
            continue
        backends = page_backends(page, blocks)
        if backends == BACKENDS:
            mine = ROTATION[rotating % len(ROTATION)]
            rotating += 1
            marks = () if mine == backend else pytest.mark.slow
            cases.append(pytest.param(page, backend, id=page.name, marks=marks))
        elif backend in backends:
            cases.append(pytest.param(page, backend, id=f"{page.name}-{backend}"))
    return cases


@pytest.mark.parametrize(("page", "backend"), _cases())
def test_page_snippets_run(page: Path, backend: str, tmp_path: Path) -> None:
    blocks = extract_blocks(page.read_text())
    program = script(page, blocks, backend)
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")])
        ),
        "MPLBACKEND": "Agg",
        **PAGE_ENV.get(page.name, {}),
    }
    # Run where the page's relative paths (runs/, /tmp caches) cannot litter the
    # repository.
    path = tmp_path / f"{page.stem.replace('-', '_')}_snippets.py"
    path.write_text(program)  # a file: tf.function and tracebacks read the source
    result = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-6000:] + result.stdout[-2000:]


def test_no_run_blocks_are_few_and_say_why() -> None:
    skipped = [
        (page.name, block.line, block.no_run)
        for page in PAGES
        for block in extract_blocks(page.read_text())
        if block.no_run is not None
    ]
    assert all(reason for _, _, reason in skipped), skipped
    total = sum(len(extract_blocks(page.read_text())) for page in PAGES)
    assert len(skipped) <= total // 5, skipped


def test_extraction_reads_markers() -> None:
    text = (
        "# t\n```python\na = 1\n```\n<!-- no-run: a signature -->\n```python\nf(\n```\n"
        "<!-- backend: jax -->\n```python\nb = a\n```\n```bash\nls\n```\n"
    )
    blocks = extract_blocks(text)
    assert [b.code for b in blocks] == ["a = 1", "f(", "b = a"]
    assert [b.no_run for b in blocks] == [None, "a signature", None]
    assert [b.backend for b in blocks] == [None, None, "jax"]
    assert [b.line for b in blocks] == [2, 6, 10]
