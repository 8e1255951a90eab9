"Plain tests of the exported package: what a user of `bnn_study` (not of the notebooks) relies on."
import json, configparser, subprocess, sys
from pathlib import Path
import pytest, torch
from torch import nn
import bnn_study
from bnn_study.core import sign, sign_ste
from bnn_study.binarize import binarize, bnn_summary, BinaryConv2d, Sign
from bnn_study.data import find_data, get_dls, synthetic_dls
ROOT = Path(__file__).resolve().parents[1]

def test_version_matches_settings():
    cfg = configparser.ConfigParser(); cfg.read(ROOT/'settings.ini')
    assert bnn_study.__version__ == cfg['DEFAULT']['version']

def test_pins_stay_pinned():
    "A fresh install must never pick a release that breaks nbdev 2.4 (see settings.ini)."
    cfg = configparser.ConfigParser(); cfg.read(ROOT/'settings.ini')
    reqs = cfg['DEFAULT']['requirements'] + ' ' + cfg['DEFAULT']['dev_requirements']
    for pin in ['nbdev==2.4.14', 'fastai==2.8.7', 'fastcore>=1.12.3,<2', 'execnb>=0.1.12,<0.2',
                'fasttransform<0.0.3', 'plum-dispatch<2.10', 'ghapi<2', 'torch>=2.6,<3']:
        assert pin in reqs.split(), pin

def test_top_level_quarto_is_the_nbs_copy():
    top = ROOT/'_quarto.yml'
    assert top.resolve() == (ROOT/'nbs'/'_quarto.yml').resolve() or top.read_text() == (ROOT/'nbs'/'_quarto.yml').read_text()

def test_sign_is_binary_with_clipped_ste():
    x = torch.tensor([-2., -1., 0., 0.5, 1., 3.], requires_grad=True)
    y = sign_ste(x); y.sum().backward()
    assert y.tolist() == [-1., -1., -1., 1., 1., 1.]
    assert x.grad.tolist() == [0., 1., 1., 1., 1., 0.]

def test_binarize_torchvision_vgg_keeps_ends_real():
    from torchvision.models import vgg11_bn
    m = binarize(vgg11_bn(num_classes=10), 'both')
    assert type(m.features[0]) is nn.Conv2d and type(m.classifier[6]) is nn.Linear
    assert type(m.features[4]) is BinaryConv2d and type(m.features[2]) is Sign

def test_summary_counts_bits():
    m = binarize(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)), 'both')
    t = bnn_summary(m, torch.randn(3, 4)).totals
    assert t['binary_params'] == 64 and t['binary_bytes'] == 64 / 8 + (t['params'] - 64) * 4

def test_missing_data_is_one_clear_error(monkeypatch, tmp_path):
    import bnn_study.data as d
    monkeypatch.setattr(d, '_local_roots', lambda: [tmp_path])
    monkeypatch.delenv('BNN_DATA', raising=False)
    with pytest.raises(FileNotFoundError, match=r"Could not find the imagenette data set\. Tried: .*Fix: pass path="):
        d.find_data('imagenette', download=False)

def test_synthetic_batches_are_normalised_floats():
    x, y = synthetic_dls(n_train=64, n_valid=32, bs=16).one_batch()
    assert x.dtype == torch.float32 and x.shape == (16, 3, 16, 16) and y.dtype == torch.int64

def _cli(script, *args):
    "Run the installed console script `script` (beside this Python) with `args`."
    exe = Path(sys.executable).parent/script
    assert exe.exists(), f"{exe} is not installed: pip install -e '.[dev]'"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)

def test_quickstart_cli_bad_data_is_one_line():
    r = _cli('bnn_quickstart', '--data', '/no/such/folder', '--quiet')
    assert r.returncode != 0
    assert 'Traceback' not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith('bnn_quickstart: error: /no/such/folder is not an imagenette folder')

def test_models_by_name_and_unknown_name():
    from bnn_study.models import get_model
    for name in ('vgg19_bn', 'mobilenet_v2', 'mlp_mixer'):
        kw = dict(patch_size=4, dim=32, depth=2) if name == 'mlp_mixer' else {}
        assert get_model(name, img_size=32, width=0.25, **kw)(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="Unknown model 'resnet'; choose one of"):
        get_model('resnet')

