//! Property: whatever the writer writes, the reader reads back bit for bit, for
//! random streams (dense/sparse, f32/f64), sequences and chunk sizes.

use proptest::prelude::*;
use rntk::io::{
    CtfDeserializer, CtfOptions, CtfWriter, Deserializer, Floats, SeqStream, SequenceSet,
    StreamDef, WarningSink,
};
use rntk::tensor::DType;
use std::sync::Arc;

#[derive(Clone, Debug)]
enum Data {
    Dense(Vec<f64>),
    Sparse(Vec<Vec<(u32, f64)>>),
}

#[derive(Clone, Debug)]
struct Case {
    f64: bool,
    /// (dim, sparse)
    streams: Vec<(usize, bool)>,
    /// per sequence, per stream
    seqs: Vec<Vec<Data>>,
    ids: bool,
    chunk: usize,
}

fn value(f64_: bool) -> BoxedStrategy<f64> {
    if f64_ {
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .boxed()
    } else {
        any::<f32>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(f64::from)
            .boxed()
    }
}

fn stream_data(dim: usize, sparse: bool, len: usize, f64_: bool) -> BoxedStrategy<Data> {
    if sparse {
        prop::collection::vec(
            prop::collection::btree_map(0..dim as u32, value(f64_), 0..dim.min(4) + 1)
                .prop_map(|m| m.into_iter().collect::<Vec<_>>()),
            len,
        )
        .prop_map(Data::Sparse)
        .boxed()
    } else {
        prop::collection::vec(value(f64_), len * dim)
            .prop_map(Data::Dense)
            .boxed()
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        prop::collection::vec((1usize..6, any::<bool>()), 1..4),
        any::<bool>(),
        prop::sample::select(vec![16usize, 64, 300, 1 << 20]),
    )
        .prop_flat_map(|(f64_, streams, ids, chunk)| {
            let s2 = streams.clone();
            let seq = (1usize..5).prop_flat_map(move |rows| {
                let per: Vec<BoxedStrategy<Data>> = s2
                    .iter()
                    .enumerate()
                    .map(|(k, &(dim, sparse))| {
                        // stream 0 spans every row, the others 1..=rows
                        if k == 0 {
                            stream_data(dim, sparse, rows, f64_)
                        } else {
                            (1..=rows)
                                .prop_flat_map(move |n| stream_data(dim, sparse, n, f64_))
                                .boxed()
                        }
                    })
                    .collect();
                per
            });
            let n_max = 12;
            (
                Just(f64_),
                Just(streams),
                prop::collection::vec(seq, 1..n_max),
                Just(ids),
                Just(chunk),
            )
        })
        .prop_map(|(f64_, streams, seqs, ids, chunk)| Case {
            f64: f64_,
            streams,
            seqs,
            ids,
            chunk,
        })
}

/// A stream's data in the writer's element type: dense values, sparse rows.
type Converted<T> = (Vec<T>, Vec<Vec<(u32, T)>>);

fn write<T: rntk::io::IoFloat>(c: &Case) -> Vec<u8> {
    let names: Vec<String> = (0..c.streams.len()).map(|k| format!("s{k}")).collect();
    let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let mut w = CtfWriter::new(Vec::new(), &refs).expect("writer");
    for (i, seq) in c.seqs.iter().enumerate() {
        let conv: Vec<Converted<T>> = seq
            .iter()
            .map(|d| match d {
                Data::Dense(v) => (v.iter().map(|&x| T::from_f64(x)).collect(), Vec::new()),
                Data::Sparse(rows) => (
                    Vec::new(),
                    rows.iter()
                        .map(|r| r.iter().map(|&(i, x)| (i, T::from_f64(x))).collect())
                        .collect(),
                ),
            })
            .collect();
        let streams: Vec<SeqStream<'_, T>> = conv
            .iter()
            .zip(&c.streams)
            .map(|((d, s), &(dim, sparse))| {
                if sparse {
                    SeqStream::Sparse { rows: s }
                } else {
                    SeqStream::Dense { dim, values: d }
                }
            })
            .collect();
        w.write_sequence(i as u64, &streams).expect("write");
    }
    let mut out = w.finish().expect("finish");
    if !c.ids {
        // a file without ids: one sequence per row, so only 1-row sequences
        let text = String::from_utf8(out).expect("utf8");
        out = text
            .lines()
            .map(|l| l.split_once(' ').map_or(l, |x| x.1).to_string() + "\n")
            .collect::<String>()
            .into_bytes();
    }
    out
}

