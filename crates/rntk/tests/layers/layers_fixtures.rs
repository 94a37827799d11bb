//! Every layer against the CNTK 2.7 oracle (tests/fixtures/cntk_layers/layers.json,
//! made by make_layer_fixtures.py): float32 outputs and gradients with respect to the
//! inputs and every parameter, with the same deterministic parameter values.

use crate::common;

use common::{flat, load_cases, shape_of, value_of};
use rntk::exec::Executor;
use rntk::functions::{less, reduce_sum, splice};
use rntk::graph::{input_variable_with, InputOptions};
use rntk::layers::*;
use rntk::tensor::{Layout, Value};
use rntk::{DType, DynamicAxes, Tensor, Variable};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

const FILE: &str = "cntk_layers/layers.json";
/// The convolutional layers and spatial batch normalization (make_conv_layer_fixtures.py).
const CONV_FILE: &str = "cntk_conv/conv_layers.json";
/// float32 against float32: relative 1e-5, with an absolute floor for values near 0.
const RTOL: f64 = 1e-5;
const ATOL: f64 = 1e-6;

/// A built case: its output and, per layer (fixture prefix), the layer's parameters.
struct Built {
    out: Variable,
    layers: Vec<(String, Vec<Variable>)>,
}

fn pfill(shape: &[usize], k: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| ((((7 * i + k) % 11) as f32) - 5.0) / 10.0)
        .collect();
    Tensor::from_vec(shape.to_vec(), v).unwrap()
}

fn f32_value(v: &Json) -> Value {
    let v = value_of(v);
    Value::from_rows(v.shape().clone(), v.layout().clone(), v.dense_rows::<f32>()).unwrap()
}

/// The case's data inputs (float32, needing gradients unless sparse) and their values.
fn inputs(case: &Json) -> Vec<(String, Variable, Value)> {
    case["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let name = i["name"].as_str().unwrap().to_string();
            let shape = shape_of(&i["shape"]);
            let seq = i["kind"] == "sequence";
            let sparse = i.get("sparse_indices").is_some();
            let var = input_variable_with(
                shape.clone(),
                InputOptions {
                    dtype: DType::F32,
                    is_sparse: sparse,
                    needs_gradient: !sparse,
                    dynamic_axes: if seq {
                        DynamicAxes::default_sequence()
                    } else {
                        DynamicAxes::Batch
                    },
                    name: name.clone(),
                },
            );
            let val = if sparse {
                let idx: Vec<Vec<usize>> = i["sparse_indices"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| flat(s).iter().map(|&v| v as usize).collect())
                    .collect();
                Value::one_hot_sequences::<f32>(shape[0], &idx).unwrap()
            } else {
                f32_value(&i["data"])
            };
            (name, var, val)
        })
        .collect()
}

fn arc<L: Layer + 'static>(l: L) -> Arc<L> {
    Arc::new(l)
}

fn one(prefix: &str, l: &dyn Layer) -> Vec<(String, Vec<Variable>)> {
    vec![(prefix.to_string(), l.parameters())]
}

fn rec<S: RecurrentStep + 'static>(name: &str, step: S, x: &Variable) -> Built {
    let back = name.ends_with("_back");
    let r = Recurrence::new(step).go_backwards(back);
    Built {
        out: r.apply(x).unwrap(),
        layers: one("", &r),
    }
}

fn lstm_for(base: &str) -> Option<Lstm> {
    Some(match base {
        "lstm" => Lstm::new(4),
        "lstm_peep" => Lstm::new(4).use_peepholes(true),
        "lstm_proj" => Lstm::new(2).cell_shape(4),
        "lstm_peep_proj" => Lstm::new(2).cell_shape(4).use_peepholes(true),
        "lstm_stab" => Lstm::new(4).enable_self_stabilization(true),
        "lstm_stab_peep_proj" => Lstm::new(2)
            .cell_shape(4)
            .use_peepholes(true)
            .enable_self_stabilization(true),
        "lstm_stab_proj" => Lstm::new(2).cell_shape(4).enable_self_stabilization(true),
        "lstm_relu" => Lstm::new(4).activation(Activation::Relu),
        _ => return None,
    })
}

