"""Data in and out as CNTK takes and returns it (spec python-api.md §5)."""

import warnings

import numpy as np
import pytest

import rntk as C


def seq_sum_model(dim=2):
    x = C.sequence.input_variable(dim, name='x')
    return x, C.sequence.reduce_sum(x)


def test_ragged_list_of_sequences():
    x, z = seq_sum_model(2)
    seqs = [np.arange(6, dtype=np.float32).reshape(3, 2), np.ones((1, 2), np.float32),
            np.full((5, 2), 2, np.float32)]
    out = z.eval({x: seqs})
    assert isinstance(out, np.ndarray) and out.shape == (3, 2)
    np.testing.assert_allclose(out, [s.sum(0) for s in seqs])


def test_sequence_output_is_list_with_masked_steps_removed():
    x = C.sequence.input_variable(2)
    z = x * 2
    seqs = [np.ones((3, 2), np.float32), np.ones((1, 2), np.float32)]
    out = z.eval({x: seqs})
    assert isinstance(out, list) and [o.shape for o in out] == [(3, 2), (1, 2)]
    np.testing.assert_allclose(out[0], 2 * seqs[0])


def test_dense_b_t_s_is_equal_length_sequences():
    x, z = seq_sum_model(1)
    data = np.arange(12, dtype=np.float32).reshape(4, 3, 1)
    out = z.eval({x: data})
    np.testing.assert_allclose(out, data.sum(1))
    # (T, *S): one sequence
    out = z.eval({x: data[0]})
    np.testing.assert_allclose(out, data[0].sum(0, keepdims=True))


def test_shape_1_sequences_given_as_1d_arrays():
    x, z = seq_sum_model(1)
    out = z.eval({x: [np.array([1., 2., 3.], np.float32), np.array([4.], np.float32)]})
    np.testing.assert_allclose(out, [[6.], [4.]])


def test_batch_input_b_s_and_single_sample():
    x = C.input_variable(3)
    z = x + 1
    out = z.eval({x: np.zeros((5, 3), np.float32)})
    assert out.shape == (5, 3)
    assert z.eval({x: np.zeros(3, np.float32)}).shape == (1, 3)


def test_float64_converted_with_cntks_warning():
    x = C.input_variable(2)
    z = x * 1
    with pytest.warns(UserWarning, match='your data is of type "float64", but your input variable'):
        out = z.eval({x: np.ones((2, 2))})
    assert out.dtype == np.float32


def test_int_labels_converted():
    x = C.input_variable(3)
    z = x * 1
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        out = z.eval({x: np.eye(3, dtype=np.int64)})
    assert any('int64' in str(m.message) for m in w)
    np.testing.assert_allclose(out, np.eye(3))


def test_one_hot_sparse_value():
    x = C.sequence.input_variable(5, is_sparse=True)
    e = C.parameter(shape=(5, 2), init=np.arange(10, dtype=np.float32).reshape(5, 2))
    z = C.sequence.reduce_sum(C.times(x, e))
    v = C.Value.one_hot([[0, 4], [2]], 5)
    out = z.eval({x: v})
    np.testing.assert_allclose(out, [[0 + 8, 1 + 9], [4, 5]])


def test_csr_like_sequences():
    class Csr(object):
        def __init__(self, rows, cols, idx):
            self.shape = (rows, cols)
            self.indptr = np.arange(rows + 1)
            self.indices = np.array(idx)
            self.data = np.ones(rows, np.float32)
    x = C.sequence.input_variable(4, is_sparse=True)
    z = C.sequence.reduce_sum(x)
    out = z.eval({x: [Csr(2, 4, [1, 3]), Csr(1, 4, [0])]})
    np.testing.assert_allclose(out, [[0, 1, 0, 1], [1, 0, 0, 0]])


def test_several_outputs_dict_and_tuple():
    x = C.input_variable(2)
    a, b = x + 1, x * 3
    f = C.combine([a, b])
    data = np.ones((2, 2), np.float32)
    d = f.eval({x: data})
    assert isinstance(d, dict) and len(d) == 2
    np.testing.assert_allclose(d[f.outputs[0]], 2 * data)
    t = f(data)
    assert isinstance(t, tuple) and len(t) == 2
    np.testing.assert_allclose(t[1], 3 * data)


