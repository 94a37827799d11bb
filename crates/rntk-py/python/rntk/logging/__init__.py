"""Progress writers and graph helpers (CNTK's ``cntk.logging``). ``ProgressPrinter`` prints
CNTK 2.7's text byte for byte (through ``sys.stdout``)."""

import warnings

from .. import _rntk
from . import graph
from .graph import find_by_name, find_all_with_name, get_node_outputs, depth_first_search, plot

__all__ = ['ProgressPrinter', 'TensorBoardProgressWriter', 'ProgressWriter',
           'TrainingSummaryProgressCallback', 'log_number_of_parameters', 'find_by_name',
           'find_all_with_name', 'get_node_outputs', 'depth_first_search', 'plot', 'graph',
           'progress_print']


class ProgressWriter(object):
    """Base of progress writers."""

    _w = None

    def write(self, key, value):
        self._w.write(str(key), float(value))

    def log(self, message):
        self._w.log(str(message))


class ProgressPrinter(ProgressWriter):
    """CNTK's ``ProgressPrinter``: ``freq=0`` geometric lines, ``freq=N`` every N
    minibatches, epoch and evaluation summaries; ``log_to_file`` redirects the text."""

    def __init__(self, freq=None, first=0, tag='', log_to_file=None, rank=None, gen_heartbeat=False,
                 num_epochs=None, test_freq=None, test_first=0, metric_is_pct=True,
                 distributed_freq=None, distributed_first=0):
        self.freq, self.first, self.tag, self.log_to_file = freq, first, tag, log_to_file
        self.num_epochs, self.metric_is_pct = num_epochs, metric_is_pct
        self._w = _rntk.Writer.printer(None if freq is None else int(freq), int(first), tag or '',
                                       None if log_to_file is None else str(log_to_file),
                                       None if num_epochs is None else int(num_epochs),
                                       None if test_freq is None else int(test_freq),
                                       bool(metric_is_pct))
        self._warned = False

    def update(self, loss, minibatch_size, metric=None):
        """Deprecated manual update: one minibatch's average loss (and metric)."""
        self._w.update(float(loss), int(minibatch_size), None if metric is None else float(metric))

    def update_with_trainer(self, trainer, with_metric=False):
        """Deprecated: update from ``trainer.previous_minibatch_*``."""
        if trainer is not None and trainer.previous_minibatch_sample_count != 0:
            self.update(trainer.previous_minibatch_loss_average,
                        trainer.previous_minibatch_sample_count,
                        trainer.previous_minibatch_evaluation_average if with_metric else None)

    def epoch_summary(self, with_metric=False):
        """Deprecated: print and reset the summary of the updates since the last one."""
        self._w.epoch_summary()

    def end_progress_print(self, msg=''):
        if self.log_to_file is not None:
            with open(self.log_to_file, 'a') as f:
                f.write('CNTKCommandTrainEnd: train\n')
                if msg:
                    f.write(msg + '\n')


class TensorBoardProgressWriter(ProgressWriter):
    """Training progress as TensorBoard event files under ``log_dir``."""

    def __init__(self, freq=None, log_dir='.', rank=None, model=None):
        self.freq, self.log_dir = freq, log_dir
        self._w = _rntk.Writer.tensorboard(None if freq is None else int(freq), str(log_dir))

    def write_value(self, name, value, step):
        self._w.write('%s@%d' % (name, int(step)), float(value))

    def flush(self):
        pass

    def close(self):
        pass


class TrainingSummaryProgressCallback(ProgressWriter):
    def __init__(self, epoch_size, callback):
        raise NotImplementedError('TrainingSummaryProgressCallback: not in rntk yet')


def log_number_of_parameters(model, trace_level=0):
    """Prints ``Training N parameters in K parameter tensors.`` (CNTK's text)."""
    parameters = model.parameters
    import numpy as np
    total = sum(int(np.prod(p.shape)) for p in parameters)
    print("Training {} parameters in {} parameter tensors.".format(total, len(parameters)))
    if trace_level > 0:
        print()
        for p in parameters:
            print("\t{}".format(p.shape))


from . import progress_print  # noqa: E402