fn dense_act(name: &str) -> Option<Activation> {
    Some(match name {
        "identity" => Activation::Identity,
        "sigmoid" => Activation::Sigmoid,
        "tanh" => Activation::Tanh,
        "relu" => Activation::Relu,
        "softplus" => Activation::Softplus,
        "elu" => Activation::Elu,
        "leaky_relu" => Activation::LeakyRelu(0.01),
        "softmax" => Activation::Softmax,
        _ => return None,
    })
}

/// The convolutional layer cases (conv_layers.json).
fn build_conv(name: &str, v: &HashMap<String, Variable>) -> Option<Built> {
    let x = &v["x"];
    let conv = |c: Convolution| Built {
        out: c.apply(x).unwrap(),
        layers: one("", &c),
    };
    let pool = |p: Pooling| Built {
        out: p.apply(x).unwrap(),
        layers: vec![],
    };
    Some(match name {
        "conv2d_relu_pad" => conv(
            Convolution::d2([3, 3])
                .num_filters(4)
                .pad(true)
                .activation(Activation::Relu),
        ),
        "conv_5x5_stride2_pad" => conv(
            Convolution::new(&[5, 5])
                .num_filters(3)
                .strides(&[2])
                .pad(true),
        ),
        "conv_rect_nobias_valid" => conv(Convolution::new(&[3, 2]).num_filters(2).bias(false)),
        "conv_pad_per_axis" => conv(
            Convolution::new(&[3, 3])
                .num_filters(2)
                .pad_axes(&[true, false])
                .strides(&[2, 1]),
        ),
        "conv1d_pad" => conv(Convolution::d1(3).num_filters(2).pad(true)),
        "conv1d_stride2" => conv(Convolution::d1(4).num_filters(3).strides(&[2])),
        "conv3d_pad" => conv(Convolution::d3([2, 3, 2]).num_filters(2).pad(true)),
        "conv_rr0" => conv(
            Convolution::new(&[3, 3])
                .num_filters(3)
                .reduction_rank(0)
                .pad(true),
        ),
        "conv_no_num_filters" => conv(Convolution::new(&[3, 3]).pad(true)),
        "conv_default_options" => default_options(
            DefaultOptions {
                activation: Some(Activation::Relu),
                pad: Some(true),
                bias: Some(false),
                ..Default::default()
            },
            || conv(Convolution::new(&[3, 3]).num_filters(3)),
        ),
        "convT2d_stride2_pad_output_shape" => conv(
            Convolution::transpose2d([3, 3])
                .num_filters(2)
                .strides(&[2])
                .pad(true)
                .output_shape(&[8, 8]),
        ),
        "convT_valid" => conv(Convolution::transpose(&[3, 3]).num_filters(2)),
        "convT_stride2_nobias" => conv(
            Convolution::transpose(&[2, 2])
                .num_filters(3)
                .strides(&[2])
                .bias(false),
        ),
        "convT1d_pad" => conv(
            Convolution::transpose1d(3)
                .num_filters(2)
                .strides(&[2])
                .pad(true)
                .output_shape(&[10]),
        ),
        "convT3d_pad" => conv(Convolution::transpose3d([3, 2, 3]).num_filters(2).pad(true)),
        "convT_rr0" => conv(
            Convolution::transpose(&[3, 3])
                .num_filters(2)
                .reduction_rank(0)
                .strides(&[2])
                .pad(true)
                .output_shape(&[8, 6]),
        ),
        "conv_sequential_layer_pad" => conv(
            Convolution::new(&[3])
                .num_filters(4)
                .sequential(true)
                .pad(true),
        ),
        "conv_sequential_layer_valid" => {
            conv(Convolution::new(&[3, 2]).num_filters(2).sequential(true))
        }
        "sequential_convolution_pad" => conv(
            Convolution::sequential_convolution(&[3, 3])
                .num_filters(4)
                .pad(true),
        ),
        "sequential_convolution_valid_stride" => conv(
            Convolution::sequential_convolution(&[2, 3])
                .num_filters(3)
                .strides(&[2, 1]),
        ),
        "sequential_convolution_text" => conv(
            Convolution::sequential_convolution(&[3])
                .num_filters(4)
                .pad(true)
                .activation(Activation::Relu),
        ),
        "maxpool_2x2_s2" => pool(Pooling::max(&[2, 2]).strides(&[2])),
        "maxpool_3x3_s2_pad" => pool(Pooling::max(&[3, 3]).strides(&[2]).pad(true)),
        "avgpool_3x3_s2_pad" => pool(Pooling::average(&[3, 3]).strides(&[2]).pad(true)),
        "avgpool_2x2_default_strides" => pool(Pooling::average(&[2, 2])),
        "global_maxpool" => pool(Pooling::global_max()),
        "global_avgpool" => pool(Pooling::global_average()),
        "maxunpool" => {
            let p = Pooling::max(&[2, 2]).strides(&[2]).apply(x).unwrap();
            let u =
                rntk::functions::element_times(&p, &rntk::graph::scalar(2.0, DType::F32)).unwrap();
            Built {
                out: MaxUnpooling::new(&[2, 2])
                    .strides(&[2])
                    .apply2(&u, x)
                    .unwrap(),
                layers: vec![],
            }
        }
        "lenet_stack" => {
            // with default_options(activation=relu, pad=True): the pooling layers pad too
            let opts = DefaultOptions {
                activation: Some(Activation::Relu),
                pad: Some(true),
                ..Default::default()
            };
            let (c1, p1, c2, p2) = default_options(opts, || {
                (
                    arc(Convolution::d2([5, 5]).num_filters(4)),
                    arc(Pooling::max(&[2, 2]).strides(&[2])),
                    arc(Convolution::d2([3, 3]).num_filters(3)),
                    arc(Pooling::max(&[3, 3]).strides(&[3])),
                )
            });
            let d = arc(Dense::new(5));
            let net = Sequential::new(vec![c1.clone(), p1, c2.clone(), p2, d.clone()]);
            let out = net.apply(x).unwrap();
            let mut layers = one("c1", c1.as_ref());
            layers.extend(one("c2", c2.as_ref()));
            layers.extend(one("d", d.as_ref()));
            Built { out, layers }
        }
        _ => return None,
    })
}

