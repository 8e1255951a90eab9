"The house rules of issue 39, kept by CI: no import circle, short lines, one statement a line, a short README, no long cell."
import io, json, re, tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = [f for f in sorted((ROOT/'bnn_study').rglob('*.py')) if f.name != '_modidx.py']

def _module(f:Path) -> str: return f.relative_to(ROOT).with_suffix('').as_posix().replace('/', '.')

def _imports(f:Path) -> set:
    "The package modules `f` imports, at the top or inside a function."
    mod, out = _module(f), set()
    for m in re.finditer(r'^\s*from (\.+)([\w.]*) import|^\s*from (bnn_study\.[\w.]+) import', f.read_text(), re.M):
        if m.group(3): out.add(m.group(3))
        else: out.add('.'.join(mod.split('.')[:-len(m.group(1))] + ([m.group(2)] if m.group(2) else [])))
    return out

def test_no_import_circle():
    graph = {_module(f): _imports(f) for f in PKG}
    def reach(start):
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            n = todo.pop()
            if n in seen: continue
            seen.add(n)
            todo += graph.get(n, ())
        return seen
    assert not [m for m in graph if m in reach(m)], 'modules that import themselves through others'

def _nb_code_lines() -> list:
    "(notebook, line) of every line of every code cell of the notebooks, the package's source."
    return [(f.name, l) for f in sorted((ROOT/'nbs').glob('*.ipynb')) for c in json.loads(f.read_text())['cells']
            if c['cell_type'] == 'code' for l in ''.join(c['source']).splitlines()]

def test_lines_short_and_one_statement_each():
    "Every code line of the notebooks is at most 120 characters; no line of the package holds two statements."
    long = [(nb, l[:60]) for nb, l in _nb_code_lines() if len(l) > 120]
    assert not long, long
    semis = [(f.name, t.start[0]) for f in PKG for t in tokenize.generate_tokens(io.StringIO(f.read_text()).readline)
             if t.type == tokenize.OP and t.string == ';']
    assert not semis, semis

def test_readme_short_and_no_cell_over_400_words():
    assert len((ROOT/'README.md').read_text().split()) <= 900
    long = [(f.name, len(''.join(c['source']).split())) for f in sorted((ROOT/'nbs').glob('*.ipynb'))
            for c in json.loads(f.read_text())['cells'] if c['cell_type'] == 'markdown' and len(''.join(c['source']).split()) > 400]
    assert not long, long
