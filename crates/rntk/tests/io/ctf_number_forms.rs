//! Property: values in every textual form, anywhere in long rows (where the reader
//! finds value ends 64 bytes at a time) and near the end of the file (where it
//! reads byte by byte), give exactly the value of a correct parser (the standard
//! library's), in f32 and f64; a malformed value anywhere is reported at its own
//! line and column.

use proptest::prelude::*;
use rntk::io::ctf::parse_all;
use rntk::io::{CtfOptions, Floats, StreamDef, WarningSink};
use rntk::tensor::DType;
use rntk::Error;
use std::sync::Arc;

/// A number as CTF data may write it (every form here is valid for `str::parse`).
fn number() -> BoxedStrategy<String> {
    prop_oneof![
        // the usual `%.6f`
        (-2.0e3f64..2.0e3).prop_map(|x| format!("{x:.6}")),
        (-1.0f64..1.0, 0usize..10).prop_map(|(x, d)| format!("{x:.d$}")),
        (0u64..100_000_000_000).prop_map(|n| n.to_string()),
        ("[+-]?", "[0-9]{0,9}", "[0-9]{1,10}").prop_map(|(s, i, f)| format!("{s}{i}.{f}")),
        ("[+-]?", "[0-9]{1,9}").prop_map(|(s, i)| format!("{s}{i}.")),
        // short tokens with the point at every place (the window's point mask)
        ("[+-]?", "[0-9]{1,9}", 0usize..10).prop_map(|(s, d, k)| {
            let k = k.min(d.len());
            format!("{s}{}.{}", &d[..k], &d[k..])
        }),
        ("[+-]?[0-9]{1,4}(\\.[0-9]{0,4})?", "[eE][+-]?[0-9]{1,2}")
            .prop_map(|(m, e)| format!("{m}{e}")),
        "[0-9]{18,24}(\\.[0-9]{1,20})?",
        any::<f32>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| format!("{v:e}")),
    ]
    .boxed()
}

fn blanks() -> impl Strategy<Value = String> {
    prop::sample::select(vec![" ", " ", " ", "\t", "  ", " \t "]).prop_map(str::to_string)
}

