"Every relative link in the notebooks and the README resolves to a file (and heading) that exists, and a label that names a notebook by number names the one it links to."
import json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r'(?<!!)\[([^\]]+)\]\(([^)\s]+)\)')

def _markdown(fn:Path) -> str:
    if fn.suffix == '.md': return fn.read_text()
    return '\n'.join(''.join(c['source']) for c in json.loads(fn.read_text())['cells'] if c['cell_type'] == 'markdown')

def _slug(heading:str) -> str:
    "The anchor Quarto gives a heading: lower case, punctuation dropped, spaces as dashes."
    h = re.sub(r'[`*_]', '', heading.strip().lower())
    return re.sub(r'\s+', '-', re.sub(r'[^\w\s-]', '', h)).strip('-')

def _anchors(fn:Path) -> set:
    return {_slug(m.group(1)) for m in re.finditer(r'^#+\s+(.*)$', _markdown(fn), re.M)}

def _links():
    files = sorted((ROOT/'nbs').glob('*.ipynb')) + [ROOT/'README.md']
    for fn in files:
        for label, target in LINK.findall(_markdown(fn)):
            if re.match(r'^[a-z]+:', target) or target.startswith('#'): continue
            yield fn, label, target

def _problem(fn, label, target):
    path, _, anchor = target.partition('#')
    dest = (fn.parent/path).resolve()
    if path.endswith('.html'): dest = dest.with_suffix('.ipynb')  # the site's name of a notebook
    if not dest.exists(): return f"{fn.name}: [{label}]({target}) links to a missing file"
    if anchor and dest.suffix in ('.ipynb', '.md') and anchor not in _anchors(dest):
        return f"{fn.name}: [{label}]({target}) links to a missing heading"
    num = re.search(r'\bnotebooks? (\d\d[a-z]?)\b|^(\d\d[a-z]?)\b', label)
    if num and dest.suffix == '.ipynb' and not dest.name.startswith((num.group(1) or num.group(2)) + '_'):
        return f"{fn.name}: [{label}]({target}) names notebook {num.group(1) or num.group(2)} but links to {dest.name}"

def test_links_resolve():
    problems = [p for l in _links() if (p := _problem(*l))]
    assert not problems, '\n'.join(problems)

def test_checker_fails_on_bad_links(tmp_path):
    (tmp_path/'a.md').write_text('# Top\n')
    (tmp_path/'10_x.ipynb').write_text(json.dumps(dict(cells=[dict(cell_type='markdown', source=['## A heading'])])))
    fn = tmp_path/'README.md'
    assert _problem(fn, 'x', 'missing.md')
    assert _problem(fn, 'x', '10_x.ipynb#nowhere')
    assert _problem(fn, 'notebook 12', '10_x.ipynb')
    assert _problem(fn, 'notebook 10', '10_x.ipynb#a-heading') is None
    assert _problem(fn, 'top', 'a.md#top') is None
