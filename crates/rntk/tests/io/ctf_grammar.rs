//! CTF grammar, values and every diagnostic of readers.md §1 (one test per case).

use rntk::io::ctf::parse_all;
use rntk::io::{CtfOptions, ErrorPolicy, Floats, SequenceSet, StreamDef, WarningSink};
use rntk::tensor::DType;
use rntk::Error;
use std::sync::Arc;

fn opts() -> (CtfOptions, Arc<WarningSink>) {
    let sink = Arc::new(WarningSink::silent());
    (
        CtfOptions {
            warnings: sink.clone(),
            ..CtfOptions::default()
        },
        sink,
    )
}

fn parse(text: &str, streams: &[StreamDef]) -> Result<SequenceSet, Error> {
    parse_all("t.ctf", text.as_bytes(), streams, opts().0)
}

fn x3y2() -> Vec<StreamDef> {
    vec![StreamDef::dense("x", 3), StreamDef::sparse("y", 2)]
}

/// Dense per-sequence data of stream `s` (sparse densified).
fn seqs(set: &SequenceSet, s: usize) -> Vec<Vec<f32>> {
    let b = &set.streams[s];
    let Floats::F32(v) = &b.values else {
        panic!("f32 expected")
    };
    (0..set.num_sequences())
        .map(|i| {
            let (r0, r1) = (b.seq_rows[i], b.seq_rows[i + 1]);
            if b.sparse {
                let mut d = vec![0.0; (r1 - r0) * b.sample_size];
                for r in r0..r1 {
                    for k in b.indptr[r]..b.indptr[r + 1] {
                        d[(r - r0) * b.sample_size + b.indices[k] as usize] += v[k];
                    }
                }
                d
            } else {
                v[r0 * b.sample_size..r1 * b.sample_size].to_vec()
            }
        })
        .collect()
}

/// The error's (line, column, text, expected) — panics if it is not a reader error.
fn err(text: &str, streams: &[StreamDef]) -> (u64, u64, String, String) {
    match parse(text, streams) {
        Err(Error::Reader {
            file,
            line,
            column,
            text,
            expected,
        }) => {
            assert_eq!(file, "t.ctf");
            (line, column, text, expected)
        }
        other => panic!("expected a reader error for {text:?}, got {other:?}"),
    }
}

#[test]
fn the_readers_md_example() {
    let s = parse(
        "0 |x 1 2 3 |y 0:1\n0 |x 4 5 6\n1 |x 7 8 9 |y 1:1 |# comment\n",
        &x3y2(),
    )
    .unwrap();
    assert_eq!(s.keys, vec![0, 1]);
    assert_eq!(
        seqs(&s, 0),
        vec![vec![1., 2., 3., 4., 5., 6.], vec![7., 8., 9.]]
    );
    assert_eq!(seqs(&s, 1), vec![vec![1., 0.], vec![0., 1.]]);
    assert_eq!(s.lines, vec![1, 3]);
}

#[test]
fn accepted_number_forms() {
    let s = parse(
        "|x 1 +1 -0\n|x 0. 007 1e-1\n|x -2.5E+1 1E3 0.123456789012\n",
        &[StreamDef::dense("x", 3)],
    )
    .unwrap();
    assert_eq!(
        seqs(&s, 0),
        vec![
            vec![1., 1., -0.],
            vec![0., 7., 0.1],
            vec![-25., 1000., "0.123456789012".parse::<f32>().expect("f32")]
        ]
    );
}

#[test]
fn f64_streams_keep_double_precision() {
    let o = CtfOptions {
        dtype: DType::F64,
        warnings: Arc::new(WarningSink::silent()),
        ..CtfOptions::default()
    };
    let s = parse_all("t", b"0 |x 0.1 1e-300\n", &[StreamDef::dense("x", 2)], o).unwrap();
    assert_eq!(s.streams[0].values, Floats::F64(vec![0.1, 1e-300]));
}

#[test]
fn layout_freedom_order_tabs_crlf_and_no_blank_before_bar() {
    let s = parse("6|y 1:2\t|x 1\t 2  3\r\n6 |x 4 5 6|y 0:1\r\n", &x3y2()).unwrap();
    assert_eq!(seqs(&s, 0), vec![vec![1., 2., 3., 4., 5., 6.]]);
    assert_eq!(seqs(&s, 1), vec![vec![0., 2., 1., 0.]]);
}

