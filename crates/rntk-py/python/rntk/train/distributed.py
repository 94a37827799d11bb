"""Data-parallel training (CNTK's ``cntk.train.distributed``).

Run the same script under ``mpirun -np N`` with the package built with MPI
(``MATURIN_PEP517_ARGS="--features mpi" pip install ./crates/rntk-py``): every worker
trains on its partition of each minibatch (``MinibatchSource.next_minibatch(...,
num_data_partitions=Communicator.num_workers(), partition_index=Communicator.rank())``,
done for you by ``Function.train`` / ``training_session``) and the distributed learner
aggregates gradients (``data_parallel_distributed_learner``, 1-bit SGD with
``num_quantization_bits=1``) or models (``block_momentum_distributed_learner``) across
the workers. Without MPI, or started without ``mpirun``, there is one worker and the
learners train exactly as the local learner, as CNTK does with one process. A build
without MPI started by ``mpirun`` with several workers refuses with a message saying
how to rebuild.
"""

from .. import _rntk
from ..learners import Learner

__all__ = ['Communicator', 'DistributedLearner', 'WorkerDescriptor',
           'data_parallel_distributed_learner', 'block_momentum_distributed_learner',
           'mpi_communicator']


class WorkerDescriptor(object):
    """A worker: ``global_rank`` and ``host_id``."""

    def __init__(self, rank):
        self._rank = rank

    @property
    def global_rank(self):
        return self._rank

    @property
    def host_id(self):
        import socket
        return socket.gethostname()

    def is_main(self):
        return self._rank == 0


class Communicator(object):
    """The workers of this run (MPI's world, or this process alone)."""

    def workers(self):
        return [WorkerDescriptor(r) for r in range(Communicator.num_workers())]

    def current_worker(self):
        return WorkerDescriptor(Communicator.rank())

    def barrier(self):
        _rntk.communicator_barrier()

    def is_main(self):
        return Communicator.rank() == 0

    @staticmethod
    def finalize():
        """Call once when all communication is done (at the end of the script)."""
        _rntk.communicator_finalize()

    @staticmethod
    def num_workers():
        return _rntk.communicator_info()[1]

    @staticmethod
    def rank():
        return _rntk.communicator_info()[0]


def mpi_communicator():
    return Communicator()


class DistributedLearner(Learner):
    """A local learner wrapped by a distributed one; used by ``Trainer`` as any learner."""

    def __init__(self, handle, local):
        super(DistributedLearner, self).__init__(handle, local.parameters)
        self._local = local

    def communicator(self):
        return Communicator()

    def update(self, gradient_values, training_sample_count, is_sweep_end=False):
        raise RuntimeError('a distributed learner updates through a Trainer (train_minibatch), '
                           'which aggregates the gradients of all workers')


def _local(learner):
    if not isinstance(learner, Learner) or isinstance(learner, DistributedLearner):
        raise TypeError('a distributed learner wraps a local learner (sgd, momentum_sgd, adam, ...)')
    return learner


def data_parallel_distributed_learner(learner, distributed_after=0, num_quantization_bits=32,
                                      use_async_buffered_parameter_update=False):
    """Gradients summed over the workers every minibatch (``num_quantization_bits=1``:
    1-bit SGD with error feedback), after ``distributed_after`` samples trained by every
    worker on the same whole minibatches."""
    if use_async_buffered_parameter_update:
        raise ValueError('use_async_buffered_parameter_update: not supported (CNTK: '
                         '"Asynchronous parameter update is not yet supported")')
    local = _local(learner)
    h = _rntk.make_data_parallel_learner(local._l, int(distributed_after),
                                         int(num_quantization_bits))
    return DistributedLearner(h, local)


def block_momentum_distributed_learner(learner, block_size, block_momentum_as_time_constant=None,
                                       use_nestrov_momentum=True,
                                       reset_sgd_momentum_after_aggregation=True,
                                       block_learning_rate=1.0, distributed_after=0,
                                       use_nesterov_momentum=None):
    """Block momentum (BMUF): every ``block_size`` samples of all workers the models are
    averaged and a block-level momentum is applied. CNTK's keyword is spelled
    ``use_nestrov_momentum``; ``use_nesterov_momentum`` is accepted too."""
    local = _local(learner)
    nesterov = use_nestrov_momentum if use_nesterov_momentum is None else use_nesterov_momentum
    tc = None if block_momentum_as_time_constant is None else float(block_momentum_as_time_constant)
    h = _rntk.make_block_momentum_learner(local._l, int(block_size), tc, bool(nesterov),
                                          bool(reset_sgd_momentum_after_aggregation),
                                          float(block_learning_rate), int(distributed_after))
    return DistributedLearner(h, local)
