//! CTF files that change underneath the reader, are not regular files, or never end
//! (issue 13): a file truncated, appended to or rewritten while it is read is an
//! error naming the file and what happened (the reader reads by offset: no SIGBUS);
//! a directory says so; a pipe is read within the stream limits; `/dev/zero` stops at
//! the row-length limit. Reading through the file gives exactly what the same text
//! in memory gives, whatever the block, range and chunk boundaries.

use rntk::io::{
    CtfDeserializer, CtfOptions, Deserializer, MinibatchSource, MinibatchSourceConfig, StreamDef,
    WarningSink,
};
use rntk::Error;
use std::path::PathBuf;
use std::sync::Arc;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rntk-ctf-changing-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `n` sequences (ids 0..n, 1..=9 rows) of a dense x (dim 3) and a one-row sparse
/// label: about 30 bytes a row.
fn corpus(n: u64) -> String {
    let mut s = String::new();
    for i in 0..n {
        let len = (i * 5 + 2) % 9 + 1;
        for t in 0..len {
            s.push_str(&format!(
                "{i}\t|x {}.{} -{t}.25 {}e-3",
                i % 97,
                t * 7 % 10,
                (i + t) % 1000
            ));
            if t == 0 {
                s.push_str(&format!("\t|l {}:1", i % 5));
            }
            s.push('\n');
        }
    }
    s
}

fn streams() -> Vec<StreamDef> {
    vec![StreamDef::dense("x", 3), StreamDef::sparse("l", 5)]
}

fn options(chunk_bytes: usize) -> CtfOptions {
    CtfOptions {
        chunk_bytes,
        warnings: Arc::new(WarningSink::silent()),
        ..CtfOptions::default()
    }
}

#[test]
fn a_file_reads_as_its_text_in_memory_across_blocks_ranges_and_chunks() {
    let d = dir("same");
    // ~14 MB: several 4 MiB index ranges, many 1 MiB blocks
    let text = corpus(90_000);
    assert!(text.len() > 12 << 20, "{}", text.len());
    let p = d.join("big.ctf");
    std::fs::write(&p, &text).unwrap();
    for chunk in [3 << 20, 32 << 20] {
        let file = CtfDeserializer::with_options(&p, &streams(), options(chunk)).unwrap();
        let mem = CtfDeserializer::from_bytes(
            "big.ctf",
            text.clone().into_bytes(),
            &streams(),
            options(chunk),
        )
        .unwrap();
        assert_eq!(file.chunks(), mem.chunks());
        assert!(file.chunks().len() >= if chunk < 4 << 20 { 4 } else { 1 });
        for i in 0..file.chunks().len() {
            assert_eq!(
                file.load_chunk(i).unwrap(),
                mem.load_chunk(i).unwrap(),
                "chunk {i}"
            );
        }
        // joins by key read single sequences from anywhere in the file
        let keys = [89_999, 0, 31_337, 4_096];
        assert_eq!(
            file.load_keys(&keys).unwrap(),
            mem.load_keys(&keys).unwrap()
        );
    }
}

#[test]
fn errors_deep_in_a_file_have_the_same_place_as_in_memory() {
    let d = dir("errors");
    let mut text = corpus(40_000);
    // a bad number on a row far into the file (after several ranges and blocks)
    let at = text.len() - 5_000;
    let row_start = text[..at].rfind('\n').unwrap() + 1;
    let line = text[..row_start].matches('\n').count() + 1;
    text.insert_str(
        row_start + text[row_start..].find("|x ").unwrap() + 3,
        "1.2.3 ",
    );
    let p = d.join("bad.ctf");
    std::fs::write(&p, &text).unwrap();
    let load_all = |d: &CtfDeserializer| -> Result<(), Error> {
        for i in 0..d.chunks().len() {
            d.load_chunk(i)?;
        }
        Ok(())
    };
    let file = CtfDeserializer::with_options(&p, &streams(), options(2 << 20)).unwrap();
    let mem = CtfDeserializer::from_bytes(
        &p.display().to_string(),
        text.into_bytes(),
        &streams(),
        options(2 << 20),
    )
    .unwrap();
    let (a, b) = (load_all(&file).unwrap_err(), load_all(&mem).unwrap_err());
    assert_eq!(a, b);
    match a {
        Error::Reader { line: l, .. } => assert_eq!(l, line as u64),
        e => panic!("{e}"),
    }
}