#[test]
fn grouping_rows_without_ids_and_reappearing_ids() {
    // first row without id: every row is a sequence, later ids ignored
    let s = parse(
        "|x 1 1 1\n0 |x 2 2 2\n0 |x 3 3 3\n",
        &[StreamDef::dense("x", 3)],
    )
    .unwrap();
    assert_eq!(s.num_sequences(), 3);
    assert_eq!(s.keys, vec![0, 1, 2]);
    // a row without id continues; an old id reappearing starts a new sequence
    let s = parse(
        "5 |x 1 1 1\n|x 2 2 2\n6 |x 3 3 3\n|x 4 4 4\n5 |x 5 5 5\n",
        &[StreamDef::dense("x", 3)],
    )
    .unwrap();
    assert_eq!(s.keys, vec![5, 6, 5]);
    assert_eq!(seqs(&s, 0)[0].len(), 6);
    // leading zeros
    let s = parse("007 |x 1 1 1\n7 |x 1 1 1\n", &[StreamDef::dense("x", 3)]).unwrap();
    assert_eq!(s.keys, vec![7]);
}

#[test]
fn streams_of_different_lengths() {
    let s = parse(
        "0 |x 1 1 1\n0 |x 2 2 2 |y 0:1\n0 |x 3 3 3 |y 1:1\n",
        &x3y2(),
    )
    .unwrap();
    assert_eq!(s.streams[0].len_of(0), 3);
    assert_eq!(s.streams[1].len_of(0), 2);
    assert_eq!(s.samples_of(0), 3);
}

#[test]
fn field_names_differ_from_stream_names_and_unknown_streams_are_ignored() {
    let s = parse(
        "0 |features 1 2 |xx 9 |other 1:1 |l 0:1\n",
        &[
            StreamDef::dense("x", 2).field("features"),
            StreamDef::sparse("label", 2).field("l"),
        ],
    )
    .unwrap();
    assert_eq!(seqs(&s, 0), vec![vec![1., 2.]]);
    assert_eq!(seqs(&s, 1), vec![vec![1., 0.]]);
    // "x" does not match "xx"
    let (line, _, _, expected) = err("0 |xx 1 2 3\n", &[StreamDef::dense("x", 3)]);
    assert_eq!(line, 1);
    assert!(expected.contains("configured stream"), "{expected}");
}

#[test]
fn comment_ends_at_next_bar() {
    let (line, col, text, expected) = err("0 |x 1 2 3 |# see |x 9 9 9\n", &x3y2()[..1]);
    assert_eq!((line, col, text.as_str()), (1, 19, "|x"));
    assert!(
        expected.contains("at most one sample of stream 'x'"),
        "{expected}"
    );
    let s = parse("0 |x 1 2 3 |# a comment\n", &x3y2()[..1]).unwrap();
    assert_eq!(seqs(&s, 0), vec![vec![1., 2., 3.]]);
}

#[test]
fn sparse_duplicates_are_summed_and_any_order() {
    let s = parse("0 |y 1:1 0:0.5 1:2\n0 |y\n", &[StreamDef::sparse("y", 2)]).unwrap();
    assert_eq!(seqs(&s, 0), vec![vec![0.5, 3., 0., 0.]]);
    let b = &s.streams[0];
    assert_eq!(b.indices, vec![0, 1]);
    assert_eq!(b.indptr, vec![0, 2, 2]);
}

#[test]
fn too_few_dense_values_warns_and_pads_with_zeros() {
    let (o, sink) = opts();
    let s = parse_all("t.ctf", b"0 |x 1 2\n0 |x\n", &[StreamDef::dense("x", 3)], o).unwrap();
    assert_eq!(seqs(&s, 0), vec![vec![1., 2., 0., 0., 0., 0.]]);
    assert_eq!(sink.count(), 2);
    let w = &sink.warnings()[0];
    assert_eq!((w.line, w.column), (1, 5));
    assert!(w.message.contains("2 of 3 values"), "{}", w.message);
}

#[test]
fn too_many_dense_values() {
    let (l, c, t, e) = err("0 |x 1 2 3 4\n", &[StreamDef::dense("x", 3)]);
    assert_eq!((l, c, t.as_str()), (1, 12, "4"));
    assert!(e.contains("at most 3 values"), "{e}");
}

