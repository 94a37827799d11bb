"""``cntk.train.distributed`` (issue 17): one worker trains exactly as the local learner
(CNTK with one process), and with the package built with MPI (cargo feature ``mpi``) two
workers under ``mpirun -np 2`` train 2 x m/2 to the parameters of 1 x m (float32
rounding), the trainer reporting all workers' sample counts. The MPI test is skipped
when the package has no MPI or mpirun is missing."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import rntk as C
from rntk import _rntk
from rntk.train import distributed

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, 'scripts', 'distributed_train.py')


def run_script(mode, out, launcher=()):
    env = dict(os.environ, RAYON_NUM_THREADS='1')
    p = subprocess.run(list(launcher) + [sys.executable, '-m', 'rntk.compat', SCRIPT, mode, str(out)],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=300)
    assert p.returncode == 0, '%s failed (%d):\n%s\n%s' % (mode, p.returncode, p.stdout[-3000:],
                                                           p.stderr[-3000:])
    return [json.load(open(os.path.join(str(out), f))) for f in sorted(os.listdir(str(out)))]


def max_diff(a, b):
    return max(float(np.max(np.abs(np.array(x) - np.array(y)))) for x, y in zip(a, b))


def test_one_process_is_one_worker():
    assert distributed.Communicator.rank() == 0
    assert distributed.Communicator.num_workers() == 1
    assert C.Communicator.num_workers() == 1 and C.distributed.Communicator.rank() == 0
    c = distributed.Communicator()
    assert c.is_main() and [w.global_rank for w in c.workers()] == [0]
    c.barrier()


@pytest.mark.parametrize('mode', ['dp', '1bit', 'bm-noreset'])
def test_one_worker_trains_as_the_local_learner(tmp_path, mode):
    (r,) = run_script(mode, tmp_path)
    assert (r['rank'], r['workers']) == (0, 1)
    assert r['counts'] == [16] * 20
    # data parallel (32 or 1 bit) with one worker is the local learner itself, as in
    # CNTK; block momentum with one worker has block momentum 0 and block learning
    # rate 1: the same model up to the rounding of w_prev - (w_prev - w), when the local
    # momentum is not reset after each block (CNTK's default resets it)
    tol = 1e-6 if mode.startswith('bm') else 0.0
    assert max_diff(r['params'], r['reference']) <= tol


def test_block_momentum_resets_the_local_momentum(tmp_path):
    (r,) = run_script('bm', tmp_path)
    assert max_diff(r['params'], r['reference']) > 1e-3


def test_distributed_learner_arguments():
    z = C.layers.Dense(2)(C.input_variable(3))
    local = C.sgd(z.parameters, C.learning_parameter_schedule(0.1))
    with pytest.raises(ValueError, match='num_quantization_bits'):
        distributed.data_parallel_distributed_learner(local, num_quantization_bits=8)
    with pytest.raises(ValueError, match='block_size'):
        distributed.block_momentum_distributed_learner(local, block_size=0)
    d = distributed.data_parallel_distributed_learner(local)
    with pytest.raises(TypeError, match='local learner'):
        distributed.data_parallel_distributed_learner(d)
    assert d.learning_rate() == pytest.approx(0.1)
    assert len(d.parameters) == len(z.parameters)


def mpirun():
    exe = shutil.which('mpirun')
    if exe is None or not _rntk.mpi_enabled():
        return None
    cmd = [exe, '-np', '2', '--oversubscribe']
    if os.geteuid() == 0:
        cmd.append('--allow-run-as-root')
    return cmd


@pytest.mark.skipif(mpirun() is None,
                    reason='needs the package built with MPI (MATURIN_PEP517_ARGS="--features mpi") and mpirun')
@pytest.mark.parametrize('mode', ['dp', '1bit', 'bm'])
def test_two_workers_under_mpirun(tmp_path, mode):
    r0, r1 = run_script(mode, tmp_path, mpirun())
    assert (r0['rank'], r0['workers'], r1['rank'], r1['workers']) == (0, 2, 1, 2)
    # every worker holds the same model (rank 0's start, the same summed updates)
    assert max_diff(r0['params'], r1['params']) == 0.0
    if mode == 'dp':
        # the trainer reports all workers' totals: 16 samples, one loss per minibatch
        assert r0['counts'] == [16] * 20 and r1['counts'] == [16] * 20
        assert r0['losses'] == r1['losses']
        # 2 workers x 8 samples = 1 worker x 16: the same gradient sums, summed in
        # another order (float32 rounding)
        assert max_diff(r0['params'], r0['reference']) < 1e-5
    else:
        # 1-bit SGD and block momentum train a different (nearby) model
        assert 0.0 < max_diff(r0['params'], r0['reference']) < 1.0
