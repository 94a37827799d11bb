//! MinibatchSource behaviour beyond the oracle: randomization properties, bounded
//! window, checkpoints, joins by key, frame mode, truncation, skip policy, and the
//! in-memory source.

use rntk::io::{
    Checkpoint, CtfDeserializer, CtfOptions, Deserializer, ErrorPolicy, InMemoryStream,
    MinibatchSource, MinibatchSourceConfig, MinibatchSourceFromData, StreamDef, WarningSink,
    INFINITELY_REPEAT,
};
use rntk::tensor::Layout;
use rntk::Error;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

fn temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rntk-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write temp");
    p
}

/// `n` sequences with ids 0..n, lengths 1..=7, dense x (dim 2) = (id, step) and a
/// one-row sparse label.
fn corpus(n: u64) -> String {
    let mut s = String::new();
    for i in 0..n {
        let len = (i * 7 + 3) % 7 + 1;
        for t in 0..len {
            s.push_str(&format!("{i} |x {i} {t}"));
            if t == 0 {
                s.push_str(&format!(" |l {}:1", i % 4));
            }
            s.push('\n');
        }
    }
    s
}

fn open(path: &PathBuf, chunk_bytes: usize, streams: &[StreamDef]) -> Arc<dyn Deserializer> {
    let o = CtfOptions {
        chunk_bytes,
        warnings: Arc::new(WarningSink::silent()),
        ..CtfOptions::default()
    };
    Arc::new(CtfDeserializer::with_options(path, streams, o).expect("open"))
}

fn xl() -> Vec<StreamDef> {
    vec![StreamDef::dense("x", 2), StreamDef::sparse("l", 4)]
}

fn cfg(randomize: bool, seed: u64) -> MinibatchSourceConfig {
    MinibatchSourceConfig {
        randomize,
        randomization_seed: seed,
        randomization_window_in_chunks: 3,
        ..MinibatchSourceConfig::default()
    }
}

#[test]
fn randomized_sweeps_are_permutations_differ_and_repeat_from_the_seed() {
    let p = temp("rand.ctf", &corpus(200));
    let n = 200;
    // ~40 chunks of ~150 bytes: the window (3 chunks) is a small part of the data
    let mut a = MinibatchSource::new(vec![open(&p, 150, &xl())], cfg(true, 5)).expect("src");
    // minibatches may span two sweeps; split the keys by counting
    let mut keys = Vec::new();
    while keys.len() < 3 * n {
        let mb = a.next_minibatch(16).expect("ok").expect("more");
        assert!(a.resident_chunks() <= 3, "window of 3 chunks exceeded");
        // every value matches its key: x = (id, step), steps in order
        let x = mb.get("x").expect("x").data.to_sequences::<f32>();
        for (k, seq) in mb.keys.iter().zip(&x) {
            for (t, pair) in seq.chunks(2).enumerate() {
                assert_eq!(pair, [*k as f32, t as f32]);
            }
        }
        keys.extend(mb.keys);
    }
    let s: Vec<&[u64]> = keys.chunks(n).take(3).collect();
    for sweep in &s {
        let set: BTreeSet<u64> = sweep.iter().copied().collect();
        assert_eq!(set.len(), n, "each sweep visits every sequence once");
        assert_eq!(set.iter().next_back(), Some(&(n as u64 - 1)));
    }
    assert_ne!(s[0], s[1]);
    assert_ne!(s[1], s[2]);
    let sorted: Vec<u64> = (0..n as u64).collect();
    assert_ne!(s[0], &sorted[..], "randomized");
    // same seed, same order (with and without prefetch); other seed, other order
    let mut again_cfg = cfg(true, 5);
    again_cfg.prefetch = false;
    let mut b = MinibatchSource::new(vec![open(&p, 150, &xl())], again_cfg).expect("src");
    let mut keys_b = Vec::new();
    while keys_b.len() < 3 * n {
        keys_b.extend(b.next_minibatch(16).expect("ok").expect("more").keys);
    }
    assert_eq!(keys[..3 * n], keys_b[..3 * n]);
    let mut c = MinibatchSource::new(vec![open(&p, 150, &xl())], cfg(true, 6)).expect("src");
    let first: Vec<u64> = c.next_minibatch(64).expect("ok").expect("more").keys;
    assert_ne!(first[..], keys[..first.len()]);
}

