"""The seed program exactly as spec/seed-program.md writes it, run unchanged through
``python -m rntk.compat`` on generated data: CNTK's ProgressPrinter(0) text."""

import re

import timeseries_data

GEOM = re.compile(r'^ (.{8})   (.{8})   (.{8})   (.{8})    (.{10})$')


def test_seed_program_prints_cntk_progress(tmp_path, compat):
    timeseries_data.write(str(tmp_path))
    out = compat('seed_program.py', tmp_path)
    lines = out.splitlines()
    # freq=0: the 3-line header exactly as CNTK prints it, then the learner line.
    assert lines[0] == ' average      since    average      since      examples'
    assert lines[1] == '    loss       last     metric       last              '
    assert lines[2] == ' ------------------------------------------------------'
    assert lines[3] == 'Learning rate per minibatch: 0.005'
    body = lines[4:-1]
    # geometric lines after updates 1, 3, 7, 15, ... restarting each epoch (10 epochs of
    # 12434 label samples at ~18 sequences per minibatch: updates 1, 3, ..., 511)
    assert len(body) == 90, out
    samples = []
    for l in body:
        m = GEOM.match(l)
        assert m, 'not a %8.3g progress line: %r' % l
        loss_avg, loss_last, metric_avg, metric_last = (float(m.group(i)) for i in range(1, 5))
        # criterion = (squared_error, squared_error): loss and metric columns agree
        assert loss_avg == metric_avg and loss_last == metric_last
        samples.append(int(m.group(5)))
    for e in range(10):
        s = samples[e * 9:(e + 1) * 9]
        assert s == sorted(s) and s[-1] <= 12434
    # TestConfig: one evaluation pass over the 2000-step test file (one label per sequence)
    assert re.match(r'^Finished Evaluation \[1\]: Minibatch\[1-\d+\]: metric = \d+\.\d\d% \* \d+;$', lines[-1]), lines[-1]
