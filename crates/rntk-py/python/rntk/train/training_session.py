"""``Function.train`` / ``Function.test``, ``training_session`` and its configs (CNTK's
``cntk.train.training_session``)."""

import collections
from .. import _np as np

from .. import _rntk
from ..io import MinibatchSource, MinibatchSourceFromData, StreamInformation, INFINITELY_REPEAT
from ..logging import ProgressWriter
from ..variables import Record

__all__ = ['training_session', 'TrainingSession', 'CheckpointConfig', 'CrossValidationConfig',
           'TestConfig', 'minibatch_size_schedule', 'DataUnit']

Summary = collections.namedtuple('Summary', ['loss', 'metric', 'samples'])
TestSummary = collections.namedtuple('TestSummary', ['metric', 'samples'])


class DataUnit(object):
    sample = 'sample'
    minibatch = 'minibatch'
    sweep = 'sweep'


def minibatch_size_schedule(schedule, epoch_size=1):
    """An int, a list (one per epoch) or a list of (count, size)."""
    if isinstance(schedule, int):
        return schedule
    pairs = [(1, int(s)) if np.is_scalar(s) else (int(s[0]), int(s[1])) for s in schedule]
    return _MbSchedule(pairs, int(epoch_size))


class _MbSchedule(object):
    def __init__(self, pairs, epoch_size):
        self.pairs, self.epoch_size = pairs, epoch_size

    def __getitem__(self, samples):
        end = 0
        for n, s in self.pairs:
            end += n * self.epoch_size
            if samples < end:
                return s
        return self.pairs[-1][1]


class CheckpointConfig(object):
    def __init__(self, filename, frequency=None, restore=True, preserve_all=False):
        self.filename, self.frequency, self.restore, self.preserve_all = \
            filename, frequency, restore, preserve_all


class CrossValidationConfig(object):
    def __init__(self, minibatch_source=None, frequency=None, minibatch_size=32, callback=None,
                 max_samples=None, model_inputs_to_streams=None, criterion=None):
        self.minibatch_source, self.frequency, self.minibatch_size = \
            minibatch_source, frequency, minibatch_size
        self.callback, self.max_samples = callback, max_samples
        self.model_inputs_to_streams, self.criterion = model_inputs_to_streams, criterion


class TestConfig(object):
    def __init__(self, minibatch_source=None, minibatch_size=32, model_inputs_to_streams=None,
                 criterion=None):
        self.minibatch_source, self.minibatch_size = minibatch_source, minibatch_size
        self.model_inputs_to_streams, self.criterion = model_inputs_to_streams, criterion


def _freq(f):
    if f is None:
        return None
    if isinstance(f, tuple):
        n, unit = f
        if unit != DataUnit.sample:
            raise NotImplementedError('frequency in %s units: only samples in rntk' % unit)
        return int(n)
    return int(f)


def _source_and_map(criterion, source, streams, model_inputs_to_streams, sweeps):
    """The ``_rntk.Source`` and [(Var, stream name)] for ``train``/``test``."""
    args = criterion.arguments
    if isinstance(source, (tuple, list)) and not isinstance(source, MinibatchSource):
        data = {}
        for a, d in zip(args, source):
            data[a.uid] = list(d) if isinstance(d, list) else np.asarray(d, dtype=np.float32)
        # sequence arguments take lists of sequences
        for a in args:
            if len(a.dynamic_axes) == 2 and not isinstance(data[a.uid], list):
                data[a.uid] = list(data[a.uid])
        src = MinibatchSourceFromData(data, max_samples=INFINITELY_REPEAT)
        first = source[0]
        n = len(first)
        return src, [(a._v, a.uid) for a in args], n
    if isinstance(source, (MinibatchSource, MinibatchSourceFromData)):
        if model_inputs_to_streams is None and streams is not None:
            model_inputs_to_streams = dict(zip(args, streams))
        if model_inputs_to_streams is None:
            raise ValueError('model_inputs_to_streams (or streams) must map the criterion\'s '
                             'inputs to the source\'s streams')
        pairs = []
        for k, s in model_inputs_to_streams.items():
            kv = k._v if hasattr(k, '_v') else k
            pairs.append((kv, s.name if isinstance(s, StreamInformation) else str(s)))
        return source, pairs, None
    raise TypeError('minibatch_source must be a MinibatchSource or a tuple of numpy arrays')


def _outputs(criterion):
    outs = criterion._f.outputs()
    return outs[0], (outs[1] if len(outs) > 1 else None)


