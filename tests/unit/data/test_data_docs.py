"""docs/data.md's example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "data.md"


def test_data_docs_example_runs(capsys) -> None:
    if not DOC.is_file():
        pytest.skip(f"{DOC} not found")
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "docs/data.md has no python example"
    exec(compile(blocks[0], str(DOC), "exec"), {"__name__": "docs_example"})
    out = capsys.readouterr().out
    assert "torch.Size([" in out and "target domain id 1" in out