def test_train_run_record_and_resume(tmp_path):
    from bnn_study.runs import RunConfig, train_run
    cfg = RunConfig('vgg19_bn', 'both', img_size=32, width=0.125, epochs=1, n_train=128, aug='flip')
    r = train_run(cfg, out=tmp_path)
    assert r['config']['setting'] == 'both' and 0 <= r['best_test_acc'] <= 1 and r['env']['torch']
    assert (tmp_path/f"{r['name']}.json").exists()
    assert train_run(cfg, out=tmp_path) == r

def test_bnn_train_bad_arguments_are_one_line_errors():
    from bnn_study.runs import setting_name
    with pytest.raises(ValueError, match="Precision must be 'float' or 'binary'"): setting_name('ternary', 'binary')
    r = _cli('bnn_train', '--model', 'resnet', '--img-size', '32', '--quiet')  # dashed option names are accepted
    assert r.returncode != 0 and 'Traceback' not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("bnn_train: error: Unknown model 'resnet'")

def test_every_rule_is_registered_and_is_a_callback():
    from fastai.callback.core import Callback
    from bnn_study.rules.all import get_rule
    assert get_rule('bp') is None
    for name in ('bp_lean', 'dfa', 'dfa_lowmem', 'drtp', 'hsic', 'sigprop_tl', 'fa'):
        assert isinstance(get_rule(name), Callback), name
    with pytest.raises(ValueError, match="choose one of \\['bp', 'bp_lean', 'dfa', 'dfa_lowmem', 'drtp', 'hsic', 'sigprop_tl'"):
        get_rule('pepita')

def test_download_fallback_is_used_when_nothing_local(monkeypatch, tmp_path):
    "Without a local copy, find_data falls back to fastai's untar_data (mocked here: this machine has no internet)."
    import bnn_study.data as d
    fake = tmp_path/'imagenette2-320'
    for split in ('train', 'val'): (fake/split/'n01440764').mkdir(parents=True)
    calls = []
    monkeypatch.setattr(d, '_local_roots', lambda: [])
    monkeypatch.delenv('BNN_DATA', raising=False)
    monkeypatch.setattr(d, 'untar_data', lambda url: calls.append(url) or fake)
    assert d.find_data('imagenette') == fake.resolve()
    assert calls == [d.URLs.IMAGENETTE_320]

@pytest.mark.parametrize('script,args,msg', [
    ('bnn_sweep', ['--experiment', 'T9', '--dry-run'], "bnn_sweep: error: Unknown experiment 'T9'"),
    ('bnn_sweep', ['--experiment', 'T4'], 'bnn_sweep: error: T4 (memory and time per rule) is a benchmark'),
    ('bnn_sweep', ['--preset', 'tpu', '--dry-run'], "bnn_sweep: error: Unknown preset 'tpu'"),
    ('bnn_sweep', ['--engine', 'dask', '--dry-run'], "bnn_sweep: error: Unknown engine 'dask'"),
    ('bnn_bench', ['--models', 'resnet', '--img-size', '32'], "bnn_bench: error: Unknown model(s) ['resnet']"),
    ('bnn_bench', ['--rules', 'bp,magic', '--models', 'vgg19_bn', '--img-size', '32', '--width', '0.125'], 'bnn_bench: error: '),
    ('bnn_train', ['--model', 'mobilenet_v2', '--head', 'linear'], 'bnn_train: error: --head applies to vgg19_bn only, not mobilenet_v2'),
    ('bnn_train', ['--head', 'mlp', '--quiet'], "bnn_train: error: Unknown VGG head 'mlp'"),
    ('bnn_headline', ['--data', '/no/such/folder'], 'bnn_headline: error: /no/such/folder is not an imagenette folder'),
    ('bnn_train', ['--width', '0'], 'bnn_train: error: --width 0 trains nothing'),
    ('bnn_train', ['--n-train', '-5'], 'bnn_train: error: --n-train -5 trains nothing'),
    ('bnn_train', ['--n-train', '10', '--bs', '64'], 'bnn_train: error: --n-train 10 trains nothing'),
    ('bnn_train', ['--epochs', '0'], 'bnn_train: error: --epochs 0 trains nothing'),
    ('bnn_train', ['--bs', '0'], 'bnn_train: error: --bs 0 trains nothing'),
    ('bnn_train', ['--rule', 'hsic', '--bs', '1', '--n-train', '8'], 'bnn_train: error: HSIC compares the samples of a batch'),
    ('bnn_train', ['--out', '/etc/hostname'], 'bnn_train: error: /etc/hostname is a file, not a folder'),
    ('bnn_sweep', ['--models', 'resnet', '--dry-run'], "bnn_sweep: error: Unknown model(s) ['resnet']; known: vgg19_bn, mobilenet_v2, mlp_mixer"),
    ('bnn_sweep', ['--rules', 'bp,magic', '--dry-run'], "bnn_sweep: error: Unknown rule(s) ['magic']"),
    ('bnn_sweep', ['--epochs', '0', '--dry-run'], 'bnn_sweep: error: --epochs 0 trains nothing'),
])
def test_study_commands_fail_in_one_line(script, args, msg):
    r = _cli(script, *args)
    assert r.returncode != 0 and 'Traceback' not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(msg), r.stderr