def _train(criterion, minibatch_source, minibatch_size, streams, model_inputs_to_streams,
           parameter_learners, callbacks, progress_frequency, max_epochs, epoch_size, max_samples):
    if minibatch_size is None:
        raise ValueError('minibatch_size must not be None.')
    src, pairs, n = _source_and_map(criterion, minibatch_source, streams, model_inputs_to_streams, None)
    if n is not None and epoch_size is None:
        epoch_size = n
    if max_samples is None and max_epochs is None:
        max_epochs = 1
    writers, test, cv, ck = [], None, None, None
    for c in callbacks or []:
        if isinstance(c, ProgressWriter):
            writers.append(c._w)
        elif isinstance(c, TestConfig):
            test = c
        elif isinstance(c, CrossValidationConfig):
            cv = c
        elif isinstance(c, CheckpointConfig):
            ck = c
    loss, metric = _outputs(criterion)

    def cfg_map(c):
        if c.model_inputs_to_streams is None:
            return None
        return [(k._v, s.name if isinstance(s, StreamInformation) else str(s))
                for k, s in c.model_inputs_to_streams.items()]
    t = None
    if test is not None:
        t = (test.minibatch_source._s, int(test.minibatch_size), cfg_map(test))
    v = None
    if cv is not None:
        v = (cv.minibatch_source._s, _freq(cv.frequency), int(cv.minibatch_size),
             None if cv.max_samples is None else int(cv.max_samples), cv.callback, cfg_map(cv))
    k = None
    if ck is not None:
        k = (str(ck.filename), _freq(ck.frequency), bool(ck.restore), bool(ck.preserve_all))
    mb = minibatch_size
    if isinstance(mb, _MbSchedule):
        mb = (mb.pairs, mb.epoch_size)
    else:
        mb = int(mb)
    learners = parameter_learners if isinstance(parameter_learners, (list, tuple)) else [parameter_learners]
    h = _rntk.train(loss, metric, src._s, pairs, [l._l for l in learners], mb,
                    None if epoch_size is None else int(epoch_size),
                    None if max_epochs is None else int(max_epochs),
                    None if max_samples is None else int(max_samples),
                    None if progress_frequency is None else _freq(progress_frequency), writers, t, v, k)
    ts = h['test_summary']
    return Record(updates=[Summary(*r) for r in h['updates']],
                  epoch_summaries=[Summary(*r) for r in h['epoch_summaries']],
                  test_summary=None if ts is None else TestSummary(*ts))


def _test(criterion, minibatch_source, minibatch_size, streams, model_inputs_to_streams, callbacks):
    src, pairs, _ = _source_and_map(criterion, minibatch_source, streams, model_inputs_to_streams, 1)
    writers = [c._w for c in (callbacks or []) if isinstance(c, ProgressWriter)]
    loss, metric = _outputs(criterion)
    m, n = _rntk.test(loss, metric, src._s, pairs, int(minibatch_size), writers)
    return TestSummary(m, n)


class TrainingSession(object):
    """CNTK's ``TrainingSession``: a loop of ``trainer.train_minibatch`` over a source."""

    def __init__(self, trainer, mb_source, mb_size, model_inputs_to_streams, progress_frequency,
                 max_samples, checkpoint_config, cv_config, test_config):
        self.trainer, self.mb_source, self.mb_size = trainer, mb_source, mb_size
        self.input_map = model_inputs_to_streams
        self.progress_frequency = _freq(progress_frequency)
        self.max_samples = max_samples
        self.checkpoint_config, self.cv_config, self.test_config = \
            checkpoint_config, cv_config, test_config

    def _size(self, seen):
        s = self.mb_size
        return s[seen] if isinstance(s, _MbSchedule) else int(s)

    def _evaluate(self, cfg, max_samples=None):
        t = self.trainer
        m = cfg.model_inputs_to_streams or self.input_map
        src = cfg.minibatch_source
        n, mbs, err = 0, 0, 0.0
        while max_samples is None or n < max_samples:
            mb = src.next_minibatch(int(cfg.minibatch_size), input_map=m)
            if not mb:
                break
            avg = t.test_minibatch(mb)
            k = next(iter(mb.values())).num_samples
            err += avg * k
            n += k
            mbs += 1
            if any(v.end_of_sweep for v in mb.values()):
                break
        t.summarize_test_progress()
        return err / max(n, 1), n, mbs

    def train(self, device=None):
        t = self.trainer
        max_samples = self.max_samples
        pf = self.progress_frequency
        cvf = None if self.cv_config is None else _freq(self.cv_config.frequency)
        ckf = None if self.checkpoint_config is None else _freq(self.checkpoint_config.frequency)
        next_p = pf if pf else None
        next_cv = cvf if cvf else None
        next_ck = ckf if ckf else None
        cv_index, ck_index, summarized = 0, 0, True
        while True:
            seen = t.total_number_of_samples_seen
            if max_samples is not None and seen >= max_samples:
                break
            n = self._size(seen)
            if max_samples is not None:
                n = min(n, max_samples - seen)
            mb = self.mb_source.next_minibatch(max(int(n), 1), input_map=self.input_map)
            if not mb:
                break
            t.train_minibatch(mb)
            summarized = False
            seen = t.total_number_of_samples_seen
            if next_p is not None and seen >= next_p:
                t.summarize_training_progress()
                summarized = True
                while next_p <= seen:
                    next_p += pf
            if next_cv is not None and seen >= next_cv:
                while next_cv <= seen:
                    next_cv += cvf
                if not self._cv(cv_index):
                    break
                cv_index += 1
            if next_ck is not None and seen >= next_ck:
                while next_ck <= seen:
                    next_ck += ckf
                self._checkpoint(ck_index)
                ck_index += 1
        if not summarized:
            t.summarize_training_progress()
        if self.cv_config is not None and cvf is None:
            self._cv(cv_index)
        if self.checkpoint_config is not None and ckf is None:
            self._checkpoint(ck_index)
        if self.test_config is not None:
            self._evaluate(self.test_config)

    def _cv(self, index):
        c = self.cv_config
        err, n, mbs = self._evaluate(c, c.max_samples)
        if c.callback is not None:
            r = c.callback(index, err, n, mbs)
            return r is None or bool(r)
        return True

    def _checkpoint(self, index):
        c = self.checkpoint_config
        self.trainer.save_checkpoint(c.filename)
        if c.preserve_all:
            self.trainer.save_checkpoint('%s%d' % (c.filename, index))


def training_session(trainer, mb_source, mb_size, model_inputs_to_streams, progress_frequency=None,
                     max_samples=None, checkpoint_config=None, cv_config=None, test_config=None):
    """A training session; run it with ``.train()``."""
    return TrainingSession(trainer, mb_source, mb_size, model_inputs_to_streams, progress_frequency,
                           max_samples, checkpoint_config, cv_config, test_config)