#[test]
fn end_of_sweep_marks_the_minibatch_with_the_last_sequence() {
    let p = temp("eos.ctf", &corpus(50));
    let mut src = MinibatchSource::new(vec![open(&p, 100, &xl())], cfg(true, 1)).expect("src");
    let mut done = 0usize;
    let mut eos_seen = 0;
    for _ in 0..150 {
        let mb = src.next_minibatch(10).expect("ok").expect("endless");
        let before = done;
        done += mb.num_sequences();
        // a sweep ends inside this minibatch iff a multiple of 50 lies in (before, done]
        let crosses = (before / 50) != (done / 50);
        assert_eq!(mb.end_of_sweep(), crosses, "after {done} sequences");
        eos_seen += usize::from(crosses);
    }
    assert!(eos_seen >= 3);
}

#[test]
fn window_in_samples_bounds_memory() {
    let p = temp("win.ctf", &corpus(120));
    let c = MinibatchSourceConfig {
        randomization_window_in_chunks: 0,
        randomization_window_in_samples: 40,
        ..cfg(true, 2)
    };
    let mut src = MinibatchSource::new(vec![open(&p, 60, &xl())], c).expect("src");
    let mut seen = BTreeSet::new();
    for _ in 0..100 {
        let mb = src.next_minibatch(8).expect("ok").expect("more");
        // at most 40 samples resident (or a single chunk larger than that)
        assert!(
            src.resident_samples() <= 40 || src.resident_chunks() == 1,
            "{} samples in {} chunks",
            src.resident_samples(),
            src.resident_chunks()
        );
        seen.extend(mb.keys);
    }
    assert_eq!(seen.len(), 120);
}

fn collect(src: &mut MinibatchSource, n: usize, size: usize) -> Vec<(Vec<u64>, Vec<f32>, bool)> {
    (0..n)
        .filter_map(|_| src.next_minibatch(size).expect("ok"))
        .map(|mb| {
            let x = mb.get("x").expect("x").data.to_vec::<f32>();
            (mb.keys.clone(), x, mb.end_of_sweep())
        })
        .collect()
}

#[test]
fn checkpoint_restore_repeats_the_same_minibatches() {
    let p = temp("ckpt.ctf", &corpus(90));
    for (randomize, prefetch) in [(true, true), (true, false), (false, true)] {
        let c = MinibatchSourceConfig {
            prefetch,
            ..cfg(randomize, 11)
        };
        let mut src = MinibatchSource::new(vec![open(&p, 120, &xl())], c.clone()).expect("src");
        collect(&mut src, 17, 9);
        let state: Checkpoint = src.get_checkpoint_state();
        let after = collect(&mut src, 40, 9);
        src.restore_from_checkpoint(&state).expect("restore");
        assert_eq!(
            collect(&mut src, 40, 9),
            after,
            "same source, {randomize} {prefetch}"
        );
        // a fresh source restored from the state continues identically too
        let mut fresh = MinibatchSource::new(vec![open(&p, 120, &xl())], c).expect("src");
        fresh.restore_from_checkpoint(&state).expect("restore");
        assert_eq!(collect(&mut fresh, 40, 9), after);
        assert_eq!(fresh.current_position(), src.current_position());
    }
}

#[test]
fn deserializers_join_by_sequence_key() {
    // features in id order, labels in another order and with extra sequences
    let feats = temp("join_x.ctf", "3 |x 1 1\n3 |x 2 2\n5 |x 3 3\n9 |x 4 4\n");
    let labels = temp("join_l.ctf", "9 |l 2:1\n1 |l 0:1\n5 |l 1:1\n3 |l 3:1\n");
    let c = MinibatchSourceConfig {
        randomize: false,
        max_sweeps: 1,
        ..MinibatchSourceConfig::default()
    };
    let mut src = MinibatchSource::new(
        vec![
            open(&feats, 1 << 20, &[StreamDef::dense("x", 2)]),
            open(&labels, 1 << 20, &[StreamDef::sparse("l", 4)]),
        ],
        c.clone(),
    )
    .expect("src");
    let mb = src.next_minibatch(100).expect("ok").expect("data");
    assert_eq!(mb.keys, vec![3, 5, 9]);
    let l = mb.get("l").expect("l").data.to_sequences::<f32>();
    assert_eq!(
        l,
        vec![
            vec![0., 0., 0., 1.],
            vec![0., 1., 0., 0.],
            vec![0., 0., 1., 0.]
        ]
    );
    assert_eq!(mb.get("x").expect("x").num_samples, 4);
    // a key missing from the joined file is an error naming it
    let short = temp("join_short.ctf", "3 |l 3:1\n");
    let mut src = MinibatchSource::new(
        vec![
            open(&feats, 1 << 20, &[StreamDef::dense("x", 2)]),
            open(&short, 1 << 20, &[StreamDef::sparse("l", 4)]),
        ],
        c,
    )
    .expect("src");
    let e = src.next_minibatch(100).unwrap_err();
    assert!(e.to_string().contains("no sequence with id 5"), "{e}");
}

