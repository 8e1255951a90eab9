"On a GPU machine: run the pending cpu-preset configurations of the given tables with N worker processes until a deadline; tar new records."
import os, sys, time, tarfile, multiprocessing as mp
from pathlib import Path

def main(deadline, workers, tables, exclude='', out='results/cpu'):
    t0 = time.time()
    from bnn_study import experiments as E
    p, cs = E.get_preset('cpu'), []
    skip = {tuple(c) for t in exclude.split(',') if t for c in E.configs(t)}
    for t in tables.split(','):
        cs += [tuple(c) for c in E.configs(t) if tuple(c) not in cs and tuple(c) not in skip and not all(d for _, d in E._runs(c, p, out, 3))]
    print(len(cs), 'pending configurations', flush=True)
    before = set(Path(out).rglob('*.json'))
    ctx = mp.get_context('spawn')
    procs = [ctx.Process(target=E._work, args=(cs, p, out, 3, E._log, 1)) for _ in range(workers)]
    for q in procs: q.start()
    while time.time() - t0 < deadline and any(q.is_alive() for q in procs): time.sleep(2)
    for q in procs:
        if q.is_alive(): q.terminate()
    for q in procs: q.join()
    new = sorted(f for f in Path(out).rglob('*.json') if f not in before)
    with tarfile.open(Path(os.environ.get('OUT', '.'))/'gpu_records.tar.gz', 'w:gz') as tf:
        for f in new: tf.add(f)
    print(len(new), 'new files in', round(time.time() - t0), 's', flush=True)

if __name__ == '__main__': main(float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else '')
