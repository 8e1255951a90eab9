"The packed network end to end, as a new user runs it: export a committed saved run, check it, classify a folder, and the errors."
import shutil, subprocess, sys
from pathlib import Path
import pytest
ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT/'results/packed/runs/vgg19_bn_both_dfa_imagenette32px_w0.25_flip_e5_lr0.001_bs64_test_s0.json'
BIN = Path(sys.executable).parent

def run(*args):
    return subprocess.run([str(BIN/args[0]), *map(str, args[1:])], capture_output=True, text=True, timeout=600)

@pytest.fixture(scope='module')
def packed(tmp_path_factory):
    fn = tmp_path_factory.mktemp('packed')/'vgg.bnn'
    r = run('bnn_export', RUN, '--out', fn, '--check', '--n-valid', 200)
    assert r.returncode == 0, r.stderr
    assert 'x smaller than the float32 model' in r.stdout
    assert '200 test images: same class on 200,' in r.stdout
    return fn

def test_predict_a_folder(packed, tmp_path):
    from bnn_study.data import find_data
    val = find_data('imagenette')/'val'
    for d in sorted(val.iterdir())[:2]:
        (tmp_path/d.name).mkdir()
        for f in sorted(d.iterdir())[:2]: shutil.copy(f, tmp_path/d.name/f.name)
    (tmp_path/'broken.jpg').write_bytes(b'not an image')
    packed_out, float_out = run('bnn_predict', '--packed', packed, tmp_path), run('bnn_predict', RUN, tmp_path)
    assert packed_out.returncode == 0 and float_out.returncode == 0, packed_out.stderr + float_out.stderr
    lines = packed_out.stdout.splitlines()
    assert len(lines) == 5 and sum('unreadable' in l for l in lines) == 1
    assert packed_out.stdout == float_out.stdout  # the same classes and probabilities, to the printed digit
    assert 'packed, ' in packed_out.stderr and ' kernel' in packed_out.stderr

def test_errors_are_one_line(packed, tmp_path):
    (tmp_path/'cut.bnn').write_bytes(packed.read_bytes()[:5000])
    cases = [(('bnn_predict', '--packed', tmp_path/'cut.bnn', tmp_path), 'is damaged'),
             (('bnn_predict', '--packed', RUN, tmp_path), '--packed runs a .bnn file'),
             (('bnn_predict', packed, tmp_path), 'add --packed'),
             (('bnn_export', tmp_path/'none.json'), 'is not a run record'),
             (('bnn_bench_packed', '--models', 'resnet'), "Unknown model(s) ['resnet']"),
             (('bnn_bench_packed', '--kernel', 'neon'), "Unknown XNOR kernel 'neon'")]
    for args, msg in cases:
        r = run(*args)
        assert r.returncode != 0 and msg in r.stderr and 'Traceback' not in r.stderr, (args, r.stderr)