#[test]
fn frame_mode_delivers_batches_and_refuses_longer_sequences() {
    let p = temp("frames.ctf", "|x 1 |y 0:1\n|x 2 |y 1:1\n|x 3 |y 0:1\n");
    let c = MinibatchSourceConfig {
        randomize: false,
        frame_mode: true,
        max_sweeps: 1,
        ..MinibatchSourceConfig::default()
    };
    let streams = [StreamDef::dense("x", 1), StreamDef::sparse("y", 2)];
    let mut src = MinibatchSource::new(vec![open(&p, 1 << 20, &streams)], c.clone()).expect("src");
    let mb = src.next_minibatch(2).expect("ok").expect("data");
    let x = &mb.get("x").expect("x").data;
    assert_eq!(x.layout(), &Layout::Batch(2));
    assert_eq!(x.to_vec::<f32>(), vec![1., 2.]);
    let p = temp("frames_bad.ctf", "0 |x 1 |y 0:1\n0 |x 2\n");
    let mut src = MinibatchSource::new(vec![open(&p, 1 << 20, &streams)], c).expect("src");
    let e = src.next_minibatch(2).unwrap_err();
    assert!(
        e.to_string().contains("non-frame sequence of size 2"),
        "{e}"
    );
}

#[test]
fn one_row_target_stream_converts_to_a_batch() {
    // the seed program's shape: features per step, target on the first row
    let p = temp(
        "seed.ctf",
        "0 |features 0.1 |target 0.9\n0 |features 0.2\n1 |features 0.3 |target 0.4\n",
    );
    let streams = [
        StreamDef::dense("features", 1),
        StreamDef::dense("target", 1),
    ];
    let c = MinibatchSourceConfig {
        randomize: false,
        max_sweeps: 1,
        ..MinibatchSourceConfig::default()
    };
    let mut src = MinibatchSource::new(vec![open(&p, 1 << 20, &streams)], c).expect("src");
    let mb = src.next_minibatch(10).expect("ok").expect("data");
    let t = mb.get("target").expect("target").to_batch().expect("batch");
    assert_eq!(t.layout(), &Layout::Batch(2));
    assert_eq!(t.to_vec::<f32>(), vec![0.9, 0.4]);
    assert!(mb.get("features").expect("f").to_batch().is_err());
}

#[test]
fn configuration_conflicts_are_refused() {
    let p = temp("conf.ctf", &corpus(3));
    let d = open(&p, 1 << 20, &xl());
    for c in [
        MinibatchSourceConfig {
            max_samples: 10,
            max_sweeps: 2,
            ..MinibatchSourceConfig::default()
        },
        MinibatchSourceConfig {
            randomization_window_in_samples: 10,
            ..MinibatchSourceConfig::default()
        },
        MinibatchSourceConfig {
            truncation_length: 4,
            frame_mode: true,
            ..MinibatchSourceConfig::default()
        },
    ] {
        let r = MinibatchSource::new(vec![d.clone()], c);
        assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
    }
    let mut src = MinibatchSource::new(vec![d], MinibatchSourceConfig::default()).expect("src");
    assert!(src.next_minibatch(0).is_err());
}

#[test]
fn skip_policy_drops_malformed_sequences_and_keeps_end_of_sweep() {
    let p = temp("skip.ctf", "0 |x 1 1\n1 |x 2 q\n2 |x 3 3\n3 |x 4 4 4\n");
    let sink = Arc::new(WarningSink::silent());
    let o = CtfOptions {
        policy: ErrorPolicy::SkipSequence,
        warnings: sink.clone(),
        ..CtfOptions::default()
    };
    let d = Arc::new(CtfDeserializer::with_options(&p, &[StreamDef::dense("x", 2)], o).expect("d"));
    let c = MinibatchSourceConfig {
        randomize: false,
        max_sweeps: 1,
        ..MinibatchSourceConfig::default()
    };
    let mut src = MinibatchSource::new(vec![d], c).expect("src");
    let mb = src.next_minibatch(100).expect("ok").expect("data");
    assert_eq!(mb.keys, vec![0, 2]);
    assert!(
        mb.end_of_sweep(),
        "the skipped last sequence still ends the sweep"
    );
    assert_eq!(sink.skipped_sequences(), 2);
    // with the default policy the same file fails, naming the place
    let mut src = MinibatchSource::new(
        vec![open(&p, 1 << 20, &[StreamDef::dense("x", 2)])],
        MinibatchSourceConfig {
            randomize: false,
            ..MinibatchSourceConfig::default()
        },
    )
    .expect("src");
    let e = src.next_minibatch(100).unwrap_err();
    assert!(e.to_string().contains(":2:8: found \"q\""), "{e}");
}

