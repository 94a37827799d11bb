"""``C.io.ImageDeserializer`` with ``cntk.io.transforms`` against the real CNTK 2.7.

The oracle is the core's (tests/fixtures/cntk_images/oracle.json at the repository root,
made by make_image_fixtures.py under shared/bench/cntk/py): what CNTK's ImageDeserializer
delivered (randomize=False, one sweep) for a few generated images under each deterministic
transform chain. Here the same chains are built with ``xforms.crop/scale/mean`` through
rntk's package and read through ``C.io.MinibatchSource``; then the same images are written
as PNG files (lossless: CNTK would decode the same pixels) and must give the same numbers.
"""

import json
import os
import shutil
import struct
import zlib

import numpy as np
import pytest

import rntk as C
import rntk.io.transforms as xforms

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
IMAGES = os.path.join(ROOT, 'tests', 'fixtures', 'cntk_images')

with open(os.path.join(IMAGES, 'oracle.json')) as _f:
    ORACLE = json.load(_f)

# the images of make_image_fixtures.py: (width, height, k) and the pixel formula
SIZES = {'a': (6, 4, 1), 'b': (5, 7, 2), 'c': (9, 9, 3), 'd': (16, 12, 4), 'e': (7, 5, 5)}


def rgb_pixels(w, h, k):
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 37 + y * 11 + k * 13) % 256
    g = (x * 7 + y * 53 + k * 29) % 256
    b = (x * 91 + y * 3 + k * 71) % 256
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def write_png(path, rgb):
    """A minimal 8-bit RGB PNG (no dependency on an imaging library)."""
    h, w, _ = rgb.shape
    raw = b''.join(b'\0' + rgb[y].tobytes() for y in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack('>I', len(data)) + body + struct.pack('>I', zlib.crc32(body) & 0xffffffff)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) +
                chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def chain(spec, base):
    """The cntk.io.transforms calls of a case's transform chain."""
    out = []
    for t in spec:
        kw = {k: v for k, v in t.items() if k != 'type'}
        if t['type'] == 'scale':
            out.append(xforms.scale(**kw))
        elif t['type'] == 'crop':
            if isinstance(kw.get('crop_size'), list):
                kw['crop_size'] = tuple(kw['crop_size'])
            out.append(xforms.crop(**kw))
        elif t['type'] == 'mean':
            out.append(xforms.mean(os.path.join(base, t['file'])))
        else:
            raise AssertionError(t)
    return out


def read_all(map_file, transforms, classes=4):
    d = C.io.ImageDeserializer(map_file, C.io.StreamDefs(
        features=C.io.StreamDef(field='image', transforms=transforms),
        labels=C.io.StreamDef(field='label', shape=classes)))
    src = C.io.MinibatchSource(d, randomize=False, max_sweeps=1)
    n = sum(1 for _ in open(map_file))
    mb = src.next_minibatch(n)
    feats = mb[src.streams.features].asarray()
    labels = mb[src.streams.labels].asarray()
    assert not src.next_minibatch(n), 'one sweep only'
    return (np.asarray(feats, dtype=np.float64).reshape((n,) + feats.shape[2:]),
            np.asarray(labels).reshape(n, classes).argmax(axis=1).tolist())


def compare(case, feats, labels):
    want = np.asarray(case['features']).reshape([-1] + case['shape'])
    assert list(feats.shape[1:]) == case['shape']
    assert labels == case['labels']
    # OpenCV rounds 8-bit bilinear/bicubic rows one grey level differently in its vector
    # and scalar paths (see the core's tests/io/image_reader.rs); everything else is exact
    interpolates = any(t['type'] == 'scale' and t.get('interpolations') != 'nearest'
                       for t in case['transforms'])
    diff = np.abs(feats - want)
    tol = 1.0 + 1e-4 if interpolates else 1e-4
    assert diff.max() <= tol, '%s: %d of %d values differ, by up to %g' % (
        case['name'], (diff >= 1e-4).sum(), diff.size, diff.max())


CASES = [c for c in ORACLE['cases'] if c['name'] != 'scale_gray']


@pytest.mark.parametrize('case', CASES, ids=[c['name'] for c in CASES])
def test_image_deserializer_equals_cntk(case):
    feats, labels = read_all(os.path.join(IMAGES, case['map']), chain(case['transforms'], IMAGES))
    compare(case, feats, labels)


