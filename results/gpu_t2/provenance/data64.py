"""Carry ImageNette's 64 px cache to a machine without the data set.

pack   (here):   python data64.py pack OUT.npz      -- the 64 px caches, each image as WebP q95, with paths and sizes
unpack (there):  python data64.py unpack IN.npz ROOT -- ROOT/imagenette2 as empty files of the originals' names and sizes
                 (so `data_fingerprint` is ImageNette's), and the package's 64 px caches for it under $BNN_CACHE.
"""
import io, os, sys, numpy as np, torch
from pathlib import Path
from PIL import Image
from bnn_study.data import find_data, check_layout, cached_split, _cache_file

SIZE, SPLITS = 64, ('train', 'val')

def pack(out):
    root = find_data('imagenette'); arrs = {}
    for s in SPLITS:
        files, labels, classes = lay = check_layout(root, (s,))[s]
        x = cached_split(root, s, SIZE, layout=lay)['x']
        blobs = []
        for im in x:
            b = io.BytesIO(); Image.fromarray(im.permute(1, 2, 0).numpy()).save(b, 'WEBP', quality=95); blobs.append(b.getvalue())
        arrs[f'{s}_blob'] = np.frombuffer(b''.join(blobs), np.uint8)
        arrs[f'{s}_off'] = np.cumsum([0] + [len(b) for b in blobs])
        arrs[f'{s}_paths'] = np.array([str(Path(f).relative_to(root)) for f in files])
        arrs[f'{s}_sizes'] = np.array([Path(f).stat().st_size for f in files])
        arrs[f'{s}_labels'] = np.array(labels); arrs[f'{s}_classes'] = np.array(classes)
    np.savez(out, **arrs)

def unpack(fn, base):
    a, root = np.load(fn), Path(base)/'imagenette2'
    for s in SPLITS:
        for p, n in zip(a[f'{s}_paths'], a[f'{s}_sizes']):
            f = root/str(p); f.parent.mkdir(parents=True, exist_ok=True)
            with open(f, 'wb') as h: h.truncate(int(n))
    for s in SPLITS:
        files, labels, classes = check_layout(root, (s,))[s]
        assert [str(Path(f).relative_to(root)) for f in files] == list(a[f'{s}_paths']), f'{s}: file order differs'
        assert list(labels) == list(a[f'{s}_labels']) and list(classes) == list(a[f'{s}_classes']), f'{s}: labels differ'
        blob, off = a[f'{s}_blob'].tobytes(), a[f'{s}_off']
        x = np.stack([np.asarray(Image.open(io.BytesIO(blob[off[i]:off[i + 1]])).convert('RGB')).transpose(2, 0, 1) for i in range(len(files))])
        fn_c = _cache_file(root, s, SIZE, files); fn_c.parent.mkdir(parents=True, exist_ok=True)
        torch.save(dict(x=torch.from_numpy(x), y=torch.tensor(labels), classes=classes), fn_c)
        print(s, x.shape, '->', fn_c, flush=True)

if __name__ == '__main__':
    if sys.argv[1] == 'pack': pack(sys.argv[2])
    else: unpack(sys.argv[2], sys.argv[3])
