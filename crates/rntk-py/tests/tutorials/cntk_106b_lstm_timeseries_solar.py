# CNTK 106 Part B: Time series prediction with LSTM (IOT data: solar panel output), as a
# script. Changes from the notebook: the solar.csv download is replaced by solar-like data
# generated here (same shape: per day, readings of the cumulative output; sequences are
# prefixes of a day, predicting the day's total), pandas is not used, plots are left out,
# and the fast-mode epoch count is used.
from __future__ import print_function
import math
import numpy as np
import os
import time

import cntk as C
import cntk.tests.test_utils
cntk.tests.test_utils.set_device_from_pytest_env() # (only needed for our build system)
C.cntk_py.set_fixed_random_seed(1) # fix a random seed for CNTK components

isFast = True

# to make things reproduceable, seed random
np.random.seed(0)

def generate_solar_data(input_url, time_steps, normalize=1, val_size=0.1, test_size=0.1):
    """
    generate sequences to feed to rnn based on data frame with solar panel data
    the csv has the format: time ,solar.current, solar.total
     (solar.current is the current output in Watt, solar.total is the total production
      for the day so far in Watt hours)
    """
    rs = np.random.RandomState(7)
    days = []
    for _ in range(400):
        n = rs.randint(8, 21)
        peak = 200 + 1100 * rs.rand()
        current = np.sin(np.linspace(0.1, math.pi - 0.1, n)) * peak
        days.append(np.cumsum(current).astype(np.float32))

    result_x = {"train": [], "test": [], "val": []}
    result_y = {"train": [], "test": [], "val": []}

    # normalize the data
    n_days = len(days)
    for i, total in enumerate(days):
        total = total / normalize
        if i < n_days * (1 - val_size - test_size):
            ds = "train"
        elif i < n_days * (1 - test_size):
            ds = "val"
        else:
            ds = "test"
        # we need at least time_steps readings; the target is the day's total
        for j in range(2, min(len(total), time_steps + 1)):
            result_x[ds].append(total[0:j].reshape(-1, 1))
            result_y[ds].append(np.array([total[-1]], dtype=np.float32))

    for ds in ["train", "test", "val"]:
        result_y[ds] = np.stack(result_y[ds])
    return result_x, result_y

# there are 14 lstm cells, 1 for each possible reading we get per day
TIMESTEPS = 14

# 20000 is the maximum total output in our dataset. We normalize all values with
# this so our inputs are between 0.0 and 1.0 range.
NORMALIZE = 20000

X, Y = generate_solar_data("solar.csv", TIMESTEPS, normalize=NORMALIZE)

# process batches of 10 days
BATCH_SIZE = TIMESTEPS * 10

def next_batch(x, y, ds):
    """get the next batch for training"""

    def as_batch(data, start, count):
        return data[start:start + count]

    for i in range(0, len(x[ds]), BATCH_SIZE):
        yield as_batch(X[ds], i, BATCH_SIZE), as_batch(Y[ds], i, BATCH_SIZE)

#Define the size of the internal state
H_DIMS = 15
def create_model(x):
    """Create the model for time series prediction"""
    with C.layers.default_options(initial_state = 0.1):
        m = C.layers.Recurrence(C.layers.LSTM(H_DIMS))(x)
        m = C.sequence.last(m)
        m = C.layers.Dropout(0.2)(m)
        m = C.layers.Dense(1)(m)
        return m

# input sequences
x = C.sequence.input_variable(1)

# create the model
z = create_model(x)

# expected output (label), also the dynamic axes of the model output
# is specified as the model of the label input
l = C.input_variable(1, dynamic_axes=z.dynamic_axes, name="y")

# the learning rate
learning_rate = 0.005
lr_schedule = C.learning_parameter_schedule(learning_rate)

# loss function
loss = C.squared_error(z, l)

# use squared error to determine error for now
error = C.squared_error(z, l)

# use adam optimizer
momentum_schedule = C.momentum_schedule(0.9, minibatch_size=BATCH_SIZE)
learner = C.fsadagrad(z.parameters,
                      lr = lr_schedule,
                      momentum = momentum_schedule)
trainer = C.Trainer(z, (loss, error), [learner])

# training
loss_summary = []

start = time.time()
EPOCHS = 20 if isFast else 100
for epoch in range(0, EPOCHS):
    for x_batch, l_batch in next_batch(X, Y, "train"):
        trainer.train_minibatch({x: x_batch, l: l_batch})

    if epoch % (EPOCHS / 10) == 0:
        training_loss = trainer.previous_minibatch_loss_average
        loss_summary.append(training_loss)
        print("epoch: {}, loss: {:.4f}".format(epoch, training_loss))

# validate
def get_mse(X,Y,labeltxt):
    result = 0.0
    for x1, y1 in next_batch(X, Y, labeltxt):
        eval_error = trainer.test_minibatch({x : x1, l : y1})
        result += eval_error
    return result/len(X[labeltxt])

# Print the train and validation errors
for labeltxt in ["train", "val"]:
    print("mse for {}: {:.6f}".format(labeltxt, get_mse(X, Y, labeltxt)))

# Print the test error
labeltxt = "test"
print("mse for {}: {:.6f}".format(labeltxt, get_mse(X, Y, labeltxt)))

# predict
results = []
for x_batch, _ in next_batch(X, Y, "val"):
    pred = z.eval({x: x_batch})
    results.extend(pred[:, 0])
print("val predictions: {} values, first {}".format(len(results), np.round(np.array(results[:3]) * NORMALIZE, 1)))
