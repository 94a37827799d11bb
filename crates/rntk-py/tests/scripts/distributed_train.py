"""A CNTK script for data-parallel training (run unchanged with ``python -m rntk.compat``,
under ``mpirun -np N`` or alone):

    python -m rntk.compat distributed_train.py MODE OUT_DIR

MODE: dp (32-bit data parallel), 1bit, bm (block momentum; bm-noreset without the reset of
the local momentum after each block). Each worker trains a small
classifier on its share (rows ``rank::workers``) of 20 minibatches of 16 samples, and a
reference model with the plain local learner on the whole minibatches (no collectives);
it writes ``OUT_DIR/rank<R>.json``: rank, workers, the trainer's sample counts and
losses, both models' parameters.
"""
import json
import os
import sys

import numpy as np
import cntk as C
from cntk.train import distributed


def model():
    C.cntk_py.set_fixed_random_seed(1)
    x = C.input_variable(4)
    y = C.input_variable(3)
    z = C.layers.Sequential([C.layers.Dense(8, activation=C.tanh), C.layers.Dense(3)])(x)
    return x, y, z, C.cross_entropy_with_softmax(z, y), C.classification_error(z, y)


def local_learner(z):
    return C.momentum_sgd(z.parameters, C.learning_parameter_schedule(0.2), C.momentum_schedule(0.9))


def main():
    mode, out = sys.argv[1], sys.argv[2]
    rank = distributed.Communicator.rank()
    workers = distributed.Communicator.num_workers()
    rng = np.random.RandomState(0)
    xs = rng.randn(20 * 16, 4).astype(np.float32)
    ys = np.eye(3, dtype=np.float32)[(xs[:, :3] + 0.3 * xs[:, 3:]).argmax(1)]

    x, y, z, ce, err = model()
    if mode == 'dp':
        learner = distributed.data_parallel_distributed_learner(local_learner(z))
    elif mode == '1bit':
        learner = distributed.data_parallel_distributed_learner(local_learner(z),
                                                                num_quantization_bits=1)
    else:  # bm, or bm-noreset: the local momentum kept across blocks
        learner = distributed.block_momentum_distributed_learner(
            local_learner(z), block_size=64, reset_sgd_momentum_after_aggregation=mode == 'bm')
    trainer = C.Trainer(z, (ce, err), [learner])
    rx, ry, rz, rce, rerr = model()
    reference = C.Trainer(rz, (rce, rerr), [local_learner(rz)])

    counts, losses = [], []
    for i in range(20):
        bx, by = xs[16 * i:16 * (i + 1)], ys[16 * i:16 * (i + 1)]
        trainer.train_minibatch({x: bx[rank::workers], y: by[rank::workers]})
        counts.append(trainer.previous_minibatch_sample_count)
        losses.append(trainer.previous_minibatch_loss_average)
        reference.train_minibatch({rx: bx, ry: by})
    result = {
        'rank': rank, 'workers': workers, 'counts': counts, 'losses': losses,
        'params': [np.asarray(p.value, dtype=np.float64).ravel().tolist() for p in z.parameters],
        'reference': [np.asarray(p.value, dtype=np.float64).ravel().tolist() for p in rz.parameters],
    }
    with open(os.path.join(out, 'rank%d.json' % rank), 'w') as f:
        json.dump(result, f)
    distributed.Communicator.finalize()


if __name__ == '__main__':
    main()