#[test]
fn bad_number_characters() {
    let x = [StreamDef::dense("x", 3)];
    for (row, col, text) in [
        ("0 |x 1 2 nan\n", 10, "nan"),
        ("0 |x 1,2,3\n", 6, "1,2,3"),
        ("0 |x 0x10\n", 6, "0x10"),
        ("0 |x 1 a\n", 8, "a"),
        ("0 |x inf\n", 6, "inf"),
        ("0 |x 1 2 3:1\n", 10, "3:1"),
    ] {
        let (l, c, t, e) = err(row, &x);
        assert_eq!((l, c, t.as_str()), (1, col, text), "{row}");
        assert!(e.contains("a number"), "{e}");
    }
}

#[test]
fn exponent_without_digits() {
    let (l, c, t, e) = err("0 |x 1e 2\n", &[StreamDef::dense("x", 3)]);
    assert_eq!((l, c, t.as_str()), (1, 6, "1e"));
    assert!(e.contains("exponent"), "{e}");
}

#[test]
fn sparse_index_out_of_range() {
    let (l, c, t, e) = err("0 |y 2:1\n", &[StreamDef::sparse("y", 2)]);
    assert_eq!((l, c, t.as_str()), (1, 6, "2:1"));
    assert!(e.contains("below 2"), "{e}");
}

#[test]
fn sparse_value_without_colon_or_dense_data_in_sparse_stream() {
    let (l, c, t, e) = err("0 |y 1 1\n", &[StreamDef::sparse("y", 2)]);
    assert_eq!((l, c, t.as_str()), (1, 6, "1"));
    assert!(e.contains("':' right after the sparse index 1"), "{e}");
    let (_, _, _, e) = err("0 |y 1:\n", &[StreamDef::sparse("y", 2)]);
    assert!(e.contains("a number"), "{e}");
    let (_, _, _, e) = err("0 |y 0: 1\n", &[StreamDef::sparse("y", 2)]);
    assert!(e.contains("a number"), "{e}");
}

#[test]
fn sparse_index_not_a_uint() {
    for (row, col) in [("0 |y -1:1\n", 6), ("0 |y :1\n", 6), ("0 |y 0:1,1:2\n", 8)] {
        let (l, c, _, e) = err(row, &[StreamDef::sparse("y", 2)]);
        assert_eq!((l, c), (1, col), "{row}");
        assert!(e.contains("index") || e.contains("a number"), "{row}: {e}");
    }
    let (_, _, _, e) = err(
        "0 |y 99999999999999999999999:1\n",
        &[StreamDef::sparse("y", 2)],
    );
    assert!(e.contains("64 bits"), "{e}");
}

#[test]
fn bar_followed_by_blank_or_line_end() {
    let (l, c, _, e) = err("0 | 1 2 3\n", &[StreamDef::dense("x", 3)]);
    assert_eq!((l, c), (1, 4));
    assert!(e.contains("stream name right after '|'"), "{e}");
    let (_, c, t, _) = err("0 |x 1 2 3 |\n", &[StreamDef::dense("x", 3)]);
    assert_eq!((c, t.as_str()), (13, "\n"));
}

#[test]
fn stream_twice_on_one_row() {
    let (l, c, t, e) = err(
        "0 |x 1 2 3\n0 |x 1 2 3 |x 4 5 6\n",
        &[StreamDef::dense("x", 3)],
    );
    assert_eq!((l, c, t.as_str()), (2, 12, "|x"));
    assert!(e.contains("at most one sample"), "{e}");
}

#[test]
fn empty_comment_only_id_only_rows() {
    let x = [StreamDef::dense("x", 3)];
    for text in [
        "0 |x 1 2 3\n\n0 |x 1 2 3\n",
        "0 |x 1 2 3\n0 |# just a comment\n",
        "0 |x 1 2 3\n0\n",
        "0 |x 1 2 3\n0 |z 1\n",
    ] {
        let (l, c, _, e) = err(text, &x);
        assert_eq!((l, c), (2, 1), "{text:?}");
        assert!(
            e.contains("at least one sample of a configured stream"),
            "{e}"
        );
    }
}

#[test]
fn trailing_blank_lines_are_accepted() {
    // extension: CNTK fails with "Empty input row"
    let s = parse("0 |x 1 2 3\n\n \n", &[StreamDef::dense("x", 3)]).unwrap();
    assert_eq!(s.num_sequences(), 1);
}

#[test]
fn more_rows_than_the_longest_stream() {
    // x on row 0 only, y on rows 1-3: the longest stream (y) misses row 1
    let (l, c, _, e) = err("0 |x 1 2 3\n0 |y 0:1\n0 |y 0:1\n0 |y 1:1\n", &x3y2());
    assert_eq!((l, c), (1, 1));
    assert!(
        e.contains("has 3 samples but the sequence has 4 rows"),
        "{e}"
    );
    // x on rows 0-2, y on rows 1-2 is fine
    parse(
        "0 |x 1 2 3\n0 |x 1 2 3 |y 0:1\n0 |x 1 2 3 |y 0:1\n",
        &x3y2(),
    )
    .unwrap();
}

