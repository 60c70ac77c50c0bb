"""The report built from a tiny real study folder: every table states the unit of each numeric
column in its header, the HTML holds the same tables, and rebuilding changes nothing."""

from __future__ import annotations

import re
import shutil

from optbench.report import build_report

# columns that count things or are ratios: no unit to state
DIMENSIONLESS = {"learning rate", "seeds", "diverged", "seed", "steps", "p (paired t)", "p (Holm)", "seeds reaching it"}
UNIT = re.compile(r"\((meV/Å|meV/atom|GPa|s|eV|K|Å|THz|cm⁻¹|Å³|g/cm³|Å²/ps|%)\)$")
NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?(e[+-]?\d+)?( ± \S+)?$")


def markdown_tables(md: str) -> list[tuple[str, list[str], list[list[str]]]]:
    tables, title, lines = [], None, md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("## "):
            title = line[3:]
        if line.startswith("| ") and (i == 0 or not lines[i - 1].startswith("|")):
            end = next((k for k in range(i, len(lines)) if not lines[k].startswith("|")), len(lines))
            block = lines[i:end]
            cells = [[c.strip() for c in row.strip("|").split("|")] for row in block]
            tables.append((title, cells[0], cells[2:]))
    return tables


def test_every_numeric_column_states_its_unit(sequential, tmp_path):
    _, out = sequential
    folder = tmp_path / "study"
    shutil.copytree(out, folder)
    paths = build_report(folder)
    md = paths["md"].read_text()
    tables = markdown_tables(md)
    assert len(tables) >= 4  # per dataset: errors at the selected LR, time to target (two datasets)
    checked = 0
    for title, head, body in tables:
        assert body, title
        for j, name in enumerate(head):
            if not any(NUMBER.match(row[j]) for row in body) or name in DIMENSIONLESS:
                continue
            assert UNIT.search(name), f"{title}: column '{name}' has no unit"
            checked += 1
    assert checked >= 8
    html = paths["html"].read_text()
    for _, head, _ in tables:
        for name in head:
            assert f"<th>{name.replace('&', '&amp;')}</th>" in html


def test_rebuilding_gives_the_same_report(sequential, tmp_path):
    _, out = sequential
    folder = tmp_path / "study"
    shutil.copytree(out, folder)
    first = {k: p.read_text() for k, p in build_report(folder).items() if k in ("md", "csv")}
    second = {k: p.read_text() for k, p in build_report(folder).items() if k in ("md", "csv")}
    assert first == second and "## Crashed trials" not in first["md"]
