//! Fuzz target: any bytes through the CTF index, parser and minibatch packing must
//! give data or a located error, never a panic. Run with
//! `cargo +nightly fuzz run ctf_parse` in fuzz/.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rntk::io::{
    CtfDeserializer, CtfOptions, ErrorPolicy, MinibatchSource, MinibatchSourceConfig, StreamDef,
    WarningSink,
};
use rntk::tensor::DType;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, text)) = data.split_first() else {
        return;
    };
    let options = CtfOptions {
        dtype: if cfg & 1 == 0 { DType::F32 } else { DType::F64 },
        policy: if cfg & 2 == 0 {
            ErrorPolicy::Fail
        } else {
            ErrorPolicy::SkipSequence
        },
        chunk_bytes: [7, 64, 1 << 20, 32 << 20][usize::from(cfg >> 2 & 3)],
        warnings: Arc::new(WarningSink::silent()),
    };
    let streams = [
        StreamDef::dense("x", 3),
        StreamDef::sparse("y", 5).field("y"),
        StreamDef::dense("l", 1).field("label"),
    ];
    // The streams a file mentions vary; also try a single optional-looking stream.
    let streams: &[StreamDef] = if cfg & 16 == 0 {
        &streams
    } else {
        &streams[..1]
    };
    if let Ok(sets) = rntk::io::ctf::parse_all("fuzz.ctf", text, streams, options.clone()) {
        for (k, b) in sets.streams.iter().enumerate() {
            assert_eq!(b.seq_rows.len(), sets.num_sequences() + 1, "stream {k}");
        }
    }
    let Ok(d) = CtfDeserializer::from_bytes("fuzz.ctf", text.to_vec(), streams, options) else {
        return;
    };
    let config = MinibatchSourceConfig {
        randomize: cfg & 32 != 0,
        randomization_window_in_chunks: 2,
        max_sweeps: 2,
        frame_mode: cfg & 64 != 0,
        truncation_length: if cfg & 64 == 0 && cfg & 128 != 0 {
            2
        } else {
            0
        },
        prefetch: false,
        ..MinibatchSourceConfig::default()
    };
    let Ok(mut src) = MinibatchSource::new(vec![Arc::new(d)], config) else {
        return;
    };
    for size in [1usize, 3, 8, 100] {
        match src.next_minibatch(size) {
            Ok(Some(mb)) => {
                for m in &mb.data {
                    assert_eq!(m.num_sequences, mb.keys.len());
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
});
