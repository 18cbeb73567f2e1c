"""`cnnlint report`: one self-contained HTML file with the two plots, the findings and the summary."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import check_on, cli

from cnnlint.results import ModelResult

pytest.importorskip("matplotlib", reason="cnnlint report needs the [report] extra (matplotlib)")

CNNLINT = str(Path(sys.executable).with_name("cnnlint"))
SPEC = "torchvision.models:mobilenet_v2"
SVG_NS = "{http://www.w3.org/2000/svg}"
VOID = {"meta", "br", "img", "input", "link", "hr", "col", "source", "wbr"}


class Structure(HTMLParser):
    """Checks that every element closes, and collects figures, tables and external references."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.figures: list[str] = []
        self.rows = 0
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if attrs.get(key) and not attrs[key].startswith("#"):
                self.external.append(attrs[key])
        if tag == "figure":
            self.figures.append(attrs.get("class", ""))
        if tag == "tr" and "tbody" in self.stack:
            self.rows += 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass  # self-closing SVG elements

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else '-'}>")
            return
        self.stack.pop()


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[str, ModelResult]:
    out = tmp_path_factory.mktemp("report") / "report.html"
    proc = cli("report", SPEC, "--target", "t4", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout
    return out.read_text(encoding="utf-8"), check_on(SPEC, "t4")


def test_the_file_parses_and_needs_nothing_from_outside(report):
    text, _ = report
    parser = Structure()
    parser.feed(text)
    parser.close()
    assert parser.errors == []
    assert parser.stack == []
    assert parser.external == []
    assert "<script" not in text and "@import" not in text
    assert not re.search(r"url\((?!#)", text)  # only references inside the file


def test_both_plots_are_inline_svg_with_what_they_promise(report):
    text, _ = report
    parser = Structure()
    parser.feed(text)
    assert parser.figures == ["plot roofline", "plot latency"]
    svgs = re.findall(r"<svg.*?</svg>", text, flags=re.S)
    assert len(svgs) == 2
    roofline, latency = (ET.fromstring(svg) for svg in svgs)  # each is well-formed XML
    roofline_text = " ".join(t.text or "" for t in roofline.iter(f"{SVG_NS}text"))
    assert "compute roof 65 TFLOP/s" in roofline_text and "memory slope 320 GB/s" in roofline_text
    assert "arithmetic intensity" in roofline_text
    assert all(str(n) in roofline_text.split() for n in range(1, 7))  # hotspots numbered
    latency_text = " ".join(t.text or "" for t in latency.iter(f"{SVG_NS}text"))
    assert "compute-bound" in latency_text and "memory-bound" in latency_text
    assert "features.2.conv" in latency_text  # mobilenet_v2 has > 36 kernels: one bar per stage
    assert "CL301" in latency_text  # finding codes marked on the bars
    assert len(list(latency.iter(f"{SVG_NS}path"))) > 20  # the bars


def test_findings_and_summary_match_the_check(report):
    text, result = report
    parser = Structure()
    parser.feed(text)
    assert parser.rows == len(result.findings) > 0
    for finding in result.findings[:5]:
        assert f"{finding.path}:{finding.line}" in text  # source locations
    assert f"{result.summary.latency_ms:.3f} ms" in text
    assert "Hotspots" in text and "mobilenetv2.py" in text


def test_without_matplotlib_it_says_how_to_install_it(tmp_path):
    # The interpreter is told that matplotlib cannot be imported, as on an install without it.
    code = "import sys; sys.modules['matplotlib'] = None; from cnnlint.cli import main; main()"
    # Run outside the checkout: its own cnnlint/ (no rules/ inside) must not shadow the installed
    # package.
    proc = subprocess.run([sys.executable, "-c", code, "report", SPEC, "-o", str(tmp_path / "r.html")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2
    assert "pip install 'cnnlint[report]'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r.html").exists()


def test_with_measure_the_findings_table_shows_each_measured_speedup(tmp_path):
    from conftest import FIXTURES

    out = tmp_path / "measured.html"
    proc = subprocess.run([CNNLINT, "report", str(FIXTURES / "measure_fixes.py"), "--target", "t4", "--measure",
                           "--measure-budget", "4", "--measure-threads", "1", "-o", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")
    parser = Structure()
    parser.feed(text)
    assert parser.errors == [] and parser.stack == []
    assert "<th>measured fix</th>" in text
    cells = re.findall(r'<td><b style="color:#[0-9a-f]+">(\d+\.\d+x (?:faster|slower))</b>', text)
    assert len(cells) == 6, cells  # CL201 (twice), CL302, CL102, CL303 and CL402
    # Said as the finding's message says it ("on this machine: 1.4x faster (...)").
    assert all(f"on this machine: {cell} (" in text for cell in cells)
    assert text.count('<span class="note">no concrete fix<') == parser.rows - 6  # the others say why
    assert "--measure: measured 6 of" in text and "on cpu (1 thread, fp32)" in text


def test_the_report_runs_the_stages_as_check_does(tmp_path, monkeypatch):
    """`cnnlint report` reads the project's [tool.cnnlint]: its target, the models table's
    constructor arguments and input shape, and inline suppressions, as `cnnlint check` does."""
    from click.testing import CliRunner

    from cnnlint.cli import main

    (tmp_path / "pyproject.toml").write_text(
        '[tool.cnnlint]\ntarget = "t4"\n\n'
        '[tool.cnnlint.models."net.py::Net"]\nkwargs = { width = 36 }\ninput-shape = [1, 3, 64, 48]\n'
    )
    (tmp_path / "net.py").write_text(
        "import torch.nn as nn\n\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, width):\n"
        "        super().__init__()\n"
        "        self.stem = nn.Conv2d(3, 32, 3)\n"
        "        self.quiet = nn.Conv2d(32, width, 3)  # cnnlint: disable=CL201\n"
        "        self.loud = nn.Conv2d(width, 32, 3)\n"
        "        self.out = nn.Conv2d(32, 32, 1)\n\n"
        "    def forward(self, x):\n"
        "        return self.out(self.loud(self.quiet(self.stem(x))))\n"
    )
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "r.html"
    result = CliRunner().invoke(main, ["report", "net.py::Net", "-o", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "1x3x64x48" in html or "1, 3, 64, 48" in html
    assert "[t4" in html or "t4 fp16" in html
    # 36 channels, padded to 40 on t4: on both convs, one of them silenced by its comment
    assert re.findall(r"<td>([a-z]+)</td>", html) == ["loud"]
    assert "1 finding" in result.output