/// A change made to a data file by another program.
type Change = fn(&std::path::Path, &str);

/// The truncation that used to end a run with SIGBUS: the file shrinks between
/// chunks. Also appends and rewrites in place of the same size.
#[test]
fn a_file_changed_while_it_is_read_is_an_error_naming_it() {
    let d = dir("change");
    let text = corpus(20_000);
    let cases: [(&str, Change); 4] = [
        ("shrank", |p, t| {
            let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(t.len() as u64 / 2).unwrap();
        }),
        ("shrank", |p, _| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(0)
                .unwrap();
        }),
        ("grew", |p, _| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
            f.write_all(b"99999 |x 1 2 3\n").unwrap();
        }),
        ("modified", |p, t| {
            // same size, other bytes, a later modification time
            std::thread::sleep(std::time::Duration::from_millis(20));
            std::fs::write(p, t.replace("|x", "|y")).unwrap();
        }),
    ];
    for (k, (what, change)) in cases.iter().enumerate() {
        let p = d.join(format!("data{k}.ctf"));
        std::fs::write(&p, &text).unwrap();
        let r = CtfDeserializer::with_options(&p, &streams(), options(64 << 10)).unwrap();
        assert!(r.chunks().len() > 10);
        r.load_chunk(0).unwrap();
        change(&p, &text);
        let last = r.chunks().len() - 1;
        let e = r.load_chunk(last).unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, Error::Io { .. }), "{m}");
        assert!(m.starts_with(&p.display().to_string()), "{m}");
        assert!(m.contains("changed while it was being read"), "{m}");
        assert!(m.contains(what), "{what}: {m}");
        // and it stays an error
        assert!(r.load_chunk(0).is_err());
    }
}

/// Mid-sweep through a `MinibatchSource` with its prefetch thread: the next
/// minibatch after the truncation is an error, not a crash or a hang.
#[test]
fn a_source_reading_a_truncated_file_ends_with_an_error() {
    let d = dir("source");
    let text = corpus(20_000);
    let p = d.join("train.ctf");
    std::fs::write(&p, &text).unwrap();
    let de = CtfDeserializer::with_options(&p, &streams(), options(64 << 10)).unwrap();
    let mut src = MinibatchSource::new(
        vec![Arc::new(de) as Arc<dyn Deserializer>],
        MinibatchSourceConfig {
            randomize: true,
            max_sweeps: 3,
            ..MinibatchSourceConfig::default()
        },
    )
    .unwrap();
    src.next_minibatch(64).unwrap().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(text.len() as u64 / 3)
        .unwrap();
    let e = loop {
        match src.next_minibatch(256) {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the source ended without noticing the truncation"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(e.contains("train.ctf") && e.contains("shrank"), "{e}");
}

#[test]
fn directories_pipes_and_endless_devices() {
    let d = dir("kinds");
    let e = CtfDeserializer::open(&d, &streams())
        .unwrap_err()
        .to_string();
    assert!(e.contains("is a directory, expected a CTF file"), "{e}");
    assert!(!e.contains("os error 19"), "{e}");

    // /dev/zero: no line end ever; stops at the row limit (64 MiB), not at memory's end
    #[cfg(target_os = "linux")]
    {
        let e = CtfDeserializer::open("/dev/zero", &streams())
            .unwrap_err()
            .to_string();
        assert!(e.contains("/dev/zero"), "{e}");
        assert!(e.contains("row 1 is longer than 67108864 bytes"), "{e}");
        assert!(e.contains("RNTK_MAX_LINE_BYTES"), "{e}");
    }

    // a pipe is read into memory, and reads as the same text from a file would
    #[cfg(unix)]
    {
        let fifo = d.join("fifo.ctf");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            let text = corpus(100);
            let writer = {
                let (fifo, text) = (fifo.clone(), text.clone());
                std::thread::spawn(move || std::fs::write(&fifo, text).unwrap())
            };
            let r = CtfDeserializer::with_options(&fifo, &streams(), options(1 << 20)).unwrap();
            writer.join().unwrap();
            let mem =
                CtfDeserializer::from_bytes("m", text.into_bytes(), &streams(), options(1 << 20))
                    .unwrap();
            assert_eq!(r.load_chunk(0).unwrap(), mem.load_chunk(0).unwrap());
        }
    }
}
