"""Python overhead of rntk's package on the seed model (BENCHMARKS.md, "Python").

  python crates/rntk-py/bench/python_overhead.py [--reps 7] [--inner 300]

* train_minibatch: one minibatch of the seed program (18 sequences, 3..14 steps, LSTM(15),
  Dense(1), adam). ``rust`` = the same update looped in Rust (``time_train_minibatch``:
  feeds converted once); ``python/value`` = ``trainer.train_minibatch({...})`` from
  Python with the data already a Value (a reader's minibatch); ``python/numpy`` = with
  numpy arrays (the data converted on each call). Python overhead = python/value - rust.
* eval of one sequence (10 steps): ``model.eval({features: [seq]})`` from Python, and the
  same evaluation looped in Rust (``time_eval``).
Medians over --reps repetitions of --inner calls, in microseconds of this thread's CPU
time per call (time.thread_time: the shared machine's other load is not counted)."""

import argparse
import statistics
import time

import numpy as np

import rntk as C


# CPU time of this thread: the machine is shared, and wall-clock time would charge other
# processes' work to whichever side ran while they did. rntk runs these small models on
# the calling thread (no pool work), so thread time covers the whole call.
clock = time.thread_time


def per_call(fn, inner, reps):
    for _ in range(max(20, inner // 10)):
        fn()
    out = []
    for _ in range(reps):
        t = clock()
        for _ in range(inner):
            fn()
        out.append((clock() - t) / inner * 1e6)
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--reps', type=int, default=7)
    ap.add_argument('--inner', type=int, default=300)
    a = ap.parse_args()
    rs = np.random.RandomState(0)
    features = C.sequence.input_variable(1)
    with C.default_options(initial_state=0.1):
        model = C.layers.Sequential([C.layers.Fold(C.layers.LSTM(15)), C.layers.Dense(1)])(features)
    target = C.input_variable(1, dynamic_axes=model.dynamic_axes)
    loss = C.squared_error(model, target)
    learner = C.adam(model.parameters, lr=0.005, momentum=0.9)
    trainer = C.Trainer(model, (loss, loss), [learner])
    seqs = [rs.rand(rs.randint(3, 15), 1).astype(np.float32) for _ in range(18)]
    ys = rs.rand(18, 1).astype(np.float32)
    feeds_np = {features: seqs, target: ys}
    feeds_v = {features: C.core.Value.create(features, seqs), target: C.core.Value.create(target, ys)}

    # Interleaved rounds: each round times the three forms back to back, so that the
    # machine's load changes hit all three alike; medians over rounds.
    rounds = []
    for _ in range(a.reps):
        r = per_call(lambda: trainer._t.time_train_minibatch(feeds_v, a.inner), 1, 1) / a.inner
        pv = per_call(lambda: trainer.train_minibatch(feeds_v), a.inner, 1)
        pn = per_call(lambda: trainer.train_minibatch(feeds_np), a.inner, 1)
        rounds.append((r, pv, pn))
    rust, pv, pn = (statistics.median(x[i] for x in rounds) for i in range(3))
    over = statistics.median(x[1] - x[0] for x in rounds)
    conv = statistics.median(x[2] - x[1] for x in rounds)
    print('train_minibatch (seed model, 18 sequences): rust %.1f us, python/value %.1f us, '
          'python/numpy %.1f us -> Python overhead %.2f us per call, numpy conversion %.2f us '
          '(medians over %d interleaved rounds)' % (rust, pv, pn, over, conv, a.reps))

    one = [rs.rand(10, 1).astype(np.float32)]
    ev_feeds = {features: one}
    model.eval(ev_feeds)
    ev_v = {features: C.core.Value.create(features, one)}
    ev = []
    for _ in range(a.reps):
        re_ = per_call(lambda: model._f.time_eval(ev_v, a.inner * 10), 1, 1) / (a.inner * 10)
        pe = per_call(lambda: model.eval(ev_feeds), a.inner * 10, 1)
        ev.append((re_, pe))
    rust_e, py_e = (statistics.median(x[i] for x in ev) for i in range(2))
    wall = []
    for _ in range(a.reps):
        t = time.perf_counter()
        for _ in range(a.inner * 10):
            model.eval(ev_feeds)
        wall.append((time.perf_counter() - t) / (a.inner * 10) * 1e6)
    print('eval of one sequence (10 steps): rust %.2f us, python %.2f us (overhead %.2f us); '
          'wall clock %.2f us (the shared machine\'s load included)'
          % (rust_e, py_e, py_e - rust_e, statistics.median(wall)))
    print('RESULT', dict(train_rust_us=round(rust, 2), train_python_value_us=round(pv, 2),
                         train_python_numpy_us=round(pn, 2), train_overhead_us=round(over, 2), train_numpy_conversion_us=round(conv, 2),
                         eval_rust_us=round(rust_e, 2), eval_python_us=round(py_e, 2), eval_python_wall_us=round(statistics.median(wall), 2)))


if __name__ == '__main__':
    main()