#[derive(Clone, Debug)]
struct Case {
    dim: usize,
    /// Per row: (blank, number) pairs, and blanks before the next field.
    rows: Vec<(Vec<(String, String)>, String)>,
    f64: bool,
    /// Replace one value (row, position) by a malformed token.
    bad: Option<(usize, usize, String)>,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..50, 1usize..12, any::<bool>()).prop_flat_map(|(dim, nrows, f64_)| {
        (
            prop::collection::vec(
                (
                    prop::collection::vec((blanks(), number()), dim),
                    prop::sample::select(vec!["", " ", "\t ", "  "]).prop_map(str::to_string),
                ),
                nrows,
            ),
            prop::option::of((
                0..nrows,
                0..dim,
                prop::sample::select(vec![
                    "1x", "1e", "1e+", "--1", "1.2.3", "-", ".", "0x10", "nan", "1,5", "+-2", "-.",
                    "+.", "..", "1..", ".5.", "-1.2.", "12.3.45",
                ])
                .prop_map(str::to_string),
            )),
        )
            .prop_map(move |(rows, bad)| Case {
                dim,
                rows,
                f64: f64_,
                bad,
            })
    })
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let mut text = String::new();
    let mut bad_at: Option<(u64, u64)> = None;
    for (r, (vals, tail)) in c.rows.iter().enumerate() {
        let line_start = text.len();
        text.push_str(&format!("{r} |x"));
        for (k, (b, v)) in vals.iter().enumerate() {
            text.push_str(b);
            match &c.bad {
                Some((br, bk, tok)) if *br == r && *bk == k => {
                    bad_at = Some((r as u64 + 1, (text.len() - line_start) as u64 + 1));
                    text.push_str(tok);
                }
                _ => text.push_str(v),
            }
        }
        text.push_str(tail);
        text.push_str("|y 1\n");
    }
    let streams = [StreamDef::dense("x", c.dim), StreamDef::dense("y", 1)];
    let opts = CtfOptions {
        dtype: if c.f64 { DType::F64 } else { DType::F32 },
        warnings: Arc::new(WarningSink::silent()),
        ..CtfOptions::default()
    };
    let got = parse_all("t.ctf", text.as_bytes(), &streams, opts);
    if let Some((line, column)) = bad_at {
        match got {
            Err(Error::Reader {
                line: l, column: k, ..
            }) => {
                prop_assert_eq!((l, k), (line, column), "{}", text);
            }
            other => prop_assert!(
                false,
                "expected a reader error, got {:?}",
                other.map(|_| ())
            ),
        }
        return Ok(());
    }
    let set = match got {
        Ok(s) => s,
        Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text}"))),
    };
    let want: Vec<&str> = c
        .rows
        .iter()
        .flat_map(|(vals, _)| vals.iter().map(|(_, v)| v.as_str()))
        .collect();
    match &set.streams[0].values {
        Floats::F32(v) => {
            prop_assert_eq!(v.len(), want.len());
            for (g, w) in v.iter().zip(&want) {
                let w: f32 = w.parse().expect("valid");
                // f32 overflow is an error for the reader; std gives infinity
                if w.is_finite() {
                    prop_assert_eq!(g.to_bits(), w.to_bits(), "{}", w);
                }
            }
        }
        Floats::F64(v) => {
            prop_assert_eq!(v.len(), want.len());
            for (g, w) in v.iter().zip(&want) {
                let w: f64 = w.parse().expect("valid");
                prop_assert_eq!(g.to_bits(), w.to_bits(), "{}", w);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
    #[test]
    fn every_number_form_reads_as_std_parses_it(c in case()) {
        // numbers that overflow f32 are errors for an f32 reader
        let overflow = !c.f64 && c.rows.iter().any(|(vals, _)| {
            vals.iter().any(|(_, v)| v.parse::<f32>().is_ok_and(|x| x.is_infinite()))
        });
        if !overflow {
            check(&c)?;
        }
    }
}

#[test]
fn a_value_longer_than_the_window_and_one_at_the_file_end() {
    let long = format!("1{}.{}5", "0".repeat(30), "0".repeat(40));
    let text = format!("0 |x {long} -0.25 0.125\n0 |x 1 2 3\n");
    let set = parse_all(
        "t.ctf",
        text.as_bytes(),
        &[StreamDef::dense("x", 3)],
        CtfOptions::default(),
    )
    .expect("valid");
    let Floats::F32(v) = &set.streams[0].values else {
        panic!("f32 expected")
    };
    assert_eq!(
        v,
        &[long.parse::<f32>().unwrap(), -0.25, 0.125, 1.0, 2.0, 3.0]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    /// Sparse entries with indices of any length and values of any form: the
    /// entries of each row, sorted by index, with the values std parses.
    #[test]
    fn sparse_entries_read_as_std_parses_them(
        dim in prop::sample::select(vec![10usize, 10_000, 123_456_789]),
        rows in prop::collection::vec(
            prop::collection::btree_map(0u64..123_456_789, (blanks(), number()), 1..12),
            1..20,
        ),
    ) {
        let mut text = String::new();
        let mut want: Vec<Vec<(u32, f64)>> = Vec::new();
        for (r, entries) in rows.iter().enumerate() {
            text.push_str(&format!("{r} |s"));
            let mut row = Vec::new();
            for (&i, (b, v)) in entries {
                let i = i % dim as u64;
                if row.iter().any(|&(j, _)| j == i as u32) {
                    continue;
                }
                text.push_str(&format!("{b}{i}:{v}"));
                row.push((i as u32, v.parse::<f64>().expect("valid")));
            }
            row.sort_by_key(|e| e.0);
            want.push(row);
            text.push('\n');
        }
        let set = parse_all(
            "t.ctf",
            text.as_bytes(),
            &[StreamDef::sparse("s", dim)],
            CtfOptions { dtype: DType::F64, ..CtfOptions::default() },
        );
        let set = match set {
            Ok(s) => s,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text}"))),
        };
        let b = &set.streams[0];
        let Floats::F64(v) = &b.values else { panic!("f64 expected") };
        prop_assert_eq!(b.indptr.len(), want.len() + 1);
        for (r, row) in want.iter().enumerate() {
            let (a, e) = (b.indptr[r], b.indptr[r + 1]);
            let got: Vec<(u32, u64)> = (a..e).map(|k| (b.indices[k], v[k].to_bits())).collect();
            let exp: Vec<(u32, u64)> = row.iter().map(|&(i, x)| (i, x.to_bits())).collect();
            prop_assert_eq!(got, exp, "{}", text);
        }
    }
}
