# Evaluator with ProgressPrinter(test_freq=2), then another with ProgressPrinter(
# test_freq=3, metric_is_pct=False): CNTK prints a per-window "Evaluation
# Minibatch[a-b]" line every test_freq test minibatches, then the "Finished Evaluation"
# summary; the counts restart after a summary. Seven minibatches of different sizes per
# pass. (One printer per Evaluator: CNTK keeps an Evaluator's writers in an unordered
# set, so the order of two printers' lines is its own.) Runs unchanged under the CNTK
# 2.7 oracle (make_fixtures.py) and rntk.compat.
from __future__ import print_function
import numpy as np
import cntk as C

C.cntk_py.set_fixed_random_seed(1)
x = C.input_variable(3)
y = C.input_variable(2)
z = C.layers.Dense(2)(x)
err = C.classification_error(z, y)
rng = np.random.RandomState(3)


def sweep(ev):
    for n in (4, 7, 3, 6, 5, 8, 2):
        xs = rng.randn(n, 3).astype(np.float32)
        ys = np.eye(2, dtype=np.float32)[rng.randint(0, 2, n)]
        print('minibatch of %d: %.6f' % (n, ev.test_minibatch({x: xs, y: ys})))
    ev.summarize_test_progress()


ev = C.eval.Evaluator(err, C.logging.ProgressPrinter(tag='Test', test_freq=2))
sweep(ev)
sweep(ev)
sweep(C.eval.Evaluator(err, [C.logging.ProgressPrinter(test_freq=3, metric_is_pct=False)]))
