//! CTF reader benchmark: generate a dense or sparse CTF file of a given size, then
//! read it end to end through `MinibatchSource` (or the raw chunk parser) and
//! report throughput and peak resident memory.
//!
//! ```text
//! cargo run --release --example ctf_bench -- gen dense  /tmp/dense.ctf  200
//! cargo run --release --example ctf_bench -- gen sparse /tmp/sparse.ctf 200
//! RAYON_NUM_THREADS=1 cargo run --release --example ctf_bench -- read dense /tmp/dense.ctf
//! cargo run --release --example ctf_bench -- parse sparse /tmp/sparse.ctf
//! cargo run --release --example ctf_bench -- read dense /tmp/huge.ctf 8   # randomized, 8-chunk window
//! cargo run --release --example ctf_bench -- hash dense /tmp/dense.ctf     # checksum of every minibatch
//! ```
//! Shapes: dense = sequences of 1..20 rows, `features` dim 40 ("%.6f" values) and a
//! one-row dense `labels` dim 10; sparse = the synth.py `lm` shape, sequences of 35
//! rows with one-hot `features` and `labels` over a 10000-word vocabulary.

use rntk::io::{
    CtfDeserializer, CtfOptions, Deserializer, MinibatchSource, MinibatchSourceConfig, StreamDef,
};
use std::io::Write;
use std::time::Instant;

fn streams(kind: &str) -> Vec<StreamDef> {
    if kind == "dense" {
        vec![
            StreamDef::dense("features", 40),
            StreamDef::dense("labels", 10),
        ]
    } else {
        vec![
            StreamDef::sparse("features", 10000),
            StreamDef::sparse("labels", 10000),
        ]
    }
}

/// xorshift64*: a fast deterministic generator for test data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn gen(kind: &str, path: &str, mb: u64) -> std::io::Result<()> {
    let target = mb << 20;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut written = 0u64;
    let mut line = String::new();
    let mut seq = 0u64;
    let mut prev_word = 0u64;
    use std::fmt::Write as _;
    while written < target {
        let rows = if kind == "dense" {
            1 + rng.below(20)
        } else {
            35
        };
        for t in 0..rows {
            line.clear();
            let _ = write!(line, "{seq} |features");
            if kind == "dense" {
                for _ in 0..40 {
                    let v = (rng.below(2_000_001) as f64 - 1_000_000.0) / 1_000_000.0;
                    let _ = write!(line, " {v:.6}");
                }
                if t == 0 {
                    line.push_str(" |labels");
                    let hot = rng.below(10);
                    for k in 0..10 {
                        line.push_str(if k == hot { " 1" } else { " 0" });
                    }
                }
            } else {
                let w = (prev_word * 4 + rng.below(7)) % 10000;
                let next = (w * 4 + rng.below(7)) % 10000;
                let _ = write!(line, " {w}:1 |labels {next}:1");
                prev_word = next;
            }
            line.push('\n');
            out.write_all(line.as_bytes())?;
            written += line.len() as u64;
        }
        seq += 1;
    }
    out.flush()?;
    println!(
        "wrote {path}: {:.1} MiB, {seq} sequences",
        written as f64 / 1048576.0
    );
    Ok(())
}

/// FNV-1a over 64-bit words.
fn mix(h: u64, x: u64) -> u64 {
    (h ^ x).wrapping_mul(0x0000_0100_0000_01B3)
}

/// A checksum of every value, index, layout and key a source delivers (to
/// check that a change of the reader keeps the minibatches bit for bit).
fn hash(kind: &str, path: &str) -> Result<(), Box<dyn std::error::Error>> {
    use rntk::tensor::ValueData;
    let d = CtfDeserializer::with_options(path, &streams(kind), CtfOptions::default())?;
    let cfg = MinibatchSourceConfig {
        randomize: false,
        max_sweeps: 1,
        ..MinibatchSourceConfig::default()
    };
    let mut src = MinibatchSource::new(vec![std::sync::Arc::new(d)], cfg)?;
    let mut h = 0xCBF2_9CE4_8422_2325u64;
    let mut n = 0u64;
    while let Some(mb) = src.next_minibatch(2048)? {
        n += 1;
        for k in &mb.keys {
            h = mix(h, *k);
        }
        for d in &mb.data {
            for b in d.data.layout().describe().bytes() {
                h = mix(h, u64::from(b));
            }
            match d.data.data() {
                ValueData::Dense(s) => {
                    for x in s.to_f64_vec() {
                        h = mix(h, x.to_bits());
                    }
                }
                ValueData::SparseF32(c) => {
                    h = c.indptr.iter().fold(h, |h, &x| mix(h, x as u64));
                    h = c.indices.iter().fold(h, |h, &x| mix(h, u64::from(x)));
                    h = c
                        .values
                        .iter()
                        .fold(h, |h, &x| mix(h, u64::from(x.to_bits())));
                }
                ValueData::SparseF64(c) => {
                    h = c.indptr.iter().fold(h, |h, &x| mix(h, x as u64));
                    h = c.indices.iter().fold(h, |h, &x| mix(h, u64::from(x)));
                    h = c.values.iter().fold(h, |h, &x| mix(h, x.to_bits()));
                }
            }
        }
    }
    println!("hash {kind} {path}: {n} minibatches, {h:016x}");
    Ok(())
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match arg(1) {
        "gen" => gen(arg(2), arg(3), arg(4).parse()?)?,
        "hash" => hash(arg(2), arg(3))?,
        mode @ ("read" | "parse") => {
            let (kind, path) = (arg(2), arg(3));
            let bytes = std::fs::metadata(path)?.len() as f64;
            let t0 = Instant::now();
            let d = CtfDeserializer::with_options(path, &streams(kind), CtfOptions::default())?;
            let t_index = t0.elapsed().as_secs_f64();
            let (mut samples, mut seqs) = (0u64, 0u64);
            if mode == "parse" {
                for i in 0..d.chunks().len() {
                    let s = d.load_chunk(i)?;
                    seqs += s.num_sequences() as u64;
                }
            } else {
                // optional 4th argument: randomize with a window of that many chunks
                let window: usize = arg(4).parse().unwrap_or(0);
                let cfg = MinibatchSourceConfig {
                    randomize: window > 0,
                    randomization_window_in_chunks: window,
                    max_sweeps: 1,
                    ..MinibatchSourceConfig::default()
                };
                let mut src = MinibatchSource::new(vec![std::sync::Arc::new(d)], cfg)?;
                // a trivial consumer: count what arrives
                while let Some(mb) = src.next_minibatch(2048)? {
                    samples += mb.data[0].num_samples as u64;
                    seqs += mb.num_sequences() as u64;
                }
            }
            let t = t0.elapsed().as_secs_f64();
            println!(
                "{mode} {kind} {path}: {:.1} MiB in {t:.2} s (index {t_index:.2} s) = {:.0} MiB/s; {seqs} sequences, {samples} samples; threads {}; peak RSS {:.0} MiB",
                bytes / 1048576.0,
                bytes / 1048576.0 / t,
                rayon::current_num_threads(),
                peak_rss_mib()
            );
        }
        _ => eprintln!(
            "usage: ctf_bench gen dense|sparse PATH MiB | read|parse|hash dense|sparse PATH"
        ),
    }
    Ok(())
}
