"""``layers.AttentionModel`` against the real CNTK 2.7.

fixtures/attention.json (make_attention_fixtures.py): ``AttentionModel(A)(enc, dec)``
with the encoder on the default sequence axis and the decoder on its own axis, ragged
lengths that differ per batch item, parameters filled deterministically (CNTK's seven
parameters in CNTK's order), with and without self-stabilization, and with
``go_backwards=True`` (no effect in CNTK's default mode): the output and
d sum(out * r)/d(enc, dec, every parameter), float32. Also the initial parameters
after ``set_fixed_random_seed(1)``, and the refusals.
"""

import json
import os

import numpy as np
import pytest

import rntk as C
from rntk.layers import AttentionModel, Recurrence, LSTM

from test_conv import array, check

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, 'fixtures', 'attention.json')) as _f:
    CASES = json.load(_f)['cases']
# CNTK's creation order of the layer's parameters (the fixture's paths)
PATHS = ['enc.alpha', 'enc.W', 'dec.alpha', 'dec.W', 'tanh.alpha', 'tanh.W', 'out.alpha']


def make_inputs(case, dt):
    env = {}
    for i in case['inputs']:
        axis = C.Axis(i['axis']) if i['axis'] != 'defaultDynamicAxis' \
            else C.Axis.default_dynamic_axis()
        env[i['name']] = C.sequence.input_variable(tuple(i['shape']), dtype=dt, needs_gradient=True,
                                                   name=i['name'], sequence_axis=axis)
    return env


def by_path(layer):
    ps = list(layer.parameters)
    paths = PATHS if len(ps) == len(PATHS) else [p for p in PATHS if p.endswith('.W')]
    assert [p.name for p in ps] == [q.split('.')[1] for q in paths]
    return dict(zip(paths, ps))


@pytest.mark.parametrize('case', [c for c in CASES if 'output' in c and 'go_backwards' not in c],
                         ids=lambda c: c['name'])
def test_attention_model_equals_cntk(case):
    dt = np.float32
    env = make_inputs(case, dt)
    att = AttentionModel(case['attention_dim'], **case['options'])
    f = att(env['enc'], env['dec'])
    assert f.output.shape == (3,)
    assert f.output.dynamic_axes[1].name == 'decoderAxis'
    params = by_path(att)
    assert sorted(params) == sorted(case['params'])
    for k, v in case['params'].items():
        assert params[k].shape == tuple(v['shape']), k
        params[k].value = array(v, dt)
    check(case, f, env, params, dt)


def test_seeded_initial_parameters_are_cntks():
    case = [c for c in CASES if c['name'] == 'seeded_init'][0]
    C.cntk_py.set_fixed_random_seed(1)
    enc = C.sequence.input_variable(3)
    dec = C.sequence.input_variable(2, sequence_axis=C.Axis('decoderAxis'))
    att = AttentionModel(5)
    att(enc, dec)
    for k, p in by_path(att).items():
        np.testing.assert_allclose(p.value, array(case['params'][k], np.float32), rtol=1e-6,
                                   atol=1e-7, err_msg=k)


def test_trains_and_is_shared_when_applied_again():
    """A toy decoder reads an encoder through the attention; the loss falls; the layer
    applied twice shares its parameters."""
    enc = C.sequence.input_variable(4, name='enc')
    dec_axis = C.Axis('dec')
    dec = C.sequence.input_variable(3, sequence_axis=dec_axis, name='dec')
    y = C.sequence.input_variable(4, sequence_axis=dec_axis, name='y')
    att = AttentionModel(6, name='attention')
    h = Recurrence(LSTM(5))(enc)
    a = att(h, dec)
    assert a.output.shape == (5,)
    again = att(h, dec)
    assert len(att.parameters) == 7
    assert {p.uid for p in again.parameters} == {p.uid for p in a.parameters}
    z = C.layers.Dense(4)(C.splice(a, dec))
    loss = C.squared_error(z, y)
    lr = C.learning_parameter_schedule(0.05)
    tr = C.Trainer(z, (loss, None), [C.adam(z.parameters, lr, 0.9)])
    rng = np.random.RandomState(0)
    encs = [rng.randn(n, 4).astype(np.float32) for n in (3, 5, 2)]
    decs = [rng.randn(n, 3).astype(np.float32) for n in (2, 4, 3)]
    # target: the mean of the encoder, at every decoder step
    ys = [np.repeat(e.mean(0, keepdims=True), len(d), 0) for e, d in zip(encs, decs)]
    losses = []
    for _ in range(60):
        tr.train_minibatch({enc: encs, dec: decs, y: ys})
        losses.append(tr.previous_minibatch_loss_average)
    assert losses[-1] < 0.3 * losses[0], losses[::10]


