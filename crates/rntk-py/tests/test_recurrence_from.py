"""``layers.RecurrenceFrom`` and ``layers.UnfoldFrom`` against the real CNTK 2.7.

RecurrenceFrom, and Recurrence/Fold/RecurrenceFrom over Python step functions:
fixtures/recurrence_from.json (make_recurrence_fixtures.py: LSTM/GRU/RNNStep steps with the
initial states as inputs, forwards and backwards; ``@C.Function`` steps and a lambda over a
Dense layer with Constant initial states). UnfoldFrom: the core's cases
(tests/fixtures/cntk_layers/layers.json, ``UnfoldFrom(Dense(3, tanh), ...)`` with
``length_increase`` 1, 1.5, 2 and an ``until_predicate``). Each case: the output and
d sum(out * r)/d(inputs, parameters), parameters filled by name as the fixture records.
"""

import json
import os

import numpy as np
import pytest

import rntk as C
from rntk.layers import Dense, Fold, GRU, LSTM, RNNStep, Recurrence, RecurrenceFrom, UnfoldFrom

from test_conv import ROOT, array, check, make_input

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, 'fixtures', 'recurrence_from.json')) as _f:
    RF = [c for c in json.load(_f)['cases']]
with open(os.path.join(ROOT, 'tests', 'fixtures', 'cntk_layers', 'layers.json')) as _f:
    UNFOLD = [c for c in json.load(_f)['cases'] if c['name'].startswith('unfold_from')]

STEPS = {'LSTM': LSTM, 'GRU': GRU, 'RNNStep': RNNStep}


def fill(case, params, dt):
    assert sorted(params) == sorted(case['params']), (sorted(params), sorted(case['params']))
    for k, v in case['params'].items():
        params[k].value = array(v, dt)


def python_step():
    """The fixture's step: @Function step(h, x) = tanh(x W + h H)."""
    W = C.parameter((3, 2), name='W')
    H = C.parameter((2, 2), name='H')

    @C.Function
    def step(h, x):
        return C.tanh(C.times(x, W) + C.times(h, H))
    return step


def build(case, env):
    name, x = case['name'], env['x']
    init = C.Constant(np.array([0.1, -0.2], dtype=np.float32))
    if name == 'python_step_function':
        return Recurrence(python_step(), initial_state=init)(x)
    if name == 'python_step_function_fold_backwards':
        return Fold(python_step(), go_backwards=True, initial_state=init)(x)
    if name == 'python_step_lambda_dense_constant_init':
        d = Dense(2, activation=C.tanh)
        init = C.Constant(np.array([0.5, -0.25], dtype=np.float32))
        return Recurrence(lambda h, x: d(C.splice(h, x)), initial_state=init)(x)
    if name == 'recurrence_from_python_step':
        return RecurrenceFrom(python_step())(env['h0'], x)
    step = STEPS[case['expr'].split('(')[1]]
    r = RecurrenceFrom(step(2), go_backwards='go_backwards=True' in case['expr'])
    return r(*[env[i['name']] for i in case['inputs']])


@pytest.mark.parametrize('case', RF, ids=[c['name'] for c in RF])
def test_recurrence_equals_cntk(case):
    dt = np.float32
    env = {i['name']: make_input(i, dt) for i in case['inputs']}
    f = build(case, env)
    params = {p.name: p for p in f.parameters}
    fill(case, params, dt)
    check(case, f, env, params, dt)


def test_python_step_without_state_shapes_infers_them_as_cntk():
    """CNTK infers a Python step's state shapes from what it returns; rntk does too (a
    probe run on stand-in states, which makes no parameters and takes no seeds): the
    same values as the step given its state shape up front, the same parameters."""
    x = C.sequence.input_variable(3)
    d = Dense(2, activation=C.tanh)
    C.cntk_py.set_fixed_random_seed(5)
    inferred = Recurrence(lambda h, x: d(C.splice(h, x)))(x)
    assert inferred.output.shape == (2,)
    assert [tuple(p.shape) for p in d.parameters] == [(5, 2), (2,)]
    given = Recurrence(lambda h, x: d(C.splice(h, x)),
                       initial_state=C.Constant(np.zeros(2, np.float32)))(x)
    data = [np.arange(12, dtype=np.float32).reshape(4, 3) / 10, np.ones((2, 3), np.float32)]
    for a, b in zip(inferred.eval({x: data}), given.eval({x: data})):
        np.testing.assert_array_equal(a, b)
    # the probe took no automatic seed: W drew the first one after the fixed seed
    C.cntk_py.set_fixed_random_seed(5)
    d2 = Dense(2, activation=C.tanh)
    Recurrence(lambda h, x: d2(C.splice(h, x)))(x)
    np.testing.assert_array_equal(d2.parameters[0].value, d.parameters[0].value)


