"""CNTK 2.7's RecurrenceFrom as fixtures (fixtures/recurrence_from.json), with the
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
from cntk.layers import LSTM, GRU, RNNStep, RecurrenceFrom  # noqa: E402


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
