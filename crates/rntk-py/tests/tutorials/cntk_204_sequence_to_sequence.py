# CNTK 204: Sequence to Sequence Networks with Text Data (the attention model), as a
# script. The model functions are the notebook's (create_model with use_attention=True
# and use_embedding=True, create_model_train, create_model_greedy,
# create_criterion_function, the train loop's learner, Trainer and ProgressPrinter).
# Changes from the notebook: the CMUDict CTF files are replaced by generated
# spelling -> pronunciation pairs fed as numpy one-hot sequences, the dimensions are
# small (hidden_dim 16, attention_dim 8, embedding_dim 10), the learning rate is larger
# (few minibatches), the epoch is 16 minibatches of 8 words, and the losses of every
# minibatch and a greedy decoding of a few words are printed. At the end the notebook's
# debug_attention (as written) prints the attention weights of a few decodings, and a
# batch of two words prints them at full precision, with the attention layer found by
# name.
from __future__ import print_function
import numpy as np

import cntk as C
import cntk.tests.test_utils
cntk.tests.test_utils.set_device_from_pytest_env() # (only needed for our build system)
C.cntk_py.set_fixed_random_seed(1) # fix a random seed for CNTK components

# ---------------------------------------------------------------- data
# one vocabulary for both sides, as CMUDict's in the notebook (the embedding is shared)
letters = list('abcdefghij')
vocab = ['<s>', '</s>'] + letters + ['P%d' % i for i in range(8)]
input_vocab = label_vocab = vocab
input_vocab_dim = len(input_vocab)
label_vocab_dim = len(label_vocab)
i2w = dict(enumerate(vocab))

rng = np.random.RandomState(0)


def make_word():
    """A word and its 'pronunciation': each letter its phoneme, in reverse order."""
    n = rng.randint(2, 6)
    word = [letters[k] for k in rng.randint(0, len(letters), n)]
    phones = ['P%d' % ((letters.index(c) * 3) % 8) for c in reversed(word)]
    return ['<s>'] + word + ['</s>'], ['<s>'] + phones + ['</s>']


def one_hot(seq, vocab):
    return np.eye(len(vocab), dtype=np.float32)[[vocab.index(w) for w in seq]]


words = [make_word() for _ in range(16 * 8)]

# ---------------------------------------------------------------- model (CNTK 204)
hidden_dim = 16
num_layers = 2
attention_dim = 8
use_attention = True
use_embedding = True
embedding_dim = 10
length_increase = 1.5

sentence_start = C.Constant(np.array([w == '<s>' for w in label_vocab], dtype=np.float32))
sentence_end_index = label_vocab.index('</s>')

# Source and target inputs to the model
inputAxis = C.Axis('inputAxis')
labelAxis = C.Axis('labelAxis')
InputSequence = C.layers.SequenceOver[inputAxis]
LabelSequence = C.layers.SequenceOver[labelAxis]