def test_python_step_whose_shapes_cannot_be_inferred_says_what_to_give():
    x = C.sequence.input_variable(3)
    w = C.parameter((2, 2), init=0.5)
    with pytest.raises(ValueError, match='initial_state=C.Constant'):
        Recurrence(lambda h, x: C.times(h, w) + C.reduce_sum(x))(x)


@pytest.mark.parametrize('case', UNFOLD, ids=[c['name'] for c in UNFOLD])
def test_unfold_from_equals_cntk(case):
    dt = np.float32
    env = {i['name']: make_input(i, dt) for i in case['inputs']}
    li = float(case['expr'].split('length_increase=')[1].split(')')[0])
    until = (lambda y: C.reduce_sum(y) < 0.2) if 'until_predicate' in case['expr'] else None
    d = Dense(3, activation=C.tanh)
    f = UnfoldFrom(d, until_predicate=until, length_increase=li)(env['s'], env['x'])
    params = {p.name: p for p in f.parameters}
    fill(case, params, dt)
    check(case, f, env, params, dt)


def test_recurrence_from_refuses_a_wrong_state_count():
    x = C.sequence.input_variable(3)
    h = C.input_variable(2)
    with pytest.raises(ValueError, match='initial state'):
        RecurrenceFrom(LSTM(2))(h, x)


def test_recurrence_from_full_state_and_parameters():
    x = C.sequence.input_variable(3)
    h, c = C.input_variable(2), C.input_variable(2)
    r = RecurrenceFrom(LSTM(2), return_full_state=True)
    f = r(h, c, x)
    assert len(f.outputs) == 2
    assert sorted(p.name for p in f.parameters) == ['H', 'W', 'b']
    out = f.eval({x: [np.ones((4, 3), np.float32)], h: np.zeros((1, 2), np.float32),
                  c: np.zeros((1, 2), np.float32)})
    assert len(out) == 2


def test_python_step_with_a_convolution_and_a_nested_recurrence_infers_its_shapes():
    """The shape probe knows convolutions and a nested Recurrence(LSTM): during the
    probe they give stand-ins of their output shapes and make no parameters, so an
    untyped step using them builds the same parameters (shapes, values from the same
    automatic seeds) and the same values as the step given its state shape up front."""
    x = C.sequence.input_variable((1, 5, 5))

    def build(typed):
        conv = C.layers.Convolution((3, 3), 2, activation=C.relu)   # (2, 3, 3) per step
        inner = Recurrence(C.layers.LSTM(4))                        # over the conv features
        d = Dense(3, activation=C.tanh)

        def step(h, x):
            feats = inner(C.reshape(conv(x), (18,)))
            return d(C.splice(h, feats))
        init = C.Constant(np.zeros(3, np.float32)) if typed else 0
        return Recurrence(step, initial_state=init)(x)

    C.cntk_py.set_fixed_random_seed(7)
    inferred = build(False)
    C.cntk_py.set_fixed_random_seed(7)
    given = build(True)
    assert inferred.output.shape == given.output.shape == (3,)
    shapes = [tuple(p.shape) for p in inferred.parameters]
    assert shapes == [tuple(p.shape) for p in given.parameters]
    assert (2, 1, 3, 3) in shapes and (18, 16) in shapes and (7, 3) in shapes
    for a, b in zip(inferred.parameters, given.parameters):
        np.testing.assert_array_equal(a.value, b.value)
    rng = np.random.RandomState(0)
    data = [rng.rand(4, 1, 5, 5).astype(np.float32), rng.rand(2, 1, 5, 5).astype(np.float32)]
    for a, b in zip(inferred.eval({x: data}), given.eval({x: data})):
        np.testing.assert_array_equal(a, b)
