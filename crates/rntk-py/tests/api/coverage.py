"""API coverage against spec python-api.md (a copy of /work/shared/spec/python-api.md is
kept beside this file): every table entry used by tutorials 101-106, 201-206 (core or
not) is looked up under rntk. Prints the counts; ``--list`` prints every entry's state.

States: ``ok`` (resolves to an implementation), ``not-yet`` (resolves, raises
NotImplementedError with the reason: convolution/pooling = issue 15, image/HTK readers,
...), ``missing`` (does not resolve)."""

import inspect
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TUTORIALS = re.compile(r'\b(10[1-6][AB]?|20[1-6][ABC]?)\b')
ROW = re.compile(r'^\| `([^`]+)` \| (\w+\*?) \| \d+ \| \d+ \| \d+ \| \d+ \| ([^|]*) \|')
SEED = ['cntk.sequence.input_variable', 'cntk.input_variable', 'cntk.layers.default_options',
        'cntk.layers.Recurrence', 'cntk.layers.LSTM', 'cntk.sequence.last', 'cntk.layers.Dropout',
        'cntk.layers.Dense', 'cntk.squared_error', 'cntk.learning_parameter_schedule',
        'cntk.learners.momentum_schedule', 'cntk.fsadagrad', 'cntk.Trainer',
        'cntk.Trainer.train_minibatch', 'cntk.Trainer.test_minibatch',
        'cntk.Trainer.previous_minibatch_loss_average', 'cntk.Function.eval',
        'cntk.Function.parameters', 'cntk.Function.dynamic_axes', 'cntk.Function.__call__',
        'cntk.tests.test_utils.set_device_from_pytest_env', 'cntk.layers.Fold',
        'cntk.layers.Sequential', 'cntk.adam', 'cntk.io.CTFDeserializer', 'cntk.io.MinibatchSource',
        'cntk.io.StreamDef', 'cntk.io.StreamDefs', 'cntk.io.INFINITELY_REPEAT',
        'cntk.logging.ProgressPrinter', 'cntk.train.TestConfig', 'cntk.Function.train',
        'cntk.losses.squared_error', 'cntk.Function']
# Member rows whose receiver is not the class named in the path.
RECEIVER = {'cntk.Parameter.value': 'rntk.Parameter', 'cntk.Variable.owner': 'rntk.Variable'}


def entries():
    out = {}
    with open(os.path.join(HERE, 'python-api.md')) as f:
        for line in f:
            m = ROW.match(line)
            if not m:
                continue
            api, kind, tuts = m.group(1), m.group(2), m.group(3)
            if TUTORIALS.search(tuts):
                out[api] = kind
    for s in SEED:
        out.setdefault(s, 'seed')
    return out


def resolve(api):
    import rntk
    if api.startswith('operators.'):
        op = api.split('.', 1)[1].split(' ')[0]
        return getattr(rntk.Variable, op, None) or getattr(rntk.Function, op, None)
    if '(named node lookup' in api:
        return rntk.Function.__getattr__
    import importlib
    path = api.split(' ')[0].replace('cntk', 'rntk', 1)
    parts = path.split('.')
    obj = rntk
    for i, p in enumerate(parts[1:], 1):
        nxt = getattr(obj, p, None)
        if nxt is None and inspect.ismodule(obj):
            try:
                nxt = importlib.import_module('.'.join(parts[:i + 1]))
            except ImportError:
                nxt = None
        if nxt is None and inspect.isclass(obj):
            # attributes a constructor sets on the instance (e.g. MinibatchSource.streams)
            src = ''.join(inspect.getsource(c) for c in obj.__mro__ if c.__module__.startswith('rntk'))
            if re.search(r'self\.%s\s*=' % re.escape(p), src):
                nxt = p
        if nxt is None:
            return None
        obj = nxt
    return obj


def state(api):
    obj = resolve(api)
    if obj is None:
        return 'missing'
    if callable(obj) and not inspect.isclass(obj):
        try:
            src = inspect.getsource(obj)
        except (TypeError, OSError):
            src = ''
        body = src.split(':', 1)[-1]
        if ('raise NotImplementedError' in body or '_issue15(' in body) and body.count('\n') < 8:
            return 'not-yet'
        if getattr(obj, '__name__', '') == 'ctor' or ('_issue15' in src and 'def ctor' in src):
            return 'not-yet'
    if inspect.isclass(obj) and '__init__' in obj.__dict__:
        try:
            body = inspect.getsource(obj.__init__).split(':', 1)[-1].strip()
        except (TypeError, OSError):
            body = ''
        if body.startswith('raise NotImplementedError'):
            return 'not-yet'
    return 'ok'


def main(argv):
    es = entries()
    states = {api: state(api) for api in es}
    if '--list' in argv:
        for api in sorted(states):
            print('%-70s %s' % (api, states[api]))
    n = len(states)
    ok = sum(1 for s in states.values() if s == 'ok')
    ny = sum(1 for s in states.values() if s == 'not-yet')
    miss = sorted(a for a, s in states.items() if s == 'missing')
    print('spec entries for tutorials 101-106, 201-206 and the seed program: %d' % n)
    print('implemented: %d, resolve but raise NotImplementedError: %d, missing: %d' % (ok, ny, len(miss)))
    if miss:
        print('missing:', ', '.join(miss))
    return states


if __name__ == '__main__':
    main(sys.argv[1:])