/// The recurrent cases: a recurrence over each cell (`_back`: backwards), initial
/// states, full states, stacks and folds.
fn build_recurrent(name: &str, x: &Variable) -> Option<Built> {
    let base = name.strip_suffix("_back").unwrap_or(name);
    if let Some(l) = lstm_for(base) {
        return Some(rec(name, l, x));
    }
    match base {
        "gru" => return Some(rec(name, Gru::new(4), x)),
        "gru_stab" => return Some(rec(name, Gru::new(4).enable_self_stabilization(true), x)),
        "gru_proj_square" => return Some(rec(name, Gru::new(4).cell_shape(4), x)),
        "rnn_sigmoid" => return Some(rec(name, RnnStep::new(4), x)),
        "rnn_tanh" => return Some(rec(name, RnnStep::new(4).activation(Activation::Tanh), x)),
        "rnn_proj" => {
            return Some(rec(
                name,
                RnnStep::new(2).cell_shape(4).activation(Activation::Tanh),
                x,
            ))
        }
        _ => {}
    }
    let single = |l: &dyn Layer| Built {
        out: l.apply(x).unwrap(),
        layers: one("", l),
    };
    Some(match name {
        "rnn_tanh_init_scalar" => single(
            &Recurrence::new(RnnStep::new(4).activation(Activation::Tanh))
                .initial_state(InitialState::Scalar(0.5)),
        ),
        "lstm_init_scalar_back" => single(
            &Recurrence::new(Lstm::new(4))
                .initial_state(InitialState::Scalar(-0.25))
                .go_backwards(true),
        ),
        "rnn_tanh_init_param" | "lstm_init_param_back" => {
            let s0 = rntk::parameter_from(Tensor::from_vec(vec![4], vec![0f32; 4]).unwrap(), "s0");
            let r = if name.starts_with("rnn") {
                Recurrence::new(RnnStep::new(4).activation(Activation::Tanh))
            } else {
                Recurrence::new(Lstm::new(4)).go_backwards(true)
            };
            single(&r.initial_state(InitialState::Variable(s0)))
        }
        "lstm_full_state" | "lstm_full_state_back" => {
            let r = Recurrence::new(Lstm::new(4)).go_backwards(name.ends_with("_back"));
            let hc = r.apply_full(x).unwrap();
            Built {
                out: splice(&[&hc[0], &hc[1]], -1).unwrap(),
                layers: one("", &r),
            }
        }
        "stacked_lstm_gru_dense" => {
            let (a, b, d) = (
                arc(Recurrence::new(Lstm::new(5))),
                arc(Recurrence::new(Gru::new(4))),
                arc(Dense::new(2)),
            );
            let s = Sequential::new(vec![a.clone(), b.clone(), d.clone()]);
            Built {
                out: s.apply(x).unwrap(),
                layers: vec![
                    ("L0".into(), a.parameters()),
                    ("L1".into(), b.parameters()),
                    ("L2".into(), d.parameters()),
                ],
            }
        }
        "bidirectional_lstm" => {
            let f = arc(Recurrence::new(Lstm::new(3)));
            let b = arc(Recurrence::new(Lstm::new(3)).go_backwards(true));
            let c = Concat::new(vec![f.clone(), b.clone()]);
            Built {
                out: c.apply(x).unwrap(),
                layers: vec![
                    ("fwd".into(), f.parameters()),
                    ("bwd".into(), b.parameters()),
                ],
            }
        }
        "fold_gru" | "fold_gru_back" => {
            single(&Fold::new(Gru::new(4)).go_backwards(name.ends_with("_back")))
        }
        "fold_lstm" | "fold_lstm_back" => {
            single(&Fold::new(Lstm::new(4)).go_backwards(name.ends_with("_back")))
        }
        "fold_lstm_full_state" => {
            let f = Fold::new(Lstm::new(4));
            let hc = f.apply_full(x).unwrap();
            Built {
                out: splice(&[&hc[0], &hc[1]], -1).unwrap(),
                layers: one("", &f),
            }
        }
        _ => return None,
    })
}

