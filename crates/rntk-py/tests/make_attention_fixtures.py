"""CNTK 2.7's AttentionModel as fixtures (fixtures/attention.json), with the helpers
and conventions of the core's tests/fixtures/cntk_layers/make_layer_fixtures.py:
parameters filled deterministically (each W with its own key, the four stabilizer
alphas 0.5/0.6/0.7/0.8), the forward output and d sum(out * r)/d(inputs, parameters),
float32. The encoder runs on the default sequence axis, the decoder on its own
('decoderAxis'), paired by batch item with different lengths. One more case records
the initial parameters CNTK draws after set_fixed_random_seed(1); two more apply the
layer inside a Recurrence step (CNTK tutorial 204's decoder: the query is the LSTM's
previous state), forwards and backwards.

    /work/shared/bench/cntk/py crates/rntk-py/tests/make_attention_fixtures.py

Runs in about a second and writes the same bytes every time."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', '..', 'tests', 'fixtures', 'cntk_layers'))
from make_layer_fixtures import C, DT, Inp, pfill, r_like, seq_data, value, out_kind  # noqa: E402
import numpy as np  # noqa: E402

ENC_LENGTHS = [3, 1, 5, 2]
DEC_LENGTHS = [2, 4, 1, 3]
# parameter paths in CNTK's creation order (uid order)
PATHS = ['enc.alpha', 'enc.W', 'dec.alpha', 'dec.W', 'tanh.alpha', 'tanh.W', 'out.alpha']
ALPHAS = {'enc': 0.5, 'dec': 0.6, 'tanh': 0.7, 'out': 0.8}
W_KEYS = {'enc': 1, 'dec': 2, 'tanh': 3}


class SeqOn(Inp):
    """A sequence input on a named sequence axis."""

    def __init__(self, name, shape, data, axis):
        Inp.__init__(self, name, 'sequence', shape, data)
        self.axis = axis

    def make(self):
        self.var = C.sequence.input_variable(self.shape, dtype=DT, needs_gradient=True,
                                             name=self.name, sequence_axis=self.axis)
        return self.var

    def record(self):
        d = Inp.record(self)
        d['axis'] = self.axis.name
        return d


def ordered(params):
    return sorted(params, key=lambda p: int(''.join(ch for ch in p.uid if ch.isdigit())))


def paths_of(params):
    ps = ordered(params)
    paths = [p for p in PATHS if (p.endswith('W') or len(ps) == len(PATHS))]
    if len(paths) != len(ps):
        raise RuntimeError('%d parameters, expected %d' % (len(ps), len(paths)))
    return list(zip(paths, ps))


def fill(params):
    out = []
    for path, p in paths_of(params):
        which = path.split('.')[0]
        v = np.array(ALPHAS[which], dtype=DT) if p.name == 'alpha' else pfill(p.shape, W_KEYS[which])
        p.value = v
        out.append((path, p, v))
    return out


def inputs():
    enc = SeqOn('enc', (3,), seq_data((3,), 1, ENC_LENGTHS), C.Axis.default_dynamic_axis())
    dec = SeqOn('dec', (2,), seq_data((2,), 2, DEC_LENGTHS), C.Axis('decoderAxis'))
    return [enc, dec]


def run(name, f, ins, params):
    """The forward output of ``f`` and d sum(out * r)/d(inputs, parameters)."""
    ov = f.output
    kind = out_kind(ov)
    feed = {i.var: i.feed() for i in ins}
    out = f.eval(feed)
    r = r_like(out, kind)
    rvar = C.input_variable(ov.shape, dtype=DT, dynamic_axes=ov.dynamic_axes, name='r')
    g = C.element_times(f, rvar)
    gfeed = dict(feed)
    gfeed[rvar] = r
    wrt = [i.var for i in ins] + [p for _, p, _ in params]
    gr = g.grad(gfeed, wrt=wrt)
    grads = {i.name: value(i.kind, i.shape, gr[i.var]) for i in ins}
    for path, p, _ in params:
        grads[path] = value('static', p.shape, gr[p])
    print('ok   %s -> %s %s on %s' % (name, kind, tuple(ov.shape), ov.dynamic_axes[1].name))
    return {'inputs': [i.record() for i in ins],
            'params': dict((path, value('static', p.shape, v)) for path, p, v in params),
            'output': value(kind, ov.shape, out), 'r': value(kind, ov.shape, r), 'grads': grads}


def case(name, expr, attention_dim, **kw):
    ins = inputs()
    env = {i.name: i.make() for i in ins}
    att = C.layers.AttentionModel(attention_dim, **kw)
    f = att(env['enc'], env['dec'])
    params = fill(f.parameters)
    d = {'name': name, 'expr': expr, 'attention_dim': attention_dim,
         'options': dict((k, v) for k, v in kw.items())}
    d.update(run(name, f, ins, params))
    return d


def seeded_init():
    """The initial parameters after set_fixed_random_seed(1), AttentionModel(5) on
    encoder (3,) and decoder (2,)."""
    C.cntk_py.set_fixed_random_seed(1)
    ins = inputs()
    env = {i.name: i.make() for i in ins}
    f = C.layers.AttentionModel(5)(env['enc'], env['dec'])
    ps = dict((path, value('static', p.shape, p.value)) for path, p in paths_of(f.parameters))
    print('ok   seeded initial parameters: %s' % ', '.join(sorted(ps)))
    return {'name': 'seeded_init', 'expr': 'set_fixed_random_seed(1); AttentionModel(5)(enc, dec)',
            'params': ps}


LSTM_KEYS = {'b': 11, 'W': 12, 'H': 13}


def recurrence_case(name, go_backwards):
    """CNTK 204's decoder step: AttentionModel(4) inside a Recurrence over an LSTM(5),
    the query being the LSTM's previous h; the encoder sequence (default axis) is read
    whole by every decoder step (decoderAxis) of the same batch item. The step is an
    untyped @C.Function, as in 204."""
    ins = inputs()
    env = {i.name: i.make() for i in ins}
    att = C.layers.AttentionModel(4)
    cell = C.layers.LSTM(5)

    @C.Function
    def decode(encoded, history):
        @C.Function
        def lstm_with_attention(dh, dc, x):
            h_att = att(encoded, dh)
            return cell(dh, dc, C.splice(x, h_att))
        return C.layers.Recurrence(lstm_with_attention, go_backwards=go_backwards)(history)
    f = decode(env['enc'], env['dec'])
    lstm_uids = set(p.uid for p in cell.parameters)
    params = fill([p for p in f.parameters if p.uid not in lstm_uids])
    for p in cell.parameters:
        v = pfill(p.shape, LSTM_KEYS[p.name])
        p.value = v
        params.append(('lstm.' + p.name, p, v))
    d = {'name': name,
         'expr': 'decode(enc, dec) = Recurrence(lstm_with_attention, go_backwards=%s)(dec), '
         'lstm_with_attention(dh, dc, x) = cell(dh, dc, splice(x, AttentionModel(4)(enc, dh))), '
         'cell = LSTM(5)' % go_backwards,
         'attention_dim': 4, 'options': {}, 'go_backwards': go_backwards}
    d.update(run(name, f, ins, params))
    return d


def main():
    cs = [case('attention_model', 'AttentionModel(4)(enc, dec)', 4),
          case('attention_model_no_stabilization',
               'AttentionModel(3, enable_self_stabilization=False)(enc, dec)', 3,
               enable_self_stabilization=False),
          case('attention_model_go_backwards',
               'AttentionModel(4, go_backwards=True)(enc, dec) (ignored by CNTK without a span)', 4,
               go_backwards=True),
          seeded_init(),
          recurrence_case('attention_in_recurrence_step', False),
          recurrence_case('attention_in_recurrence_step_backwards', True)]
    text = json.dumps({'generator': 'make_attention_fixtures.py', 'cntk_version': C.__version__,
                       'dtype': 'float32', 'cases': cs}, separators=(',', ':'), allow_nan=False)
    with open(os.path.join(HERE, 'fixtures', 'attention.json'), 'w') as fh:
        fh.write(text.replace(',{"name"', ',\n{"name"') + '\n')
    print('wrote attention.json: %d cases' % len(cs))


if __name__ == '__main__':
    main()