@pytest.mark.parametrize('name', ['scale_same_size', 'scale_nearest', 'crop_center_side', 'mean'])
def test_png_images_give_cntks_numbers(tmp_path, name):
    """The oracle's images written as PNG: the same numbers as CNTK's from the BMP files."""
    case = next(c for c in ORACLE['cases'] if c['name'] == name)
    os.makedirs(str(tmp_path / 'img'))
    for n, (w, h, k) in SIZES.items():
        write_png(str(tmp_path / 'img' / (n + '.png')), rgb_pixels(w, h, k))
    shutil.copy(os.path.join(IMAGES, 'mean.xml'), str(tmp_path))
    with open(os.path.join(IMAGES, case['map'])) as f:
        lines = f.read().replace('.bmp', '.png')
    map_file = str(tmp_path / 'map.txt')
    with open(map_file, 'w') as f:
        f.write(lines)
    feats, labels = read_all(map_file, chain(case['transforms'], str(tmp_path)))
    compare(case, feats, labels)


def test_random_transforms_train_a_model(tmp_path):
    """randomside crops, colour jitter and a randomized reader: shapes and ranges as asked,
    the same images from the same seed, and a Trainer takes the minibatches."""
    os.makedirs(str(tmp_path / 'img'))
    lines = []
    for i in range(12):
        write_png(str(tmp_path / 'img' / ('%d.png' % i)), rgb_pixels(12, 10, i))
        lines.append('img/%d.png\t%d' % (i, i % 3))
    with open(str(tmp_path / 'map.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')

    def source():
        t = [xforms.crop(crop_type='randomside', side_ratio=0.8, jitter_type='uniratio'),
             xforms.scale(width=8, height=8, channels=3, interpolations='linear'),
             xforms.color(brightness_radius=0.2, contrast_radius=0.2, saturation_radius=0.2)]
        d = C.io.ImageDeserializer(str(tmp_path / 'map.txt'), C.io.StreamDefs(
            features=C.io.StreamDef(field='image', transforms=t),
            labels=C.io.StreamDef(field='label', shape=3)))
        return C.io.MinibatchSource(d, randomize=True, max_sweeps=C.io.INFINITELY_REPEAT)

    s1, s2 = source(), source()
    a = s1.next_minibatch(6)[s1.streams.features].asarray()
    b = s2.next_minibatch(6)[s2.streams.features].asarray()
    assert a.shape == (6, 1, 3, 8, 8)
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0 and a.max() <= 255 * 1.5

    x = C.input_variable((3, 8, 8))
    y = C.input_variable(3)
    z = C.layers.Sequential([C.layers.Convolution2D((3, 3), 4, pad=True, activation=C.relu),
                             C.layers.GlobalAveragePooling(), C.layers.Dense(3)])(x / 255)
    loss = C.cross_entropy_with_softmax(z, y)
    trainer = C.Trainer(z, (loss, C.classification_error(z, y)),
                        [C.sgd(z.parameters, C.learning_parameter_schedule(0.1))])
    for _ in range(3):
        trainer.train_minibatch(s1.next_minibatch(4, input_map={x: s1.streams.features,
                                                                y: s1.streams.labels}))
    assert np.isfinite(trainer.previous_minibatch_loss_average)


def test_image_errors_are_python_errors(tmp_path):
    with open(str(tmp_path / 'map.txt'), 'w') as f:
        f.write('missing.png\t0\n')
    d = C.io.ImageDeserializer(str(tmp_path / 'map.txt'), C.io.StreamDefs(
        features=C.io.StreamDef(field='image', transforms=[xforms.scale(4, 4, 3)]),
        labels=C.io.StreamDef(field='label', shape=2)))
    src = C.io.MinibatchSource(d, randomize=False)
    with pytest.raises((ValueError, RuntimeError), match='missing.png'):
        src.next_minibatch(1)
    with pytest.raises(ValueError, match='crop_type'):
        C.io.MinibatchSource(C.io.ImageDeserializer(str(tmp_path / 'map.txt'), C.io.StreamDefs(
            features=C.io.StreamDef(field='image', transforms=[xforms.crop(crop_type='diagonal'),
                                                               xforms.scale(4, 4, 3)]),
            labels=C.io.StreamDef(field='label', shape=2))))
    with pytest.raises(ValueError, match="field='label'"):
        C.io.ImageDeserializer('map.txt', C.io.StreamDefs(
            features=C.io.StreamDef(field='image', transforms=[])))
