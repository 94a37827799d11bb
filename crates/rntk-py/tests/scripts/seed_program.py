# The seed program exactly as shared/spec/seed-program.md writes it (the CNTK tutorial's
# RNN chapter). Reads train.ctf / test.ctf from the working directory
# (tests/timeseries_data.py writes them).
from cntk import sequence, default_options, input_variable, Function
from cntk.layers import Recurrence, LSTM, Dropout, Dense, Sequential, Fold
from cntk.losses import squared_error
from cntk.io import CTFDeserializer, MinibatchSource, INFINITELY_REPEAT, StreamDefs, StreamDef
from cntk.learners import adam
from cntk.logging import ProgressPrinter
from cntk.train import TestConfig

BATCH_SIZE = 14 * 10
EPOCH_SIZE = 12434
EPOCHS = 10

features = sequence.input_variable(1)
with default_options(initial_state=0.1):
    model = Sequential([Fold(LSTM(15)), Dense(1)])(features)
target = input_variable(1, dynamic_axes=model.dynamic_axes)

@Function
def criterion_factory(z, t):
    loss = squared_error(z, t)
    metric = squared_error(z, t)
    return loss, metric

loss = criterion_factory(model, target)
learner = adam(model.parameters, lr=0.005, momentum=0.9)

def create_datasource(filename, sweeps=INFINITELY_REPEAT):
    target_stream = StreamDef(field='target', shape=1, is_sparse=False)
    features_stream = StreamDef(field='features', shape=1, is_sparse=False)
    deserializer = CTFDeserializer(filename, StreamDefs(features=features_stream, target=target_stream))
    return MinibatchSource(deserializer, randomize=True, max_sweeps=sweeps)

train_datasource = create_datasource('train.ctf')
test_datasource = create_datasource('test.ctf', sweeps=1)

progress_writer = ProgressPrinter(0)
test_config = TestConfig(test_datasource)
input_map = {features: train_datasource.streams.features, target: train_datasource.streams.target}
history = loss.train(train_datasource, epoch_size=EPOCH_SIZE, parameter_learners=[learner],
                     model_inputs_to_streams=input_map, callbacks=[progress_writer, test_config],
                     minibatch_size=BATCH_SIZE, max_epochs=EPOCHS)
