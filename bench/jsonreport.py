"""How every benchmark ends: print its JSON report and, when asked, write it to a file."""

from __future__ import annotations

import json
from pathlib import Path


def emit(report: dict, path: str | Path | None) -> None:
    """Print ``report`` as indented JSON; also write it to ``path`` (folders made) if given."""
    text = json.dumps(report, indent=2)
    print(text)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
