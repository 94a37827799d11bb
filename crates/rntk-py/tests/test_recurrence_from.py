"""``layers.RecurrenceFrom`` and ``layers.UnfoldFrom`` against the real CNTK 2.7.

RecurrenceFrom: fixtures/recurrence_from.json (make_recurrence_fixtures.py, LSTM/GRU/RNNStep
steps, initial states as inputs, forwards and backwards). UnfoldFrom: the core's cases
(tests/fixtures/cntk_layers/layers.json, ``UnfoldFrom(Dense(3, tanh), ...)`` with
``length_increase`` 1, 1.5, 2 and an ``until_predicate``). Each case: the output and
d sum(out * r)/d(inputs, parameters), parameters filled by name as the fixture records.
"""

import json
import os

import numpy as np
import pytest

import rntk as C
from rntk.layers import Dense, GRU, LSTM, RNNStep, RecurrenceFrom, UnfoldFrom

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


@pytest.mark.parametrize('case', RF, ids=[c['name'] for c in RF])
def test_recurrence_from_equals_cntk(case):
    dt = np.float32
    env = {i['name']: make_input(i, dt) for i in case['inputs']}
    step = STEPS[case['expr'].split('(')[1]]
    r = RecurrenceFrom(step(2), go_backwards='go_backwards=True' in case['expr'])
    f = r(*[env[i['name']] for i in case['inputs']])
    params = {p.name: p for p in f.parameters}
    fill(case, params, dt)
    check(case, f, env, params, dt)


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
