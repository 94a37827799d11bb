"""Data-parallel training (CNTK's ``cntk.train.distributed``): one worker in rntk's Python
package for now (MPI is issue 17)."""

__all__ = ['Communicator', 'data_parallel_distributed_learner', 'block_momentum_distributed_learner']


class Communicator(object):
    @staticmethod
    def rank():
        return 0

    @staticmethod
    def num_workers():
        return 1

    @staticmethod
    def finalize():
        pass


def data_parallel_distributed_learner(learner, distributed_after=0, num_quantization_bits=32):
    """With one worker the learner itself."""
    return learner


def block_momentum_distributed_learner(learner, block_size, **kwargs):
    return learner