/// The rntk layers of fixture case `name`.
fn build(name: &str, v: &HashMap<String, Variable>) -> Built {
    if let Some(b) = build_conv(name, v) {
        return b;
    }
    let x = &v["x"];
    if let Some(b) = build_recurrent(name, x) {
        return b;
    }
    if let Some(act) = name.strip_prefix("dense_").and_then(dense_act) {
        let d = Dense::new(4).activation(act);
        return Built {
            out: d.apply(x).unwrap(),
            layers: one("", &d),
        };
    }
    let single = |l: &dyn Layer| Built {
        out: l.apply(x).unwrap(),
        layers: one("", l),
    };
    match name {
        "dense_rank3_all" => single(&Dense::new(4)),
        "dense_rank3_input_rank2" => single(&Dense::new(4).input_rank(2)),
        "dense_rank3_map_rank1" => single(&Dense::new(4).map_rank(1)),
        "dense_rank3_map_rank2_seq" => single(&Dense::new(4).map_rank(2)),
        "dense_shape2x3_nobias_tanh" => {
            single(&Dense::new([2, 3]).bias(false).activation(Activation::Tanh))
        }
        "embedding_sparse" | "embedding_dense" => single(&Embedding::new(4)),
        "embedding_weights_sparse" => single(&Embedding::from_weights(pfill(&[6, 3], 4))),
        "stabilizer" => single(&Stabilizer::new()),
        "stabilizer_steepness2" => single(&Stabilizer::new().steepness(2.0)),
        "dropout_eval" => single(&Dropout::new(0.3).unwrap()),
        "sequential_nested" => {
            let a = arc(Dense::new(4).activation(Activation::Tanh));
            let b = arc(Dense::new(3));
            let s = Sequential::new(vec![
                a.clone(),
                Arc::new(Sequential::new(vec![
                    b.clone(),
                    Arc::new(Label("out".into())),
                ])),
            ]);
            Built {
                out: s.apply(x).unwrap(),
                layers: vec![("L0".into(), a.parameters()), ("L1".into(), b.parameters())],
            }
        }
        "for_dense3" => {
            let mut made: Vec<Arc<Dense>> = Vec::new();
            let f = For::new(0..3, |i| {
                let d = arc(Dense::new(3).activation(if i < 2 {
                    Activation::Tanh
                } else {
                    Activation::Identity
                }));
                made.push(d.clone());
                d
            });
            Built {
                out: f.apply(x).unwrap(),
                layers: made
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (format!("L{i}"), d.parameters()))
                    .collect(),
            }
        }
        "resnet_block" => {
            let d = arc(Dense::new(3).activation(Activation::Tanh));
            let r = ResNetBlock(d.clone());
            Built {
                out: r.apply(x).unwrap(),
                layers: one("", d.as_ref()),
            }
        }
        "activation_relu" => single(&Activation::Relu),
        "delay_T1" => single(&Delay::new(1).initial_state(0.5)),
        "delay_Tm2" => single(&Delay::new(-2).initial_state(0.0)),
        "delay_T2" => single(&Delay::new(2).initial_state(-1.0)),
        "layernorm" | "layernorm_rank3" => single(&LayerNormalization::new()),
        "layernorm_eps0" => single(&LayerNormalization::new().epsilon(0.0)),
        n if n.starts_with("unfold_from_") => {
            let d = arc(Dense::new(3).activation(Activation::Tanh));
            let mut u = UnfoldFrom::from_layer(d.clone());
            if n.contains("li1p5") {
                u = u.length_increase(1.5);
            } else if n.contains("li2") {
                u = u.length_increase(2.0);
            }
            if n.ends_with("_until") {
                u = u.until_predicate(Arc::new(|y: &Variable| {
                    less(
                        &reduce_sum(y, None, true)?,
                        &rntk::graph::scalar(0.2, DType::F32),
                    )
                }));
            }
            Built {
                out: u.apply_from(&v["s"], x).unwrap(),
                layers: one("", d.as_ref()),
            }
        }
        other => panic!("no rntk builder for fixture case {other}"),
    }
}

