"""Teach nbval to run nbdev notebooks the way `nbdev_test` runs them.

- `nbdev_clean` leaves cells with stored outputs but a null execution count, which nbval rejects
  ("Unrun reference cell has outputs"): such cells are treated as run.
- Cells nbdev_test skips are skipped: cells whose directives include a flag from `tst_flags` in
  settings.ini (`#| slow`, `#| cuda`), cells with `#| eval: false`, and cells calling `nbdev_export(`.
  Flags listed in the environment variable `NBDEV_TEST_FLAGS` run, as with `nbdev_test --flags`.
  Notebooks whose frontmatter sets `skip_exec: true` are skipped whole, as nbdev_test does.
"""
import os
import pytest
from nbdev.config import get_config
from nbdev.process import extract_directives

def _skip_flags():
    flags = set(get_config().tst_flags.split())
    return flags - set(os.environ.get('NBDEV_TEST_FLAGS', '').split())

def nbdev_skips(cell, flags) -> bool:
    "Whether nbdev_test would skip this code `cell` given the skipped `flags`."
    if 'nbdev_export' + '(' in cell.source: return True
    direc = extract_directives(cell, remove=False)
    if direc.get('eval:', [''])[0].lower() == 'false': return True
    return bool(flags & direc.keys())

def pytest_collection_modifyitems(config, items):
    try: from nbval.plugin import IPyNbCell
    except ImportError: return
    flags = _skip_flags()
    for item in items:
        if not isinstance(item, IPyNbCell): continue
        cell = item.cell
        if cell.get('execution_count') is None and cell.get('outputs'): cell.execution_count = 0
        if nbdev_skips(cell, flags): item.options['skip'] = True