# create the s2s model
def create_model(): # :: (history*, input*) -> logP(w)*

    # Embedding: (input*) --> embedded_input*
    embed = C.layers.Embedding(embedding_dim, name='embed') if use_embedding else identity

    # Encoder: (input*) --> (h0, c0)
    # Create multiple layers of LSTMs by passing the output of the i-th layer
    # to the (i+1)th layer as its input
    # Note: We go_backwards for the plain model, but forward for the attention model.
    with C.layers.default_options(enable_self_stabilization=True, go_backwards=not use_attention):
        LastRecurrence = C.layers.Fold if not use_attention else C.layers.Recurrence
        encode = C.layers.Sequential([
            embed,
            C.layers.Stabilizer(),
            C.layers.For(range(num_layers-1), lambda:
                C.layers.Recurrence(C.layers.LSTM(hidden_dim))),
            LastRecurrence(C.layers.LSTM(hidden_dim), return_full_state=True),
            (C.layers.Label('encoded_h'), C.layers.Label('encoded_c')),
        ])

    # Decoder: (history*, input*) --> unnormalized_word_logp*
    # where history is one of these, delayed by 1 step and <s> prepended:
    #  - training: labels
    #  - testing:  its own output hardmax(z) (greedy decoder)
    with C.layers.default_options(enable_self_stabilization=True):
        # sub-layers
        stab_in = C.layers.Stabilizer()
        rec_blocks = [C.layers.LSTM(hidden_dim) for i in range(num_layers)]
        stab_out = C.layers.Stabilizer()
        proj_out = C.layers.Dense(label_vocab_dim, name='out_proj')
        # attention model
        if use_attention: # maps a decoder hidden state and all the encoder states into an augmented state
            attention_model = C.layers.AttentionModel(attention_dim,
                                                      name='attention_model') # :: (h_enc*, h_dec) -> (h_dec augmented)
        # layer function
        @C.Function
        def decode(history, input):
            encoded_input = encode(input)
            r = history
            r = embed(r)
            r = stab_in(r)
            for i in range(num_layers):
                rec_block = rec_blocks[i]   # LSTM(hidden_dim)  # :: (dh, dc, x) -> dh, dc
                if use_attention:
                    if i == 0:
                        @C.Function
                        def lstm_with_attention(dh, dc, x):
                            h_att = attention_model(encoded_input.outputs[0], dh)
                            x = C.splice(x, h_att)
                            return rec_block(dh, dc, x)
                        r = C.layers.Recurrence(lstm_with_attention)(r)
                    else:
                        r = C.layers.Recurrence(rec_block)(r)
                else:
                    # unlike Recurrence(), the RecurrenceFrom() layer takes the initial hidden state as a data input
                    r = C.layers.RecurrenceFrom(rec_block)(*(encoded_input.outputs + (r,))) # :: h0, c0, r -> h
            r = stab_out(r)
            r = proj_out(r)
            r = C.layers.Label('out_proj_out')(r)
            return r

    return decode


def create_model_train(s2smodel):
    # model used in training (history is known from labels)
    # note: the labels must NOT contain the initial <s>
    @C.Function
    def model_train(input, labels): # (input*, labels*) --> (word_logp*)

        # The input to the decoder always starts with the special label sequence start token.
        # Then, use the previous value of the label sequence (for training) or the output (for execution).
        past_labels = C.layers.Delay(initial_state=sentence_start)(labels)
        return s2smodel(past_labels, input)
    return model_train


def create_model_greedy(s2smodel):
    # model used in (greedy) decoding (history is decoder's own output)
    @C.Function
    @C.layers.Signature(InputSequence[C.layers.Tensor[input_vocab_dim]])
    def model_greedy(input): # (input*) --> (word_sequence*)

        # Decoding is an unfold() operation starting from sentence_start.
        # We must transform s2smodel (history*, input* -> word_logp*) into a generator (history* -> output*)
        # which holds 'input' in its closure.
        unfold = C.layers.UnfoldFrom(lambda history: s2smodel(history, input) >> C.hardmax,
                                     # stop once sentence_end_index was max-scoring output
                                     until_predicate=lambda w: w[...,sentence_end_index],
                                     length_increase=length_increase)

        return unfold(initial_state=sentence_start, dynamic_axes_like=input)
    return model_greedy


def create_criterion_function(model):
    @C.Function
    @C.layers.Signature(input=InputSequence[C.layers.Tensor[input_vocab_dim]],
                        labels=LabelSequence[C.layers.Tensor[label_vocab_dim]])
    def criterion(input, labels):
        # criterion function must drop the <s> from the labels
        postprocessed_labels = C.sequence.slice(labels, 1, 0) # <s> A B C </s> --> A B C </s>
        z = model(input, postprocessed_labels)
        ce = C.cross_entropy_with_softmax(z, postprocessed_labels)
        errs = C.classification_error(z, postprocessed_labels)
        return (ce, errs)

    return criterion