#[test]
fn truncation_cuts_sequences_into_slots_and_checkpoints_mid_sequence() {
    let p = temp("bptt.ctf", &corpus(30));
    let c = MinibatchSourceConfig {
        randomize: false,
        truncation_length: 3,
        max_sweeps: 1,
        ..MinibatchSourceConfig::default()
    };
    let streams = [StreamDef::dense("x", 2)];
    let mut src = MinibatchSource::new(vec![open(&p, 1 << 20, &streams)], c.clone()).expect("src");
    // reassemble every data sequence from its pieces, per slot
    let mut rebuilt: std::collections::BTreeMap<u64, Vec<f32>> = Default::default();
    let mut mbs = 0;
    let mut state = None;
    let mut after = Vec::new();
    while let Some(mb) = src.next_minibatch(6).expect("ok") {
        assert!(mb.pieces.iter().all(|p| p.slot < 2));
        let x = mb.get("x").expect("x").data.to_sequences::<f32>();
        for ((k, piece), v) in mb.keys.iter().zip(&mb.pieces).zip(&x) {
            assert!(v.len() <= 6, "piece of at most 3 steps");
            let e = rebuilt.entry(*k).or_default();
            assert_eq!(e.len(), piece.offset * 2, "pieces arrive in order");
            e.extend(v);
        }
        mbs += 1;
        if mbs == 5 {
            state = Some(src.get_checkpoint_state());
        }
        if mbs > 5 {
            after.push((mb.keys.clone(), x));
        }
    }
    assert_eq!(rebuilt.len(), 30);
    for (k, v) in &rebuilt {
        let len = (k * 7 + 3) % 7 + 1;
        let want: Vec<f32> = (0..len).flat_map(|t| [*k as f32, t as f32]).collect();
        assert_eq!(v, &want, "sequence {k}");
    }
    let state = state.expect("checkpoint");
    assert!(
        state.slots.iter().flatten().any(|s| s.2 > 0),
        "mid-sequence"
    );
    let mut again = MinibatchSource::new(vec![open(&p, 1 << 20, &streams)], c).expect("src");
    again.restore_from_checkpoint(&state).expect("restore");
    let mut redo = Vec::new();
    while let Some(mb) = again.next_minibatch(6).expect("ok") {
        redo.push((
            mb.keys.clone(),
            mb.get("x").expect("x").data.to_sequences::<f32>(),
        ));
    }
    assert_eq!(redo, after);
}

#[test]
fn max_sweeps_and_infinite_repeat() {
    let p = temp("sweeps.ctf", &corpus(5));
    let c = MinibatchSourceConfig {
        randomize: false,
        max_sweeps: 3,
        ..MinibatchSourceConfig::default()
    };
    let mut src = MinibatchSource::new(vec![open(&p, 1 << 20, &xl())], c).expect("src");
    let mut n = 0;
    while let Some(mb) = src.next_minibatch(1).expect("ok") {
        n += mb.num_sequences();
    }
    assert_eq!(n, 15);
    let c = MinibatchSourceConfig {
        max_sweeps: INFINITELY_REPEAT,
        ..cfg(true, 0)
    };
    let mut src = MinibatchSource::new(vec![open(&p, 1 << 20, &xl())], c).expect("src");
    for _ in 0..100 {
        assert!(src.next_minibatch(3).expect("ok").is_some());
    }
}

// --- MinibatchSourceFromData -------------------------------------------------

