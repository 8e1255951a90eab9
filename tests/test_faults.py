"Runs you can trust under faults (issue 36): each case is what a user does, and what they must get."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from bnn_study.data import find_data

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def _cli(script, *args, timeout=300, env=None):
    "Run console script `script` with `args`; its completed process."
    return subprocess.run([str(BIN/script), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})

def _last(r) -> str: return r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ''

def _one_line_error(r, script, text):
    assert r.returncode != 0, r.stdout[-500:]
    assert 'Traceback' not in r.stderr, r.stderr[-2000:]
    assert _last(r).startswith(f'{script}: error:') and text in _last(r), _last(r)

@pytest.fixture(scope='module')
def small_copy(tmp_path_factory):
    "ImageNette with 26 training and 10 test images per class (links to the real files)."
    src, dst = find_data('imagenette'), tmp_path_factory.mktemp('copy')/'imagenette2'
    for split, n in (('train', 26), ('val', 10)):
        for cls in sorted((src/split).iterdir()):
            (dst/split/cls.name).mkdir(parents=True)
            for f in sorted(cls.iterdir())[:n]: (dst/split/cls.name/f.name).symlink_to(f)
    return dst

QUICK = ['--experiment', 'T2', '--preset', 'quick', '--models', 'mlp_mixer', '--rules', 'bp', '--epochs', '1']

def test_sweep_reuses_a_record_only_for_the_same_data(small_copy, tmp_path):
    first = _cli('bnn_sweep', *QUICK, '--out', tmp_path, '--data', small_copy, env=dict(BNN_CACHE=str(tmp_path/'c')))
    assert first.returncode == 0, first.stderr[-2000:]
    again = _cli('bnn_sweep', *QUICK, '--out', tmp_path, env=dict(BNN_CACHE=str(tmp_path/'c')))
    _one_line_error(again, 'bnn_sweep', 'records a run on other data')
    assert 'data digest' in _last(again)

def test_a_batch_larger_than_the_training_set_is_refused_before_any_work(small_copy, tmp_path):
    r = _cli('bnn_train', '--dataset', small_copy, '--bs', 300, '--epochs', 1, '--out', tmp_path, '--quiet')
    _one_line_error(r, 'bnn_train', '--bs 300 is more than the 260 training images')
    assert not list(tmp_path.glob('*.json'))
    r = _cli('bnn_train', '--dataset', small_copy, '--bs', 250, '--split', 'tune', '--out', tmp_path, '--quiet')
    _one_line_error(r, 'bnn_train', 'more than the 234 training images')

def test_a_diverged_run_leaves_no_record_and_no_result(small_copy, tmp_path):
    r = _cli('bnn_train', '--dataset', small_copy, '--weights', 'float', '--acts', 'float', '--rule', 'dfa', '--lr', '1e30',
             '--epochs', 2, '--model', 'mlp_mixer', '--patch-size', 4, '--dim', 32, '--depth', 2, '--out', tmp_path, '--quiet')
    _one_line_error(r, 'bnn_train', 'training diverged')
    assert not list(tmp_path.glob('*.json')) and not list(tmp_path.glob('*.ckpt'))
    for bad in ('inf', 'nan', '-1'):
        _one_line_error(_cli('bnn_train', '--lr', bad, '--out', tmp_path), 'bnn_train', f'--lr')

def test_records_are_strict_json():
    from bnn_study.runs import _strict
    rec = _strict(dict(a=float('nan'), b=[1., float('inf')], c=dict(d=2.)))
    assert json.loads(json.dumps(rec, allow_nan=False)) == dict(a=None, b=[1., None], c=dict(d=2.))