def train(s2smodel, max_epochs, epoch_size):

    # create the training wrapper for the s2smodel, as well as the criterion function
    model_train = create_model_train(s2smodel)
    criterion = create_criterion_function(model_train)

    # also wire in a greedy decoder so that we can properly log progress on a validation example
    # This is not used for the actual training process.
    model_greedy = create_model_greedy(s2smodel)

    # Instantiate the trainer object to drive the model training
    minibatch_size = 8
    lr = 0.02 if use_attention else 0.005
    learner = C.fsadagrad(model_train.parameters,
                          lr = C.learning_parameter_schedule_per_sample([lr]*2+[lr/2]*3+[lr/4], epoch_size),
                          momentum = C.momentum_schedule(0.9366416204111472, minibatch_size=minibatch_size),
                          gradient_clipping_threshold_per_sample=2.3,
                          gradient_clipping_with_truncation=True)
    trainer = C.Trainer(None, criterion, learner)

    # records
    total_samples = 0
    mbs = 0

    # print out some useful training information
    C.logging.log_number_of_parameters(model_train) ; print()
    progress_printer = C.logging.ProgressPrinter(freq=4, tag='Training')

    for epoch in range(max_epochs):
        for k in range(0, len(words), minibatch_size):
            batch = words[k:k + minibatch_size]
            mb_input = [one_hot(w, input_vocab) for w, _ in batch]
            mb_labels = [one_hot(p, label_vocab) for _, p in batch]
            trainer.train_minibatch({criterion.arguments[0]: mb_input, criterion.arguments[1]: mb_labels})
            print('minibatch %d: loss %.6f, error %.6f, samples %d' % (
                mbs, trainer.previous_minibatch_loss_average,
                trainer.previous_minibatch_evaluation_average,
                trainer.previous_minibatch_sample_count))
            progress_printer.update_with_trainer(trainer, with_metric=True) # log progress
            total_samples += trainer.previous_minibatch_sample_count
            mbs += 1

        # log a summary of the stats for the epoch
        progress_printer.epoch_summary(with_metric=True)

    print('samples seen: %d' % total_samples)
    return model_greedy


def decode_words(model_greedy, n):
    for w, p in words[:n]:
        out = model_greedy(one_hot(w, input_vocab))
        seq = [i2w[int(np.argmax(v))] for v in out[0]]
        print('%s -> %s (want %s)' % (''.join(w[1:-1]), ' '.join(seq), ' '.join(p[1:])))


model = create_model()
model_greedy = train(model, max_epochs=2, epoch_size=len(words))
decode_words(model_greedy, 4)


# ---------------------------------------------------------------- attention (CNTK 204)
# Given a model, and a word, get the word and the attention weights (the notebook's)
def debug_attention(model, input):
    q = C.combine([model, model.attention_model.attention_weights])
    #words, p = q(input) # Python 3
    words_p = q(input)
    words = words_p[0]
    p     = words_p[1]
    output_seq_len = words[0].shape[0]
    p_sq = np.squeeze(p[0][:output_seq_len,:,:]) # (batch, output_len, input_len, 1)
    opts = np.get_printoptions()
    np.set_printoptions(precision = 5)
    print(p_sq)
    np.set_printoptions(**opts)


for w, _ in words[:3]:
    debug_attention(model_greedy, one_hot(w, input_vocab))

# a batch of two words: per word (decoder steps, longest input in the batch, 1), zeros
# past the word's own input; at full precision
q = C.combine([model_greedy, model_greedy.attention_model.attention_weights])
words_p = q([one_hot(w, input_vocab) for w, _ in words[4:6]])
for p in words_p[1]:
    print('attention weights %s: %s' % (p.shape, ' '.join('%.8e' % x for x in p.ravel())))

# the attention layer found by name: its output (the attended encoder state per
# decoder step) as within the whole graph (CNTK evaluates a found node in a combine)
att = model_greedy.find_by_name('attention_model')
h_att = C.combine([att])(one_hot(words[6][0], input_vocab))
print('attention_model %s: %s' % (h_att[0].shape, ' '.join('%.8e' % x for x in h_att[0][:, :4].ravel())))