/// Match the layers' parameters to the fixture's names: `prefix.NAME`; the α's of
/// self-stabilizers in creation order (dh, dc, ct, ht), as the fixture lists them.
fn name_params(case: &Json, layers: &[(String, Vec<Variable>)]) -> BTreeMap<String, Variable> {
    const ORDER: [&str; 5] = ["alpha_dh", "alpha_dc", "alpha_ct", "alpha_ht", "alpha_st"];
    let fixture: Vec<String> = case["params"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut out = BTreeMap::new();
    for (prefix, params) in layers {
        let path = |k: &str| {
            if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            }
        };
        let mut alphas: Vec<String> = ORDER
            .iter()
            .map(|a| path(a))
            .filter(|k| fixture.contains(k))
            .collect();
        alphas.reverse();
        for p in params {
            let key = if p.name() == "alpha" {
                alphas.pop().expect("more alphas in rntk than in CNTK")
            } else {
                path(&p.name())
            };
            assert!(
                out.insert(key.clone(), p.clone()).is_none(),
                "duplicate {key}"
            );
        }
    }
    let mine: Vec<&String> = out.keys().collect();
    let mut theirs: Vec<&String> = fixture.iter().collect();
    theirs.sort();
    assert_eq!(mine, theirs, "parameter sets differ");
    out
}

fn set_params(case: &Json, named: &BTreeMap<String, Variable>) {
    for (k, p) in named {
        let v = &case["params"][k];
        let t = Tensor::from_vec(
            shape_of(&v["shape"]),
            flat(&v["data"]).iter().map(|&x| x as f32).collect(),
        )
        .unwrap();
        assert_eq!(p.shape(), t.shape().clone(), "{k}: shape");
        p.set_value(t).unwrap();
    }
}