def _running_sweep(tmp_path, data, workers):
    args = ['--experiment', 'T2', '--preset', 'quick', '--models', 'vgg19_bn,mlp_mixer', '--rules', 'bp', '--epochs', '20',
            '--out', tmp_path/'s', '--data', data, '--workers', workers]
    p = subprocess.Popen([str(BIN/'bnn_sweep'), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env={**os.environ, 'BNN_CACHE': str(tmp_path/'c')}, start_new_session=True)
    claims = tmp_path/'s'/'.claims'
    for _ in range(600):  # until every worker holds a claim
        if claims.exists() and len(list(claims.iterdir())) >= workers: break
        time.sleep(0.2)
    return p, claims

def _children(pid) -> list:
    out = subprocess.run(['pgrep', '-P', str(pid)], capture_output=True, text=True).stdout.split()
    return [int(c) for c in out]

def test_stopping_a_sweep_stops_its_workers_and_releases_their_claims(small_copy, tmp_path):
    p, claims = _running_sweep(tmp_path, small_copy, 2)
    kids = [c for c in _children(p.pid) if 'resource_tracker' not in Path(f'/proc/{c}/cmdline').read_text()]
    assert len(list(claims.iterdir())) == 2 and len(kids) >= 2
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode != 0 and 'Traceback' not in err, err[-2000:]
    assert 'stopped (SIGTERM)' in err.strip().splitlines()[-1]
    time.sleep(1)
    assert not [k for k in kids if Path(f'/proc/{k}').exists()], 'workers still running'
    assert not list(claims.iterdir()), 'claims left behind'

def test_a_rerun_beside_a_live_sweep_names_it_and_does_not_pass(small_copy, tmp_path):
    p, claims = _running_sweep(tmp_path, small_copy, 1)
    try:
        r = _cli('bnn_sweep', '--experiment', 'T2', '--preset', 'quick', '--models', 'vgg19_bn', '--rules', 'bp',
                 '--epochs', 20, '--out', tmp_path/'s', '--data', small_copy, env=dict(BNN_CACHE=str(tmp_path/'c')))
        _one_line_error(r, 'bnn_sweep', 'being trained by another process')
        assert f'pid {p.pid}' in _last(r) and 'since' in _last(r)
        assert not list((tmp_path/'s').glob('T2_*table.csv'))
    finally:
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    assert err.strip().splitlines()[-1].startswith('bnn_sweep: interrupted'), err[-2000:]
    assert 'Traceback' not in err

def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    from bnn_study import runs, core
    def full(*a, **k): raise RuntimeError('[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0: No space left on device')
    monkeypatch.setattr(runs.torch, 'save', full)
    with pytest.raises(OSError, match=r'Cannot write .*w\.pth: .*No space left on device'): runs._save_atomic({}, tmp_path/'w.pth')
    assert not list(tmp_path.iterdir())
    def enospc(self, *a, **k): raise OSError(28, 'No space left on device')
    monkeypatch.setattr(Path, 'write_text', enospc)
    with pytest.raises(OSError, match=r'Cannot write .*r\.json: No space left on device'): core.write_atomic(tmp_path/'r.json', '{}')
    assert not list(tmp_path.iterdir())

def test_a_full_image_cache_falls_back_to_memory(small_copy, tmp_path, monkeypatch):
    from bnn_study import data
    def full(*a, **k): raise RuntimeError('unexpected pos 64 vs 0: No space left on device')
    monkeypatch.setattr(data.torch, 'save', full)
    monkeypatch.setenv('BNN_CACHE', str(tmp_path/'c'))
    with pytest.warns(UserWarning, match='stay in memory'): got = data.cached_split(small_copy, 'val', 16)
    assert got['x'].shape == (100, 3, 16, 16) and not list((tmp_path/'c').glob('*.tmp'))
    monkeypatch.undo()
    monkeypatch.setenv('BNN_CACHE', '/proc/bnn_cache')  # a folder nobody can make, root included
    with pytest.warns(UserWarning, match='stay in memory'): data.cached_split(small_copy, 'val', 16)

def test_ray_never_hangs(tmp_path):
    pytest.importorskip('ray')
    t0 = time.time()
    r = _cli('bnn_sweep', *QUICK, '--out', tmp_path, '--engine', 'ray', '--address', '127.0.0.1:1', timeout=120)
    _one_line_error(r, 'bnn_sweep', 'No Ray cluster answers at --address 127.0.0.1:1')
    if not torch.cuda.is_available():
        r = _cli('bnn_sweep', *QUICK, '--out', tmp_path, '--engine', 'ray', '--gpus-per-run', 1, timeout=180)
        _one_line_error(r, 'bnn_sweep', 'Ray cannot place a run: 1 GPU per run, the cluster has 0')
    assert time.time() - t0 < 240

@pytest.mark.parametrize('script,args,text', [
    ('bnn_train', ['--model', 'mlp_mixer', '--patch-size', '5'], 'img_size 32 is not a multiple of patch_size 5'),
    ('bnn_train', ['--model', 'mlp_mixer', '--dim', '0'], '--dim 0 builds no model'),
    ('bnn_train', ['--model', 'mlp_mixer', '--depth', '-1'], '--depth -1 builds no model'),
    ('bnn_bench', ['--models', 'vgg19'], "Unknown model(s) ['vgg19']"),
    ('bnn_bench', ['--rules', 'bp,magic'], "Unknown rule(s) ['magic']"),
    ('bnn_bench', ['--json', '/etc/hostname/t.json'], 'is a file, not a folder'),
    ('bnn_bench', ['--bs', '0'], '--bs 0'),
    ('bnn_bench', ['--rounds', '0'], '--rounds 0 measures nothing'),
    ('bnn_bench', ['--width', '0'], '--width 0'),
    ('bnn_bench', ['--rules', 'bp,hsic', '--bs', '1'], 'HSIC compares the samples of a batch'),
    ('bnn_sweep', ['--workers', '64'], '--workers 64: this machine runs 1 to'),
])
def test_every_option_is_checked_before_any_work(script, args, text, tmp_path):
    t0 = time.time()
    r = _cli(script, *args, '--out' if script != 'bnn_bench' else '--steps', tmp_path if script != 'bnn_bench' else 1)
    _one_line_error(r, script, text)
    assert time.time() - t0 < 60

def test_loading_is_checked(small_copy, tmp_path):
    from bnn_study.runs import load_run, weights_file
    base = ['--dataset', small_copy, '--model', 'mlp_mixer', '--patch-size', 4, '--dim', 32, '--depth', 2, '--epochs', 1,
            '--bs', 32, '--save', '--quiet', '--out', tmp_path]
    assert _cli('bnn_train', *base).returncode == 0
    assert _cli('bnn_train', *base, '--seed', 1).returncode == 0
    a, b = sorted(tmp_path.glob('*.json'))
    assert 'weights_sha256' in json.loads(a.read_text())
    wa, wb = weights_file(a), weights_file(b)
    wb.write_bytes(wa.read_bytes())  # weights of another run
    with pytest.raises(ValueError, match='is not the weights file of'): load_run(b)
    wa.write_bytes(wa.read_bytes()[:200])  # truncated
    rec = json.loads(a.read_text())
    a.write_text(json.dumps({k: v for k, v in rec.items() if k != 'weights_sha256'}))  # an older record: no digest
    with pytest.raises(ValueError, match='is not a weights file bnn_train wrote'): load_run(a)
    shuffled = tmp_path/'shuffled'
    for split in ('train', 'val'):
        for i, cls in enumerate(sorted((small_copy/split).iterdir())):
            (shuffled/split/f'{i:02d}_{cls.name}').mkdir(parents=True)
            for f in list(cls.iterdir())[:3]: (shuffled/split/f'{i:02d}_{cls.name}'/f.name).symlink_to(f.resolve())
    r = _cli('bnn_train', *base, '--seed', 2)
    c = next(p for p in tmp_path.glob('*_s2.json'))
    with pytest.raises(ValueError, match='has other classes than the run'): load_run(c, data=shuffled)

def test_thread_count_is_part_of_the_run(tmp_path):
    from bnn_study.plans import check_threads, run_config, record_path, Config
    from bnn_study.presets import get_preset
    cfg = run_config(Config('vgg19_bn', 'both', 'bp'), get_preset('cpu'), 1e-3, 0)
    (fn := record_path(tmp_path, cfg)).parent.mkdir(parents=True)
    fn.write_text(json.dumps(dict(config=cfg.asdict(), env=dict(threads=1))))
    with pytest.raises(ValueError, match='trained with 1 thread'): check_threads(tmp_path, cfg.replace(seed=1), threads=2)

def test_names_keep_the_data_set_apart_from_the_size():
    from bnn_study.runs import RunConfig
    assert '_imagewoof2-320-32px_' in RunConfig(dataset='imagewoof2-320').name
    assert '_imagenette32px_' in RunConfig().name  # the committed records keep their names

def test_no_pickles_from_strangers():
    "The package's export and predict path reads weights and a config; fastai's pickle-based load_learner never."
    code = '\n'.join(f.read_text() for f in (ROOT/'bnn_study').rglob('*.py'))
    assert 'load_learner(' not in code and 'import load_learner' not in code
    assert 'pickles can run code' in ' '.join((ROOT/'README.md').read_text().split())