def test_sweep_dry_run_lists_the_cpu_grid(tmp_path):
    r = _cli('bnn_sweep', '--experiment', 'T3', '--dry-run', '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines() if l.strip().endswith('todo')]
    assert len(lines) == 10 * (3 + 3)  # 10 configurations x (3 learning rates + 3 seeds)


def test_bnn_train_log_has_no_bars_and_a_reused_run_says_so(tmp_path):
    args = ['--img-size', '32', '--width', '0.125', '--epochs', '1', '--n-train', '64', '--out', str(tmp_path)]
    first = _cli('bnn_train', *args)
    assert first.returncode == 0, first.stderr
    log = first.stdout + first.stderr
    assert '\u2588' not in log and '100.00%' not in log and '\r' not in log, 'progress bars in a redirected log: ' + log[:200]
    assert 'best test accuracy' in first.stdout and 'exists, skipped' not in first.stdout
    again = _cli('bnn_train', *args)
    assert again.returncode == 0 and 'exists, skipped' in again.stdout, again.stdout + again.stderr


def _toy(root, n_classes, valid='valid', n_train=8, n_valid=2, size=32):
    "An image folder data set of `n_classes` plain-colour classes in fastai's train/ + valid/ layout."
    import numpy as np
    from PIL import Image
    for k in range(n_classes):
        for split, n in (('train', n_train), (valid, n_valid)):
            (root/split/f'c{k:02d}').mkdir(parents=True, exist_ok=True)
            for i in range(n): Image.fromarray(np.full((size, size, 3), 20 * k + i, np.uint8)).save(root/split/f'c{k:02d}'/f'{i}.png')
    return root

def test_own_folder_with_12_classes_trains_a_12_way_model(tmp_path):
    data = _toy(tmp_path/'my_birds', 12)
    r = _cli('bnn_train', '--dataset', str(data), '--width', '0.125', '--epochs', '1', '--bs', '16', '--out', str(tmp_path/'runs'), '--save')
    assert r.returncode == 0, r.stderr
    rec = json.loads(next((tmp_path/'runs').glob('*.json')).read_text())
    assert rec['config']['dataset'] == 'my_birds' and '_my_birds32px_' in rec['name']
    assert rec['data']['classes'] == [f'c{k:02d}' for k in range(12)] and rec['data']['images'] == dict(train=96, valid=24)
    w = torch.load(tmp_path/'runs'/f"{rec['name']}.pth", weights_only=True)
    assert w['classifier.6.weight'].shape[0] == 12  # a 12-way head, from the data

def test_bnn_data_that_does_not_hold_the_data_is_an_error(tmp_path):
    import os
    exe = Path(sys.executable).parent/'bnn_train'
    r = subprocess.run([str(exe), '--epochs', '1'], capture_output=True, text=True, timeout=300, env=dict(os.environ, BNN_DATA=str(tmp_path)))
    assert r.returncode != 0 and 'Traceback' not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f'bnn_train: error: BNN_DATA={tmp_path} is not an imagenette folder'), r.stderr

def test_saved_dfa_run_loads_with_its_feedback_and_scores_as_recorded(tmp_path):
    from bnn_study.runs import load_run
    data = _toy(tmp_path/'toy', 3, valid='val', n_train=16, n_valid=8)
    r = _cli('bnn_train', '--dataset', str(data), '--rule', 'dfa', '--width', '0.125', '--epochs', '1', '--bs', '16', '--seed', '2',
             '--out', str(tmp_path/'runs'), '--save')
    assert r.returncode == 0, r.stderr
    fn = next((tmp_path/'runs').glob('*.json')); rec = json.loads(fn.read_text())
    learn = load_run(fn)
    saved = torch.load(fn.with_suffix('.pth'), weights_only=True)
    feedback = [k for k in saved if k.endswith('dfa_B')]
    assert feedback and all(torch.equal(learn.model.get_buffer(k), saved[k]) for k in feedback)
    assert abs(learn.validate()[1] - rec['final_test_acc']) < 1e-6
    label, idx, probs = learn.predict(data/'val'/'c01'/'0.png')
    assert label in ('c00', 'c01', 'c02') and probs.shape == (3,)
    again = _cli('bnn_train', '--dataset', str(data), '--rule', 'dfa', '--width', '0.125', '--epochs', '1', '--bs', '16', '--seed', '2',
                 '--out', str(tmp_path/'runs'), '--save')
    assert again.returncode == 0 and 'exists, skipped' in again.stdout
    with pytest.raises(ValueError, match='has 12 classes, the run 3'): load_run(fn, data=_toy(tmp_path/'other', 12, valid='val'))