/// Largest |got − want| / max(|want|, ATOL/RTOL) seen, for the report.
fn compare(what: &str, got: &[f64], want: &[f64], worst: &mut f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        assert!(
            err <= RTOL * w.abs() + ATOL,
            "{what}[{i}]: rntk {g} vs CNTK {w} (rtol {RTOL}, atol {ATOL})"
        );
        *worst = worst.max(err / w.abs().max(ATOL / RTOL));
    }
}

/// r (caller order) repacked into the output's layout.
fn seed(r: &Json, like: &Value) -> Value {
    let r = value_of(r);
    let rows = match like.layout() {
        Layout::Sequence(_) => Value::from_sequences(r.shape().clone(), &r.to_sequences::<f64>())
            .unwrap()
            .dense_rows::<f32>(),
        _ => r.dense_rows::<f32>(),
    };
    Value::from_rows(like.shape().clone(), like.layout().clone(), rows).unwrap()
}

fn run_plain(case: &Json, worst: &mut f64) {
    let name = case["name"].as_str().unwrap();
    let ins = inputs(case);
    let vars: HashMap<String, Variable> =
        ins.iter().map(|(n, v, _)| (n.clone(), v.clone())).collect();
    let b = build(name, &vars);
    let params = name_params(case, &b.layers);
    set_params(case, &params);
    let feeds: Vec<(&Variable, &Value)> = ins.iter().map(|(_, v, x)| (v, x)).collect();
    let mut ex = Executor::<f32>::new(std::slice::from_ref(&b.out))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    ex.forward(&feeds, false)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let y = ex.value(&b.out).unwrap();
    let want = value_of(&case["output"]);
    assert_eq!(y.shape(), want.shape(), "{name}: output shape");
    assert_eq!(
        y.to_sequences::<f64>()
            .iter()
            .map(Vec::len)
            .collect::<Vec<_>>(),
        want.to_sequences::<f64>()
            .iter()
            .map(Vec::len)
            .collect::<Vec<_>>(),
        "{name}: lengths"
    );
    compare(
        &format!("{name}: output"),
        &y.to_vec::<f64>(),
        &want.to_vec::<f64>(),
        worst,
    );
    let Some(grads) = case.get("grads").and_then(|g| g.as_object()) else {
        common::arena_mirror(&b.out, &feeds, None, &[], (&y, &[]));
        return;
    };
    let r = seed(&case["r"], &y);
    let wrt: Vec<&Variable> = grads
        .keys()
        .map(|k| {
            vars.get(k)
                .or_else(|| params.get(k))
                .unwrap_or_else(|| panic!("{name}: no {k}"))
        })
        .collect();
    assert_eq!(
        grads.len(),
        ins.iter().filter(|(_, v, _)| !v.is_sparse()).count() + params.len(),
        "{name}: every input and parameter has a CNTK gradient"
    );
    let got = ex
        .backward(&[(&b.out, Some(&r))], &wrt)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    common::arena_mirror(&b.out, &feeds, Some(&r), &wrt, (&y, &got));
    for ((k, g), w) in grads.iter().zip(&got) {
        compare(
            &format!("{name}: d/d{k}"),
            &w.to_vec::<f64>(),
            &value_of(g).to_vec::<f64>(),
            worst,
        );
    }
}