fn read(c: &Case, bytes: Vec<u8>) -> SequenceSet {
    let defs: Vec<StreamDef> = c
        .streams
        .iter()
        .enumerate()
        .map(|(k, &(dim, sparse))| {
            if sparse {
                StreamDef::sparse(&format!("s{k}"), dim)
            } else {
                StreamDef::dense(&format!("s{k}"), dim)
            }
        })
        .collect();
    let o = CtfOptions {
        dtype: if c.f64 { DType::F64 } else { DType::F32 },
        chunk_bytes: c.chunk,
        warnings: Arc::new(WarningSink::silent()),
        ..CtfOptions::default()
    };
    let d = CtfDeserializer::from_bytes("prop.ctf", bytes, &defs, o).expect("index");
    let mut all: Option<SequenceSet> = None;
    for i in 0..d.chunks().len() {
        let s = d.load_chunk(i).expect("parse");
        assert_eq!(s.num_sequences(), d.chunks()[i].num_sequences);
        match &mut all {
            None => all = Some(s),
            Some(a) => a.append(&s).expect("append"),
        }
    }
    all.expect("data")
}

fn as_f64(f: &Floats) -> Vec<f64> {
    match f {
        Floats::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        Floats::F64(v) => v.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn write_then_read_gives_back_the_same_data(mut c in case()) {
        if !c.ids {
            for s in &mut c.seqs {
                for d in s.iter_mut() {
                    // keep only the first row of each stream
                    match d {
                        Data::Dense(_) => {}
                        Data::Sparse(rows) => rows.truncate(1),
                    }
                }
            }
            for seq in c.seqs.iter_mut() {
                for (d, &(dim, _)) in seq.iter_mut().zip(&c.streams) {
                    if let Data::Dense(v) = d { v.truncate(dim); }
                }
            }
        }
        let bytes = if c.f64 { write::<f64>(&c) } else { write::<f32>(&c) };
        let set = read(&c, bytes);
        prop_assert_eq!(set.num_sequences(), c.seqs.len());
        prop_assert!(set.valid.iter().all(|&v| v));
        for (k, &(dim, sparse)) in c.streams.iter().enumerate() {
            let b = &set.streams[k];
            let vals = as_f64(&b.values);
            for (i, seq) in c.seqs.iter().enumerate() {
                let (r0, r1) = (b.seq_rows[i], b.seq_rows[i + 1]);
                match &seq[k] {
                    Data::Dense(v) => {
                        prop_assert!(!sparse);
                        let got = &vals[r0 * dim..r1 * dim];
                        prop_assert_eq!(got.len(), v.len());
                        for (a, e) in got.iter().zip(v) {
                            prop_assert_eq!(a.to_bits(), e.to_bits());
                        }
                    }
                    Data::Sparse(rows) => {
                        prop_assert_eq!(r1 - r0, rows.len());
                        for (t, row) in rows.iter().enumerate() {
                            let (a, e) = (b.indptr[r0 + t], b.indptr[r0 + t + 1]);
                            let got: Vec<(u32, u64)> = (a..e).map(|j| (b.indices[j], vals[j].to_bits())).collect();
                            let want: Vec<(u32, u64)> = row.iter().map(|&(i, x)| (i, x.to_bits())).collect();
                            prop_assert_eq!(got, want);
                        }
                    }
                }
            }
        }
    }
}
