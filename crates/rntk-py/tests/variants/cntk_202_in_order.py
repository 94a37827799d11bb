# Variant of tutorials/cntk_202_language_understanding.py (one edit): the training reader in
# file order (randomize=False), since a randomized reader's order is each toolkit's own
# (rntk's randomizer is not CNTK's); with the same order and set_fixed_random_seed(1), the
# training and evaluation numbers can be compared with CNTK's digit by digit.
# CNTK 202: Language Understanding with Recurrent Networks (slot tagging on ATIS), as a
# script. Changes from the notebook: the ATIS download is replaced by ATIS-shaped CTF files
# generated here (same streams S0 query / S1 intent / S2 slot labels, same dimensions), and
# one epoch of the fast mode is trained (the notebook's fast mode as well).
from __future__ import print_function
import math
import numpy as np
import os

import cntk as C
import cntk.tests.test_utils
cntk.tests.test_utils.set_device_from_pytest_env() # (only needed for our build system)
C.cntk_py.set_fixed_random_seed(1) # fix a random seed for CNTK components

isFast = True

# number of words in vocab, slot labels, and intent labels
vocab_size = 943 ; num_labels = 129 ; num_intents = 26

# model dimensions
emb_dim    = 150
hidden_dim = 300


def make_atis_like(path, n_sentences, seed):
    """ATIS-shaped data: each word's slot label depends on the word and its predecessor."""
    if os.path.exists(path):
        return
    rs = np.random.RandomState(seed)
    with open(path, 'w') as f:
        for s in range(n_sentences):
            n = rs.randint(4, 20)
            words = rs.randint(1, vocab_size, size=n)
            prev = 0
            for t, w in enumerate(words):
                lab = (w * 7 + prev) % num_labels if rs.rand() < 0.9 else rs.randint(num_labels)
                line = '%d\t|S0 %d:1' % (s, w)
                if t == 0:
                    line += '\t|S1 %d:1' % (w % num_intents)
                line += '\t|S2 %d:1\n' % lab
                f.write(line)
                prev = w % 3

make_atis_like('atis.train.ctf', 1800, 1)
make_atis_like('atis.test.ctf', 400, 2)

# Create the containers for input feature (x) and the label (y)
x = C.sequence.input_variable(vocab_size)
y = C.sequence.input_variable(num_labels)

def create_model():
    with C.layers.default_options(initial_state=0.1):
        return C.layers.Sequential([
            C.layers.Embedding(emb_dim, name='embed'),
            C.layers.Recurrence(C.layers.LSTM(hidden_dim), go_backwards=False),
            C.layers.Dense(num_labels, name='classify')
        ])

# peek
z = create_model()
print(z(x).embed.E.shape)
print(z.classify.b.value[:4])

def create_reader(path, is_training):
    return C.io.MinibatchSource(C.io.CTFDeserializer(path, C.io.StreamDefs(
         query         = C.io.StreamDef(field='S0', shape=vocab_size,  is_sparse=True),
         intent_labels = C.io.StreamDef(field='S1', shape=num_intents, is_sparse=True),
         slot_labels   = C.io.StreamDef(field='S2', shape=num_labels,  is_sparse=True)
     )), randomize=False, max_sweeps = C.io.INFINITELY_REPEAT if is_training else 1)

def create_criterion_function_preferred(model, labels):
    ce   = C.cross_entropy_with_softmax(model, labels)
    errs = C.classification_error      (model, labels)
    return ce, errs # (model, labels) -> (loss, error metric)

def train(reader, model_func, max_epochs=10):

    # Instantiate the model function; x is the input (feature) variable
    model = model_func(x)

    # Instantiate the loss and error function
    loss, label_error = create_criterion_function_preferred(model, y)

    # training config
    epoch_size = 18000        # 18000 samples is half the dataset size
    minibatch_size = 70

    # LR schedule over epochs
    # In CNTK, an epoch is how often we get out of the minibatch loop to
    # do other stuff (e.g. checkpointing, adjust learning rate, etc.)
    lr_per_sample = [3e-4]*4+[1.5e-4]
    lr_per_minibatch = [lr * minibatch_size for lr in lr_per_sample]
    lr_schedule = C.learning_parameter_schedule(lr_per_minibatch, epoch_size=epoch_size)

    # Momentum schedule
    momentums = C.momentum_schedule(0.9048374180359595, minibatch_size=minibatch_size)

    # We use a the Adam optimizer which is known to work well on this dataset
    # Feel free to try other optimizers from
    # https://www.cntk.ai/pythondocs/cntk.learner.html#module-cntk.learner
    learner = C.adam(parameters=model.parameters,
                     lr=lr_schedule,
                     momentum=momentums,
                     gradient_clipping_threshold_per_sample=15,
                     gradient_clipping_with_truncation=True)

    # Setup the progress updater
    progress_printer = C.logging.ProgressPrinter(tag='Training', num_epochs=max_epochs)

    # Uncomment below for more detailed logging
    #progress_printer = ProgressPrinter(freq=100, first=10, tag='Training', num_epochs=max_epochs)

    # Instantiate the trainer
    trainer = C.Trainer(model, (loss, label_error), learner, progress_printer)

    # process minibatches and perform model training
    C.logging.log_number_of_parameters(model)

    t = 0
    for epoch in range(max_epochs):         # loop over epochs
        epoch_end = (epoch+1) * epoch_size
        while t < epoch_end:                # loop over minibatches on the epoch
            data = reader.next_minibatch(minibatch_size, input_map={  # fetch minibatch
                x: reader.streams.query,
                y: reader.streams.slot_labels
            })
            trainer.train_minibatch(data)               # update model with it
            t += data[y].num_samples                    # samples so far
        trainer.summarize_training_progress()
    return model

def evaluate(reader, model_func):

    # Instantiate the model function; x is the input (feature) variable
    model = model_func(x)

    # Create the loss and error functions
    loss, label_error = create_criterion_function_preferred(model, y)

    # process minibatches and perform evaluation
    progress_printer = C.logging.ProgressPrinter(tag='Evaluation', num_epochs=0)

    while True:
        minibatch_size = 500
        data = reader.next_minibatch(minibatch_size, input_map={  # fetch minibatch
            x: reader.streams.query,
            y: reader.streams.slot_labels
        })
        if not data:                                 # until we hit the end
            break

        evaluator = C.eval.Evaluator(loss, progress_printer)
        evaluator.test_minibatch(data)

    evaluator.summarize_test_progress()

def do_train_test():
    global z
    z = create_model()
    reader = create_reader('atis.train.ctf', is_training=True)
    train(reader, z, 1 if isFast else 10)
    reader = create_reader('atis.test.ctf', is_training=False)
    evaluate(reader, z)

do_train_test()
print(z.classify.b.value.shape)