def test_variable_passed_by_name_and_non_dict_argument():
    x = C.input_variable(2, name='features')
    z = x * 2
    np.testing.assert_allclose(z.eval({'features': np.ones((1, 2), np.float32)}), [[2, 2]])
    np.testing.assert_allclose(z.eval(np.ones((1, 2), np.float32)), [[2, 2]])
    with pytest.raises(ValueError, match="no input named 'nope'"):
        z.eval({'nope': np.ones((1, 2), np.float32)})


def test_wrong_shapes_give_clear_value_error():
    x = C.input_variable(3, name='feat')
    z = x * 2
    with pytest.raises(ValueError, match=r"data of shape \(4, 2\) does not fit input 'feat' of shape \(3,\)"):
        z.eval({x: np.ones((4, 2), np.float32)})
    s = C.sequence.input_variable(2, name='seq')
    with pytest.raises(ValueError, match=r"sequence 1 has shape \(3,\) but input 'seq'"):
        C.sequence.reduce_sum(s).eval({s: [np.ones((2, 2), np.float32), np.ones(3, np.float32)]})
    with pytest.raises(ValueError, match="is not fed"):
        (x + s).eval({x: np.ones((1, 3), np.float32)}) if False else C.combine([z, C.sequence.reduce_sum(s)]).eval({x: np.ones((1, 3), np.float32)})


def test_train_minibatch_outputs_and_sample_counts():
    x = C.input_variable(2)
    y = C.input_variable(1)
    z = C.layers.Dense(1)(x)
    loss = C.squared_error(z, y)
    t = C.Trainer(z, (loss, loss), [C.sgd(z.parameters, 0.1)])
    r = t.train_minibatch({x: np.ones((4, 2), np.float32), y: np.ones((4, 1), np.float32)},
                          outputs=[z])
    assert isinstance(r, tuple) and r[0] is True and r[1][z].shape == (4, 1)
    assert t.previous_minibatch_sample_count == 4
    assert isinstance(t.test_minibatch({x: np.ones((2, 2), np.float32), y: np.ones((2, 1), np.float32)}), float)


def test_parameter_value_read_and_assign():
    p = C.parameter(shape=(2, 3))
    np.testing.assert_array_equal(p.value, np.zeros((2, 3), np.float32))
    p.value = 0 * p.value + 1.5
    np.testing.assert_array_equal(p.value, np.full((2, 3), 1.5, np.float32))
    with pytest.raises(ValueError):
        p.value = np.ones((4, 4))


EXTRA = ('WARNING: Function::Forward provided values for (1) extra arguments which are not '
         'required for evaluating the specified Function outputs!')


def test_feeds_that_are_not_arguments_are_ignored_with_cntks_warning(capfd):
    """CNTK 2.7 (checked on the oracle): eval, forward, grad and train_minibatch ignore a
    Variable-keyed feed that the function does not need, without looking at its data
    (a wrong shape passes), and print this warning on stderr; a name that is no
    argument's is a ValueError, and a missing argument still is one."""
    x = C.input_variable(3, name='x')
    labels = C.input_variable(2, name='labels')
    other = C.sequence.input_variable(4, name='other')
    z = C.layers.Dense(2, name='out')(x)
    xv = np.ones((2, 3), np.float32)
    want = z.eval({x: xv})
    capfd.readouterr()
    junk = np.ones((1, 7, 5), np.float32)  # not even other's shape
    np.testing.assert_array_equal(z.eval({x: xv, other: junk, labels: np.ones((2, 2), np.float32)}), want)
    assert capfd.readouterr().err.strip() == EXTRA.replace('(1)', '(2)')
    _, outs = z.forward({x: xv, other: junk})
    np.testing.assert_array_equal(list(outs.values())[0], want)
    g = z.grad({x: xv, other: junk}, wrt=[z.parameters[0]])
    assert np.shape(g) == (3, 2)
    loss = C.squared_error(z, labels)
    t = C.Trainer(z, (loss, None), C.sgd(z.parameters, C.learning_parameter_schedule(0.1)))
    assert t.train_minibatch({x: xv, labels: np.ones((2, 2), np.float32), other: junk})
    err = capfd.readouterr().err.strip().splitlines()
    assert err == [EXTRA] * 3
    with pytest.raises(ValueError, match="no input named 'other'"):
        z.eval({'x': xv, 'other': junk})
    with pytest.raises(ValueError, match="'x'.*not fed"):
        z.eval({other: junk})
