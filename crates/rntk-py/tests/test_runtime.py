"""Runtime behaviour: Ctrl-C stops a long train between minibatches, the GIL is released
while rntk computes, panics never reach Python."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np

import rntk as C

LONG_TRAIN = r'''
import numpy as np, rntk as C, sys, signal
# A shell's background job starts with SIGINT ignored, and Python then installs no handler;
# a user's interactive Python has one, so the child sets it as Python does by default.
signal.signal(signal.SIGINT, signal.default_int_handler)
x = C.sequence.input_variable(4)
y = C.input_variable(1)
with C.default_options(initial_state=0.1):
    z = C.layers.Sequential([C.layers.Fold(C.layers.LSTM(64)), C.layers.Dense(1)])(x)
y = C.input_variable(1, dynamic_axes=z.dynamic_axes)
loss = C.squared_error(z, y)
rs = np.random.RandomState(0)
xs = [rs.rand(20, 4).astype(np.float32) for _ in range(200)]
ys = rs.rand(200, 1).astype(np.float32)
print('start', flush=True)
try:
    loss.train((xs, ys), parameter_learners=[C.sgd(z.parameters, 0.01)], minibatch_size=100,
               max_epochs=100000)
except KeyboardInterrupt as e:
    print('interrupted:', e, flush=True)
    sys.exit(3)
'''


def test_ctrl_c_stops_train_between_minibatches(tmp_path):
    p = subprocess.Popen([sys.executable, '-c', LONG_TRAIN], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    assert p.stdout.readline().strip() == 'start'
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 3, (out, err)
    assert 'between minibatches' in out


def test_gil_released_during_train():
    x = C.sequence.input_variable(4)
    with C.default_options(initial_state=0.1):
        z = C.layers.Sequential([C.layers.Fold(C.layers.LSTM(64)), C.layers.Dense(1)])(x)
    y = C.input_variable(1, dynamic_axes=z.dynamic_axes)
    loss = C.squared_error(z, y)
    rs = np.random.RandomState(0)
    xs = [rs.rand(20, 4).astype(np.float32) for _ in range(100)]
    ys = rs.rand(100, 1).astype(np.float32)
    done = []
    ticks = [0]

    def work():
        loss.train((xs, ys), parameter_learners=[C.sgd(z.parameters, 0.01)], minibatch_size=100,
                   max_epochs=30)
        done.append(True)
    t = threading.Thread(target=work)
    start = time.time()
    t.start()
    while t.is_alive():
        ticks[0] += 1
        time.sleep(0.001)
    elapsed = time.time() - start
    assert done
    # The Python thread kept running while rntk trained (with the GIL held it would not tick).
    assert ticks[0] > 0.2 * elapsed / 0.001 * 0.1, (ticks[0], elapsed)
