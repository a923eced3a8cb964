"""Write docs/schemas/*.json from the wire models: `python -m cityops.schemas`."""

from __future__ import annotations

import json
from pathlib import Path

from cityops.wire import json_schemas


def write(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        text = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        (directory / f"{name}.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write(Path(__file__).parents[1] / "docs" / "schemas")
