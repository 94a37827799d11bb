"""CNTK 2.7's RecurrenceFrom, and Recurrence / Fold / RecurrenceFrom over Python step
functions, as fixtures (fixtures/recurrence_from.json), with the
helpers and conventions of the core's tests/fixtures/cntk_layers/make_layer_fixtures.py
(parameters filled by name, d sum(out * r)/d(inputs, parameters), float32).

    /work/shared/bench/cntk/py crates/rntk-py/tests/make_recurrence_fixtures.py

Runs in about a second and writes the same bytes every time."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', '..', 'tests', 'fixtures', 'cntk_layers'))
from make_layer_fixtures import C, Inp, run_case, batch_data, seq  # noqa: E402
import numpy as np  # noqa: E402
from cntk.layers import LSTM, GRU, RNNStep, RecurrenceFrom, Recurrence, Fold, Dense  # noqa: E402


def cases():
    out = []

    def rf(step, n_states, **kw):
        def build(env):
            r = RecurrenceFrom(step(), **kw)
            states = [env[k] for k in ('h0', 'c0')[:n_states]]
            return r(*(states + [env['x']])), {'': r}
        return build

    def states(n):
        return [Inp('h0', 'batch', (2,), batch_data((2,), 4)),
                Inp('c0', 'batch', (2,), batch_data((2,), 5))][:n]

    out.append(run_case('recurrence_from_lstm', 'RecurrenceFrom(LSTM(2))(h0, c0, x)',
                        states(2) + [seq()], rf(lambda: LSTM(2), 2)))
    out.append(run_case('recurrence_from_lstm_backwards',
                        'RecurrenceFrom(LSTM(2), go_backwards=True)(h0, c0, x)',
                        states(2) + [seq()], rf(lambda: LSTM(2), 2, go_backwards=True)))
    out.append(run_case('recurrence_from_gru', 'RecurrenceFrom(GRU(2))(h0, x)',
                        states(1) + [seq()], rf(lambda: GRU(2), 1)))
    out.append(run_case('recurrence_from_rnn_step', 'RecurrenceFrom(RNNStep(2))(h0, x)',
                        states(1) + [seq()], rf(lambda: RNNStep(2), 1)))

    # Python step functions
    def py_step():
        W = C.parameter((3, 2), name='W')
        H = C.parameter((2, 2), name='H')

        @C.Function
        def step(h, x):
            return C.tanh(C.times(x, W) + C.times(h, H))
        return step

    class Holder(object):
        def __init__(self, f):
            self.parameters = f.parameters

    def py_rec(kind, **kw):
        def build(env):
            step = py_step()
            init = C.Constant(np.array([0.1, -0.2], dtype=np.float32))
            f = {'rec': Recurrence, 'fold': Fold}[kind](step, initial_state=init, **kw)(env['x'])
            return f, {'': Holder(f)}
        return build

    out.append(run_case('python_step_function', 'Recurrence(@Function step(h, x) = tanh(x W + h H), '
                        'initial_state=Constant([0.1, -0.2]))(x)', [seq()], py_rec('rec')))
    out.append(run_case('python_step_function_fold_backwards',
                        'Fold(the same step, go_backwards=True, initial_state=Constant([0.1, -0.2]))(x)',
                        [seq()], py_rec('fold', go_backwards=True)))

    def lambda_dense(env):
        d = Dense(2, activation=C.tanh)
        init = C.Constant(np.array([0.5, -0.25], dtype=np.float32))
        f = Recurrence(lambda h, x: d(C.splice(h, x)), initial_state=init)(env['x'])
        return f, {'': d}
    out.append(run_case('python_step_lambda_dense_constant_init',
                        'Recurrence(lambda h, x: Dense(2, tanh)(splice(h, x)), '
                        'initial_state=Constant([0.5, -0.25]))(x)', [seq()], lambda_dense))

    def rf_typed(env):
        step = py_step()
        f = RecurrenceFrom(step)(env['h0'], env['x'])
        return f, {'': Holder(f)}
    out.append(run_case('recurrence_from_python_step', 'RecurrenceFrom(the same step)(h0, x)',
                        states(1) + [seq()], rf_typed))
    return out


def main():
    cs = cases()
    text = json.dumps({'generator': 'make_recurrence_fixtures.py', 'cntk_version': C.__version__,
                       'dtype': 'float32', 'cases': cs}, separators=(',', ':'), allow_nan=False)
    with open(os.path.join(HERE, 'fixtures', 'recurrence_from.json'), 'w') as fh:
        fh.write(text.replace(',{"name"', ',\n{"name"') + '\n')
    print('wrote recurrence_from.json: %d cases (%d errors)' % (len(cs), sum('error' in c for c in cs)))


if __name__ == '__main__':
    main()