fn from_data_oracle() -> serde_json::Value {
    let p = format!(
        "{}/../../tests/fixtures/cntk_reader/from_data_oracle.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(p).expect("fixture")).expect("json")
}

#[test]
fn from_data_matches_cntk() {
    let o = from_data_oracle();
    for case in o["cases"].as_array().expect("cases") {
        let lens: Vec<usize> = case["lengths"]
            .as_array()
            .expect("lengths")
            .iter()
            .map(|v| v.as_u64().expect("len") as usize)
            .collect();
        let seqs: Vec<Vec<f32>> = lens
            .iter()
            .enumerate()
            .map(|(i, &l)| vec![i as f32; l])
            .collect();
        let max = case["max_samples"].as_u64().unwrap_or(INFINITELY_REPEAT);
        let size = case["size"].as_u64().expect("size") as usize;
        let mut src = MinibatchSourceFromData::new(
            vec![InMemoryStream::sequences("x", [1], &seqs).expect("stream")],
            max,
        )
        .expect("src");
        let mbs = case["minibatches"].as_array().expect("mbs");
        for (m, w) in mbs.iter().enumerate() {
            let mb = src.next_minibatch(size).expect("ok");
            if w.get("error").is_some() {
                // CNTK fails here (its 0-sequence bug); rntk delivers one sequence
                let mb = mb.expect("one sequence");
                assert_eq!(mb.num_sequences(), 1);
                break;
            }
            let mb = mb.unwrap_or_else(|| panic!("{case}: ended at {m}"));
            let mut keys = mb.keys.clone();
            keys.sort_unstable();
            let want: Vec<u64> = w["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .map(|k| k.as_u64().expect("k"))
                .collect();
            assert_eq!(keys, want, "{case}: minibatch {m}");
            let d = mb.get("x").expect("x");
            assert_eq!(d.num_samples as u64, w["num_samples"].as_u64().expect("n"));
            assert_eq!(
                d.end_of_sweep,
                w["end_of_sweep"].as_bool().expect("eos"),
                "{case}: {m}"
            );
            let st = src.get_checkpoint_state();
            assert_eq!(st.cursor as u64, w["cursor"].as_u64().expect("c"));
            assert_eq!(
                st.total_num_samples,
                w["total_num_samples"].as_u64().expect("t")
            );
        }
        if mbs.len() < 12 && mbs.last().and_then(|w| w.get("error")).is_none() {
            assert!(
                src.next_minibatch(size).expect("ok").is_none(),
                "{case}: should end"
            );
        }
    }
}

#[test]
fn from_data_shuffles_per_sweep_and_checkpoints() {
    let seqs: Vec<Vec<f32>> = (0..40).map(|i| vec![i as f32; i % 3 + 1]).collect();
    let labels: Vec<f32> = (0..40).map(|i| i as f32 * 10.0).collect();
    let make = || {
        MinibatchSourceFromData::new(
            vec![
                InMemoryStream::sequences("x", [1], &seqs).expect("x"),
                InMemoryStream::samples("y", [1], &labels).expect("y"),
                InMemoryStream::one_hot_sequences::<f32>(
                    "w",
                    3,
                    &(0..40).map(|i| vec![i % 3; i % 3 + 1]).collect::<Vec<_>>(),
                )
                .expect("w"),
            ],
            INFINITELY_REPEAT,
        )
        .expect("src")
        .shuffled(3)
    };
    let mut src = make();
    let mut sweeps: Vec<Vec<u64>> = vec![Vec::new()];
    let mut state = None;
    let mut after = Vec::new();
    for i in 0..40 {
        let mb = src.next_minibatch(7).expect("ok").expect("endless");
        let y = mb.get("y").expect("y");
        assert_eq!(y.data.layout(), &Layout::Batch(mb.num_sequences()));
        let yv = y.data.to_vec::<f32>();
        for (k, v) in mb.keys.iter().zip(&yv) {
            assert_eq!(*v, *k as f32 * 10.0);
        }
        assert!(mb.get("w").expect("w").data.is_sparse());
        if i == 9 {
            state = Some(src.get_checkpoint_state());
        }
        if i > 9 {
            after.push(mb.keys.clone());
        }
        sweeps.last_mut().expect("s").extend(&mb.keys);
        if mb.end_of_sweep() {
            sweeps.push(Vec::new());
        }
    }
    assert!(sweeps.len() >= 3);
    for s in &sweeps[..2] {
        assert_eq!(s.iter().copied().collect::<BTreeSet<u64>>().len(), 40);
        assert_eq!(s.len(), 40);
    }
    assert_ne!(sweeps[0], sweeps[1]);
    let mut again = make();
    again
        .restore_from_checkpoint(&state.expect("state"))
        .expect("restore");
    let redo: Vec<Vec<u64>> = (0..30)
        .map(|_| again.next_minibatch(7).expect("ok").expect("more").keys)
        .collect();
    assert_eq!(redo, after);
    // mismatched stream lengths are refused
    let r = MinibatchSourceFromData::new(
        vec![
            InMemoryStream::sequences("x", [1], &seqs).expect("x"),
            InMemoryStream::samples("y", [1], &labels[..3]).expect("y"),
        ],
        INFINITELY_REPEAT,
    );
    assert!(r.is_err());
}
