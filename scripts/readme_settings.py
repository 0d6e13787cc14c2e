"""Replace the README's settings table with the one `tap-ghl-contacts --about` prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def about_settings_table() -> str:
    """The settings table that ``tap-ghl-contacts --about --format=markdown`` prints."""
    about = subprocess.run(
        [sys.executable, "-m", "tap_ghl_contacts", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    table = re.search(r"\| Setting \|.*?\n\n", about, re.DOTALL)
    if table is None:
        sys.exit("no settings table in --about output")
    return table.group(0).strip()


def main() -> None:
    """Rewrite the block between the settings markers."""
    text = README.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    README.write_text(f"{text[:start]}\n{about_settings_table()}\n{text[end:]}", encoding="utf-8")


if __name__ == "__main__":
    main()