def test_sweep_refuses_data_that_is_not_imagenette(tmp_path):
    data = _toy(tmp_path/'my_birds', 3, valid='val')
    r = _cli('bnn_sweep', '--experiment', 'T2', '--data', str(data), '--dry-run', '--out', str(tmp_path/'out'))
    assert r.returncode != 0 and 'Traceback' not in r.stderr
    assert "does not hold ImageNette's 10 classes (it has 3)" in r.stderr.strip().splitlines()[-1], r.stderr

def test_progress_table_counts_epochs_from_1(capsys):
    from bnn_study.learner import bnn_learner, RunRecorder
    from bnn_study.models import get_model
    learn = bnn_learner(get_model('vgg19_bn', width=0.125, img_size=32, head='linear'), synthetic_dls(64, 32, size=32, bs=32), 'both',
                        cbs=[RunRecorder()])
    with learn.no_bar(): learn.fit(2)
    rows = [l for l in capsys.readouterr().out.splitlines() if l.startswith('[')]
    assert [r.split(',')[0] for r in rows] == ['[1', '[2'], rows

def test_ray_sweep_killed_and_resumed_loses_and_duplicates_nothing(tmp_path):
    "A Ray sweep killed (SIGKILL, whole process group) after its first record, then started again: the other run only is trained."
    import os, signal, time
    pytest.importorskip('ray')
    exe = Path(sys.executable).parent/'bnn_sweep'
    args = [str(exe), '--engine', 'ray', '--experiment', 'T2', '--preset', 'quick', '--models', 'vgg19_bn', '--rules', 'bp,dfa',
            '--epochs', '1', '--n-train', '128', '--workers', '1', '--out', str(tmp_path)]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    runs, t0 = tmp_path/'runs', time.time()
    while not list(runs.glob('*.json')) and time.time() - t0 < 240 and first.poll() is None: time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL); first.wait()
    kept = {f.name: f.read_text() for f in runs.glob('*.json')}
    assert len(kept) == 1, (kept, first.stdout.read()[-2000:])
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    recs = {f.name: f.read_text() for f in runs.glob('*.json')}
    assert len(recs) == 2 and all(recs[n] == t for n, t in kept.items())  # the first record untouched, not trained again
    assert again.stdout.count('best test acc') == 1 and 'ray: 2 runs, 1 done, 1 submitted' in again.stdout, again.stdout
    assert not list(tmp_path.rglob('*.tmp')) and not list(tmp_path.rglob('*.bad-*'))

def test_gpu_preset_dry_run_prints_its_expected_gpu_time(tmp_path):
    r = _cli('bnn_sweep', '--experiment', 'T2', '--preset', 'gpu', '--dry-run', '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith('estimate: 75 runs to do, ') and 'GPU-minutes' in last and 'H100' in last, last

def test_headline_writes_where_make_study_does_never_the_committed_results():
    import inspect
    from bnn_study.cli import headline, bnn_headline
    assert inspect.signature(headline).parameters['out'].default == 'runs/quick'
    assert inspect.signature(bnn_headline.__wrapped__).parameters['out'].default in ('runs/quick', None)
    assert 'bnn_headline --out runs/quick' in (ROOT/'Makefile').read_text()


def _commands(text):
    "The command lines (comments dropped) of every ```sh block in `text`."
    import re
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [[l.split('#')[0].strip() for l in b.splitlines() if l.split('#')[0].strip()] for b in blocks]


def test_readme_and_index_give_the_same_commands():
    "The home page's commands are the README's: its first block is the README's first, and every other one is in the README."
    nb = json.loads((ROOT/'nbs'/'index.ipynb').read_text())
    index = _commands('\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown'))
    readme = _commands((ROOT/'README.md').read_text())
    assert index and readme
    assert index[0] == readme[0]
    assert {l for b in index for l in b} <= {l for b in readme for l in b}
