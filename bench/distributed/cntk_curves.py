"""The same loss curves as curves.sh, made by the real CNTK 2.7 (the oracle for how far
CNTK's own distributed learners stay from one worker on these workloads):

    ../shared/bench/cntk/py bench/distributed/cntk_curves.py slots DATA_DIR --mode single
    mpirun -np 2 --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS=1 \\
        ../shared/bench/cntk/py bench/distributed/cntk_curves.py slots DATA_DIR --mode 1bit \\
        [--distributed-after SAMPLES]

Models, learners and minibatch sizes as ../shared/bench/cntk/bench_{lm,slots}.py (1 thread);
`--mode single` (plain learner), `dp` (data_parallel_distributed_learner, 32 bits), `1bit`
(num_quantization_bits=1: CNTK's QuantizedDataParallelDistributedLearner). Each worker reads
its partition of every global minibatch (`next_minibatch(..., num_data_partitions,
partition_index)`, whole minibatches on every worker before `distributed_after`, as CNTK's
training session does). Rank 0 prints `RESULT {json}` with the per-minibatch losses (the
trainer's, which CNTK's distributed learner aggregates over the workers) in the format
plot.py reads.
"""
from __future__ import print_function, division

import argparse
import json
import os
import sys
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('workload', choices=['lm', 'slots'])
    ap.add_argument('data', help='folder with train.ctf (synth.py lm|slots)')
    ap.add_argument('--mode', choices=['single', 'dp', '1bit'], default='single')
    ap.add_argument('--minibatches', type=int, default=100)
    ap.add_argument('--distributed-after', type=int, default=0)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--merge-prefix', default='/tmp/cntk_curves',
                    help='per-worker loss files (distributed modes), merged by rank 0')
    args = ap.parse_args()

    import cntk as C
    from cntk.layers import Sequential, Embedding, Recurrence, LSTM, Dense, default_options
    from cntk.io import CTFDeserializer, MinibatchSource, StreamDef, StreamDefs, INFINITELY_REPEAT
    from cntk.train import distributed

    C.device.try_set_default_device(C.device.cpu())
    C.cntk_py.set_fixed_random_seed(args.seed)
    C.cntk_py.set_max_num_cputhreads(1)
    rank = distributed.Communicator.rank()
    workers = distributed.Communicator.num_workers()

    path = os.path.join(args.data, 'train.ctf')
    if args.workload == 'lm':
        vocab, mb_size = 10000, 700
        streams = StreamDefs(features=StreamDef(field='features', shape=vocab, is_sparse=True),
                             labels=StreamDef(field='labels', shape=vocab, is_sparse=True))
        x = C.sequence.input_variable(vocab, is_sparse=True, name='features')
        y = C.sequence.input_variable(vocab, is_sparse=True, name='labels')
        model = Sequential([Embedding(200), Recurrence(LSTM(200)), Recurrence(LSTM(200)),
                            Dense(vocab)])
        z = model(x)
        learner = C.momentum_sgd(z.parameters, lr=C.learning_parameter_schedule_per_sample(0.02),
                                 momentum=C.momentum_schedule(0.9),
                                 gradient_clipping_threshold_per_sample=5.0,
                                 gradient_clipping_with_truncation=True)
        names = ('features', 'labels')
    else:
        mb_size = 1000
        streams = StreamDefs(query=StreamDef(field='S0', shape=943, is_sparse=True),
                             intent=StreamDef(field='S1', shape=26, is_sparse=True),
                             slot_labels=StreamDef(field='S2', shape=129, is_sparse=True))
        # dense input as bench_slots.py (CNTK's CPU Adam cannot take a sparse gradient)
        x = C.sequence.input_variable(943, name='query')
        y = C.sequence.input_variable(129, is_sparse=True, name='slot_labels')
        with default_options(initial_state=0.1):
            model = Sequential([Embedding(150), Recurrence(LSTM(300), go_backwards=False),
                                Dense(129)])
        z = model(x)
        learner = C.adam(z.parameters, lr=C.learning_parameter_schedule_per_sample(0.002),
                         momentum=0.9, gradient_clipping_threshold_per_sample=15,
                         gradient_clipping_with_truncation=True)
        names = ('query', 'slot_labels')
    ce = C.cross_entropy_with_softmax(z, y)
    err = C.classification_error(z, y)
    if args.mode != 'single':
        bits = 1 if args.mode == '1bit' else 32
        learner = distributed.data_parallel_distributed_learner(
            learner, num_quantization_bits=bits, distributed_after=args.distributed_after)
    trainer = C.Trainer(z, (ce, err), [learner])
    src = MinibatchSource(CTFDeserializer(path, streams), randomize=True,
                          max_sweeps=INFINITELY_REPEAT)
    imap = {x: getattr(src.streams, names[0]), y: getattr(src.streams, names[1])}

    # CNTK's trainer reports this worker's loss and sample count; the curve is the
    # average over all workers' samples (rank 0 merges the per-worker files)
    sums, counts, split_from = [], [], None
    t0 = time.perf_counter()
    seen = 0
    for i in range(args.minibatches):
        split = args.mode != 'single' and seen >= args.distributed_after
        if split:
            if split_from is None:
                split_from = i
            mb = src.next_minibatch(mb_size, input_map=imap, num_data_partitions=workers,
                                    partition_index=rank)
        else:
            mb = src.next_minibatch(mb_size, input_map=imap)
        trainer.train_minibatch(mb if mb else {})
        n = trainer.previous_minibatch_sample_count
        sums.append(trainer.previous_minibatch_loss_average * n if n else 0.0)
        counts.append(n)
        seen += n * (workers if split else 1)
    wall = time.perf_counter() - t0
    losses = [s / max(c, 1) for s, c in zip(sums, counts)]
    samples = seen
    if args.mode != 'single':
        part = '%s.rank%d' % (args.merge_prefix, rank)
        with open(part, 'w') as f:
            json.dump({'sums': sums, 'counts': counts}, f)
        learner.communicator().barrier()
        if rank == 0:
            parts = [json.load(open('%s.rank%d' % (args.merge_prefix, r))) for r in range(workers)]
            losses = []
            for i in range(args.minibatches):
                if split_from is not None and i >= split_from:
                    s = sum(p['sums'][i] for p in parts)
                    c = sum(p['counts'][i] for p in parts)
                else:  # the same whole minibatch on every worker
                    s, c = parts[0]['sums'][i], parts[0]['counts'][i]
                losses.append(s / max(c, 1))
            print('rank 0 / all workers label samples of the first split minibatch:',
                  counts[split_from or 0], sum(p['counts'][split_from or 0] for p in parts),
                  file=sys.stderr)
    if rank == 0:
        print('RESULT ' + json.dumps({
            'bench': args.workload, 'impl': 'cntk-2.7', 'mode': args.mode, 'workers': workers,
            'distributed_after': args.distributed_after, 'minibatches': args.minibatches,
            'minibatch_size': mb_size, 'samples': samples, 'samples_per_s': samples / wall,
            'losses': [round(float(l), 5) for l in losses],
            'loadavg_1min': float(open('/proc/loadavg').read().split()[0])}))
        sys.stdout.flush()
    if args.mode != 'single':
        distributed.Communicator.finalize()


if __name__ == '__main__':
    main()
