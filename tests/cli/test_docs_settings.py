"""docs/operating.md documents every declared setting: name, default,
environment variable and help, and nothing that is not a setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from node.settings import ENV_PREFIX, setting_fields

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operating.md"


def settings_table() -> dict[str, list[str]]:
    """The rows of the Configuration table, by setting name."""
    section = GUIDE.read_text(encoding="utf-8").split("## Configuration", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        # A pipe written \| inside a cell is text, as in GitHub's tables.
        cells = [cell.strip().replace("\\|", "|")
                 for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]  # fmt: skip
        name = re.fullmatch(r"`(\w+)`", cells[0]) if len(cells) == 4 else None
        if name:
            rows[name.group(1)] = cells
    return rows


def documented_default(value: object) -> str:
    return f"`{value}`" if isinstance(value, int) else f'`"{value}"`'


@pytest.mark.parametrize("setting", setting_fields(), ids=lambda f: f.name)
def test_setting_is_documented(setting):
    rows = settings_table()
    assert setting.name in rows, f"docs/operating.md does not document {setting.name}"
    _name, default, env, help_text = rows[setting.name]
    assert default == documented_default(setting.default)
    assert env == f"`{ENV_PREFIX}{setting.name.upper()}`"
    assert setting.metadata["help"].lower() in help_text.lower()
    for choice in setting.metadata["choices"]:
        assert f"`{choice}`" in help_text, f"{setting.name}: choice {choice} not documented"


def test_no_undeclared_setting_is_documented():
    declared = {f.name for f in setting_fields()}
    assert set(settings_table()) <= declared