#[test]
fn configured_stream_absent_from_a_sequence() {
    let (l, _, _, e) = err("0 |x 1 2 3 |y 0:1\n1 |x 1 2 3\n", &x3y2());
    assert_eq!(l, 2);
    assert!(
        e.contains("stream 'y'") && e.contains("sequence 1 has none"),
        "{e}"
    );
}

#[test]
fn no_final_newline_warns_and_reads() {
    let (o, sink) = opts();
    let s = parse_all(
        "t.ctf",
        b"0 |x 1 2 3\n1 |x 4 5 6",
        &[StreamDef::dense("x", 3)],
        o,
    )
    .unwrap();
    assert_eq!(seqs(&s, 0), vec![vec![1., 2., 3.], vec![4., 5., 6.]]);
    assert_eq!(sink.count(), 1);
    assert_eq!(sink.warnings()[0].line, 2);
}

#[test]
fn bad_sequence_ids() {
    for (text, line, col) in [
        ("a |x 1 2 3\n", 1, 1),
        ("0 |x 1 2 3\n-1 |x 1 2 3\n", 2, 1),
        ("0 |x 1 2 3\nabc |x 1 2 3\n", 2, 1),
        ("5a |x 1 2 3\n", 1, 2),
    ] {
        let (l, c, _, _) = err(text, &[StreamDef::dense("x", 3)]);
        assert_eq!((l, c), (line, col), "{text:?}");
    }
}

#[test]
fn missing_and_empty_files() {
    let e = rntk::io::CtfDeserializer::open("/nonexistent/file.ctf", &[StreamDef::dense("x", 1)])
        .unwrap_err();
    assert!(
        matches!(&e, Error::Io { file, .. } if file == "/nonexistent/file.ctf"),
        "{e}"
    );
    let (l, _, _, e) = err("", &[StreamDef::dense("x", 3)]);
    assert_eq!(l, 1);
    assert!(e.contains("empty"), "{e}");
}

#[test]
fn lone_carriage_return() {
    let (l, c, _, e) = err("0 |x 1 2\r3\n", &[StreamDef::dense("x", 3)]);
    assert_eq!((l, c), (1, 9));
    assert!(e.contains("carriage return"), "{e}");
}

#[test]
fn skip_policy_drops_only_the_bad_sequence() {
    let sink = Arc::new(WarningSink::silent());
    let o = CtfOptions {
        policy: ErrorPolicy::SkipSequence,
        warnings: sink.clone(),
        ..CtfOptions::default()
    };
    let s = parse_all(
        "t.ctf",
        b"0 |x 1 2 3\n1 |x 4 5 x\n1 |x 1 1 1\n2 |x 7 8 9\n3 |y 0:1\n4 |x 0 0 0\n",
        &x3y2()[..1],
        o,
    )
    .unwrap();
    assert_eq!(s.keys, vec![0, 1, 2, 3, 4]);
    assert_eq!(s.valid, vec![true, false, true, false, true]);
    assert_eq!(
        seqs(&s, 0),
        vec![
            vec![1., 2., 3.],
            vec![],
            vec![7., 8., 9.],
            vec![],
            vec![0., 0., 0.]
        ]
    );
    assert_eq!(sink.skipped_sequences(), 2);
    assert_eq!(sink.warnings()[0].line, 2);
}

#[test]
fn errors_display_file_line_column_text_and_expectation() {
    let e = parse("0 |x 1 2 3\n0 |x 1 2 q\n", &[StreamDef::dense("x", 3)]).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("t.ctf:2:10: found \"q\", expected a number"),
        "{msg}"
    );
}

#[test]
fn configuration_errors() {
    let bad = |s: &[StreamDef]| {
        let r = parse("0 |x 1\n", s);
        assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
    };
    bad(&[]);
    bad(&[StreamDef::dense("x", 0)]);
    bad(&[StreamDef::dense("x", 1).field("a b")]);
    bad(&[
        StreamDef::dense("x", 1),
        StreamDef::dense("x", 1).field("y"),
    ]);
    bad(&[
        StreamDef::dense("x", 1),
        StreamDef::dense("z", 1).field("x"),
    ]);
}
