//! CNTK 2.7 oracle: minibatch composition with randomize=false and the exact float32
//! values, from tests/fixtures/cntk_reader (made by make_fixtures.py with CNTK).

use rntk::io::{
    CtfDeserializer, CtfOptions, Deserializer, MinibatchSource, MinibatchSourceConfig, StreamDef,
    WarningSink, FULL_DATA_SWEEP,
};
use serde_json::Value as Json;
use std::sync::Arc;

fn fixture(name: &str) -> String {
    format!(
        "{}/../../tests/fixtures/cntk_reader/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn oracle() -> Json {
    let text = std::fs::read_to_string(fixture("oracle.json")).expect("oracle.json");
    serde_json::from_str(&text).expect("valid json")
}

fn open(file: &str, streams: &[StreamDef]) -> Arc<dyn Deserializer> {
    let o = CtfOptions {
        warnings: Arc::new(WarningSink::silent()),
        ..CtfOptions::default()
    };
    Arc::new(CtfDeserializer::with_options(fixture(file), streams, o).expect("open fixture"))
}

fn u64_opt(v: &Json) -> u64 {
    match v {
        Json::String(s) => s.parse().expect("number"),
        v => v.as_u64().expect("number"),
    }
}

#[test]
fn composition_matches_cntk() {
    let o = oracle();
    let cases = o["cases"].as_array().expect("cases");
    assert!(cases.len() >= 20);
    for (ci, case) in cases.iter().enumerate() {
        let mut defs = Vec::new();
        for (name, s) in case["streams"].as_object().expect("streams") {
            let dim = s["dim"].as_u64().expect("dim") as usize;
            let d = if s["sparse"].as_bool() == Some(true) {
                StreamDef::sparse(name, dim)
            } else {
                StreamDef::dense(name, dim)
            };
            defs.push(d.defines_mb_size(s["defines_mb_size"].as_bool() == Some(true)));
        }
        let file = case["file"].as_str().expect("file");
        let mut cfg = MinibatchSourceConfig {
            randomize: false,
            prefetch: ci % 2 == 0,
            ..MinibatchSourceConfig::default()
        };
        for (k, v) in case["options"].as_object().expect("options") {
            match k.as_str() {
                "max_sweeps" => cfg.max_sweeps = u64_opt(v),
                "max_samples" => cfg.max_samples = u64_opt(v),
                "frame_mode" => cfg.frame_mode = v.as_bool() == Some(true),
                other => panic!("unknown option {other}"),
            }
        }
        let mut src = MinibatchSource::new(vec![open(file, &defs)], cfg).expect("source");
        let size = case["size"].as_u64().expect("size") as usize;
        let want = case["minibatches"].as_array().expect("minibatches");
        let ctx = format!("case {ci}: {file} size {size} {:?}", case["options"]);
        for (m, w) in want.iter().enumerate() {
            let mb = src
                .next_minibatch(size)
                .expect("minibatch")
                .unwrap_or_else(|| panic!("{ctx}: ended early at minibatch {m}"));
            let mut keys = mb.keys.clone();
            keys.sort_unstable();
            let wkeys: Vec<u64> = w["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .map(|k| k.as_u64().expect("key"))
                .collect();
            assert_eq!(keys, wkeys, "{ctx}: minibatch {m} sequences");
            for (name, n) in w["num_samples"].as_object().expect("num_samples") {
                let d = mb.get(name).expect("stream");
                assert_eq!(
                    d.num_samples as u64,
                    n.as_u64().expect("n"),
                    "{ctx}: minibatch {m} stream {name}"
                );
                assert_eq!(d.data.num_samples(), d.num_samples);
                assert_eq!(
                    d.num_sequences as u64,
                    w["num_sequences"].as_u64().expect("n")
                );
            }
            assert_eq!(
                mb.end_of_sweep(),
                w["end_of_sweep"].as_bool().expect("eos"),
                "{ctx}: minibatch {m} end_of_sweep"
            );
            assert_eq!(
                src.get_checkpoint_state().samples,
                w["position"].as_u64().expect("pos"),
                "{ctx}: minibatch {m} position"
            );
        }
        // CNTK stopped after these (the fixture caps at 200 for endless sources)
        if want.len() < 200 {
            assert!(
                src.next_minibatch(size).expect("ok").is_none(),
                "{ctx}: should end"
            );
        }
    }
}

#[test]
fn parsed_float32_values_are_bit_identical_to_cntk() {
    let o = oracle();
    let bits: Vec<u32> = o["values_f32_bits"]
        .as_array()
        .expect("bits")
        .iter()
        .map(|b| b.as_u64().expect("u32") as u32)
        .collect();
    let d = open(
        "values.ctf",
        &[StreamDef::dense("v", 4), StreamDef::dense("k", 1)],
    );
    let cfg = MinibatchSourceConfig {
        randomize: false,
        max_samples: FULL_DATA_SWEEP,
        ..MinibatchSourceConfig::default()
    };
    let mut src = MinibatchSource::new(vec![d], cfg).expect("source");
    let mb = src.next_minibatch(1 << 20).expect("ok").expect("data");
    let got: Vec<u32> = mb
        .get("v")
        .expect("v")
        .data
        .to_vec::<f32>()
        .iter()
        .map(|v| v.to_bits())
        .collect();
    assert_eq!(got.len(), bits.len());
    let differ: Vec<usize> = (0..bits.len()).filter(|&i| got[i] != bits[i]).collect();
    assert!(
        differ.is_empty(),
        "values differing from CNTK at {differ:?}"
    );
}