fn run_batchnorm(case: &Json, worst: &mut f64) {
    let name = case["name"].as_str().unwrap();
    let ins = inputs(case);
    let x = ins[0].1.clone();
    let bn = match name {
        "batchnorm" | "batchnorm_rank3" | "batchnorm_seq_equal" => {
            BatchNormalization::new().normalization_time_constant(4.0)
        }
        "batchnorm_default_tc" => BatchNormalization::new(),
        "batchnorm_tc0_eps" => BatchNormalization::new()
            .normalization_time_constant(0.0)
            .epsilon(0.01),
        "batchnorm_tc_inf" => BatchNormalization::new().normalization_time_constant(f64::INFINITY),
        "batchnorm_cumulative" => BatchNormalization::new().normalization_time_constant(-1.0),
        "batchnorm_spatial" | "spatial_bn_3x4x5" => BatchNormalization::new()
            .map_rank(Some(1))
            .normalization_time_constant(4.0),
        "spatial_bn_default_tc" => BatchNormalization::new().map_rank(Some(1)),
        "spatial_bn_1d" => BatchNormalization::new()
            .map_rank(Some(1))
            .normalization_time_constant(4096.0),
        other => panic!("no builder for {other}"),
    };
    let out = bn.apply(&x).unwrap();
    let params = name_params(case, &[(String::new(), bn.parameters())]);
    set_params(case, &params);
    let mut ex = Executor::<f32>::new(std::slice::from_ref(&out)).unwrap();
    let stats = [
        ("aggregate_mean", bn.aggregate_mean().unwrap()),
        ("aggregate_variance", bn.aggregate_variance().unwrap()),
        ("aggregate_count", bn.aggregate_count().unwrap()),
    ];
    for (s, step) in case["train_steps"].as_array().unwrap().iter().enumerate() {
        let xv = f32_value(&step["input"]);
        ex.forward(&[(&x, &xv)], true)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let y = ex.value(&out).unwrap();
        compare(
            &format!("{name} step {s}: output"),
            &y.to_vec::<f64>(),
            &value_of(&step["output"]).to_vec::<f64>(),
            worst,
        );
        let r = seed(&step["r"], &y);
        let grads = step["grads"].as_object().unwrap();
        let wrt: Vec<&Variable> = grads
            .keys()
            .map(|k| if k == "x" { &x } else { &params[k] })
            .collect();
        let got = ex.backward(&[(&out, Some(&r))], &wrt).unwrap();
        for ((k, g), w) in grads.iter().zip(&got) {
            compare(
                &format!("{name} step {s}: d/d{k}"),
                &w.to_vec::<f64>(),
                &value_of(g).to_vec::<f64>(),
                worst,
            );
        }
        for (k, v) in &stats {
            let got = v.value().unwrap().to_f64_vec();
            compare(
                &format!("{name} step {s}: {k}"),
                &got,
                &flat(&step["stats_after"][k]["data"]),
                worst,
            );
        }
    }
    let xv = &ins[0].2;
    ex.forward(&[(&x, xv)], false).unwrap();
    let y = ex.value(&out).unwrap();
    compare(
        &format!("{name}: eval output"),
        &y.to_vec::<f64>(),
        &value_of(&case["eval_output"]).to_vec::<f64>(),
        worst,
    );
    // Inference leaves the estimates alone.
    let after = bn.aggregate_count().unwrap().value().unwrap().to_f64_vec();
    assert_eq!(
        after,
        flat(&case["train_steps"][1]["stats_after"]["aggregate_count"]["data"])
    );
}

#[test]
fn every_layer_matches_cntk() {
    let cases = load_cases(FILE);
    assert!(cases.len() >= 70, "fixture file has {} cases", cases.len());
    let mut worst = 0.0f64;
    let mut n = 0;
    for case in &cases {
        assert!(
            case.get("error").is_none(),
            "{}: CNTK refused",
            case["name"]
        );
        if case.get("train_steps").is_some() {
            run_batchnorm(case, &mut worst);
        } else {
            run_plain(case, &mut worst);
        }
        n += 1;
    }
    eprintln!("{n} CNTK layer cases; worst relative error {worst:e}");
}

#[test]
fn every_convolutional_layer_matches_cntk() {
    let cases = load_cases(CONV_FILE);
    let mut worst = 0.0f64;
    let mut n = 0;
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        if case.get("train_steps").is_some() {
            run_batchnorm(case, &mut worst);
        } else if name == "maxunpool" {
            // CNTK 2.7's unpooling gradient is max_pool(dY), not the derivative rntk
            // computes (gradcheck_conv.rs): the output only
            let mut c = case.clone();
            c.as_object_mut().unwrap().remove("grads");
            run_plain(&c, &mut worst);
        } else {
            run_plain(case, &mut worst);
        }
        n += 1;
    }
    assert!(n >= 32, "only {n} convolutional layer cases ran");
    eprintln!("{n} CNTK convolutional layer cases; worst relative error {worst:e}");
}
