//! CNTK's initializer fan rules for convolution filters (`filter_rank`): the spread of a
//! large filter drawn by each initializer through each layer kind equals CNTK 2.7's
//! (tests/fixtures/cntk_conv/conv_init.json: std within 3 %, the uniform bound held).

use rntk::initializer::Initializer;
use rntk::{DType, Shape};
use serde_json::Value as Json;

fn initializer(name: &str) -> Initializer {
    match name {
        "glorot_uniform" => Initializer::glorot_uniform(),
        "glorot_normal" => Initializer::GlorotNormal {
            scale: 1.0,
            output_rank: 1,
            seed: None,
        },
        "he_uniform" => Initializer::HeUniform {
            scale: 1.0,
            output_rank: 1,
            seed: None,
        },
        "he_normal" => Initializer::HeNormal {
            scale: 1.0,
            output_rank: 1,
            seed: None,
        },
        "xavier" => Initializer::Xavier {
            scale: 1.0,
            output_rank: 1,
            seed: None,
        },
        "uniform_1" => Initializer::Uniform {
            scale: 1.0,
            seed: None,
        },
        "normal_1" => Initializer::Normal {
            scale: 1.0,
            seed: None,
        },
        other => panic!("initializer {other}"),
    }
}

#[test]
fn filter_initializers_spread_like_cntk() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/cntk_conv/conv_init.json"
    );
    let fx: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for case in fx["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let dims: Vec<usize> = case["W_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let filter_rank = dims.len() - 2;
        let init = initializer(case["init"].as_str().unwrap())
            .with_seed(7)
            .with_ranks(-1, filter_rank)
            .unwrap();
        let t = init
            .generate(&Shape::new(dims.clone()), DType::F64)
            .unwrap();
        let v = t.to_f64_vec();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let std = (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
        let max = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let (cstd, cmax) = (
            case["std"].as_f64().unwrap(),
            case["max_abs"].as_f64().unwrap(),
        );
        assert!(
            (std / cstd - 1.0).abs() < 0.03,
            "{name}: std {std} vs CNTK {cstd}"
        );
        if name.contains("uniform") || name.contains("xavier") {
            // a uniform's bound: both draws reach within 1 % of it, neither beyond
            assert!(
                (max / cmax - 1.0).abs() < 0.01,
                "{name}: max {max} vs CNTK {cmax}"
            );
        }
    }
}