def test_refusals_say_what_is_not_supported():
    with pytest.raises(NotImplementedError, match='windowed mode'):
        AttentionModel(8, attention_span=20, attention_axis=-3)
    with pytest.raises(ValueError, match='attention_axis cannot be None'):
        AttentionModel(8, attention_span=20)
    with pytest.raises(ValueError, match='attention_span cannot be None'):
        AttentionModel(8, attention_axis=-3)
    with pytest.raises(ValueError, match='positive'):
        AttentionModel(8, attention_span=0, attention_axis=-3)
    enc = C.sequence.input_variable(3)
    dec = C.sequence.input_variable(2, sequence_axis=C.Axis('decoderAxis'))
    f = AttentionModel(4)(enc, dec)
    with pytest.raises(ValueError, match='sequences'):
        f.eval({enc: [np.ones((2, 3), np.float32)],
                dec: [np.ones((1, 2), np.float32), np.ones((2, 2), np.float32)]})


def recurrence_model(case, env, untyped):
    """CNTK 204's decoder step (make_attention_fixtures.recurrence_case): the attention
    of the LSTM's previous h over the encoder, spliced to the step's input."""
    att = AttentionModel(case['attention_dim'])
    cell = LSTM(5)
    init = {} if untyped else \
        {'initial_state': (C.Constant(np.zeros(5, np.float32)), C.Constant(np.zeros(5, np.float32)))}

    @C.Function
    def decode(encoded, history):
        @C.Function
        def lstm_with_attention(dh, dc, x):
            h_att = att(encoded, dh)
            return cell(dh, dc, C.splice(x, h_att))
        return Recurrence(lstm_with_attention, go_backwards=case['go_backwards'], **init)(history)
    f = decode(env['enc'], env['dec'])
    params = by_path(att)
    params.update(('lstm.' + p.name, p) for p in cell.parameters)
    return f, params


@pytest.mark.parametrize('untyped', [True, False], ids=['inferred_states', 'initial_states'])
@pytest.mark.parametrize('case', [c for c in CASES if 'go_backwards' in c], ids=lambda c: c['name'])
def test_inside_a_recurrence_step_equals_cntk(case, untyped):
    """AttentionModel applied to the recurrence's own previous state (the query, per
    step, inside the loop) over the whole encoder sequence of each batch item: outputs
    and gradients w.r.t. encoder, decoder input and all ten parameters as CNTK 2.7's.
    The step is untyped as in 204 (its state shapes inferred), or given zero initial
    states (the same function)."""
    dt = np.float32
    env = make_inputs(case, dt)
    f, params = recurrence_model(case, env, untyped)
    assert f.output.shape == (5,)
    assert f.output.dynamic_axes[1].name == 'decoderAxis'
    assert sorted(params) == sorted(case['params'])
    for k, v in case['params'].items():
        assert params[k].shape == tuple(v['shape']), k
        params[k].value = array(v, dt)
    check(case, f, env, params, dt)


def test_keys_from_the_loop_state_are_refused_with_the_reason():
    """Only the query may be the recurrent state: attending over the state sequence
    itself from inside its own loop is refused, naming the op."""
    dec = C.sequence.input_variable(2, sequence_axis=C.Axis('d'))
    att = AttentionModel(4)

    @C.Function
    def step(h, x):
        return C.layers.Dense(2)(C.splice(att(h, h), x))
    r = Recurrence(step, initial_state=C.Constant(np.zeros(2, np.float32)))(dec)
    with pytest.raises(RuntimeError, match='AdditiveAttention.*computed outside the loop'):
        r.eval({dec: [np.ones((3, 2), np.float32)]})
