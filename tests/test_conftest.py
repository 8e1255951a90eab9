"The nbval bridge in conftest.py skips exactly what nbdev_test skips."
import nbformat
from conftest import nbdev_skips

def _cell(src): return nbformat.v4.new_code_cell(src)

def test_flags_skip():
    assert nbdev_skips(_cell("#| slow\nx = 1"), {'slow', 'cuda'})
    assert nbdev_skips(_cell("#| cuda\nx = 1"), {'slow', 'cuda'})
    assert not nbdev_skips(_cell("#| slow\nx = 1"), {'cuda'})  # forced flag runs

def test_eval_false_and_export():
    assert nbdev_skips(_cell("#| eval: false\nx = 1"), set())
    assert nbdev_skips(_cell("#| hide\nimport nbdev; nbdev.nbdev_export()"), set())

def test_plain_and_export_cells_run():
    assert not nbdev_skips(_cell("x = 1"), {'slow'})
    assert not nbdev_skips(_cell("#| export\ndef f(): pass"), {'slow'})
    assert not nbdev_skips(_cell("# a comment mentioning slow\nx = 1"), {'slow'})
