//! `rntk eval MODEL --input FILE.ctf`: the model's output for every sequence of the
//! file, in file order.

use crate::fail::{Context, Fail, Result};
use crate::Format;
use rntk::io::{
    CtfDeserializer, CtfOptions, CtfWriter, Deserializer, MinibatchSource, MinibatchSourceConfig,
    SeqStream, StreamDef,
};
use rntk::tensor::{Element, Layout};
use rntk::{DType, Executor, Value, Variable};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Args {
    pub model: PathBuf,
    pub input: PathBuf,
    pub output: Option<PathBuf>,
    pub format: Format,
    pub map: Vec<String>,
    pub minibatch_size: usize,
}

/// The CTF input: a regular file is read by the reader itself; a stream (a pipe,
/// `/dev/stdin`) is read into memory once, within the limits on stream size and row
/// length, so `--input /dev/zero` or an endless pipe stops with an error instead of
/// filling memory.
pub enum Input {
    File(PathBuf),
    Stream { name: String, text: Vec<u8> },
}

impl Input {
    pub fn open(path: &Path) -> Result<Input> {
        let (file, regular) = rntk::files::open_input(path, "a CTF file")
            .map_err(|e| Fail::new(format!("--input {e}")))?;
        if regular {
            return Ok(Input::File(path.to_path_buf()));
        }
        let name = path.display().to_string();
        let text = rntk::io::ctf::read_stream(file, &name)
            .map_err(|e| Fail::new(format!("--input {e}")))?;
        Ok(Input::Stream { name, text })
    }

    /// The stream names used in its first rows.
    fn names(&self) -> Result<Vec<String>> {
        match self {
            Input::File(p) => ctf_stream_names(p),
            Input::Stream { text, .. } => Ok(stream_names_in(
                &text[..text.len().min(NAME_BYTES as usize)],
            )),
        }
    }

    /// A reader of its text for `defs`.
    fn reader(self, defs: &[StreamDef]) -> Result<CtfDeserializer> {
        Ok(match self {
            Input::File(p) => CtfDeserializer::open(&p, defs)?,
            Input::Stream { name, text } => {
                CtfDeserializer::from_bytes(&name, text, defs, CtfOptions::default())?
            }
        })
    }
}

/// Rows looked at for stream names, and bytes: names are on the first rows, and
/// there is no reason to read further (a row without a line end is cut there).
const NAME_ROWS: usize = 10_000;
const NAME_BYTES: u64 = 4 << 20;

/// The stream (field) names used in the first rows of CTF text.
pub fn stream_names_in(text: &[u8]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in text.split(|&c| c == b'\n').take(NAME_ROWS) {
        for part in line.split(|&c| c == b'|').skip(1) {
            let name: Vec<u8> = part
                .iter()
                .copied()
                .take_while(|c| !c.is_ascii_whitespace())
                .collect();
            let name = String::from_utf8_lossy(&name).into_owned();
            if name.is_empty() || name.starts_with('#') {
                continue;
            }
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// The stream (field) names used in the first rows of a CTF file (at most its first
/// 4 MiB are read).
pub fn ctf_stream_names(path: &Path) -> Result<Vec<String>> {
    let f = std::fs::File::open(path)
        .map_err(|e| Fail::new(format!("{}: cannot read the file: {e}", path.display())))?;
    let mut head = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(f, NAME_BYTES), &mut head)
        .context(path.display())?;
    Ok(stream_names_in(&head))
}

/// Which stream feeds each model input.
fn resolve_map(args: &Args, inputs: &[Variable], streams: &[String]) -> Result<Vec<String>> {
    let mut explicit = Vec::new();
    for m in &args.map {
        let Some((i, s)) = m.split_once('=') else {
            return Err(Fail::new(format!("--map {m}: expected INPUT=STREAM")));
        };
        if !inputs.iter().any(|v| v.name() == i) {
            let names: Vec<String> = inputs.iter().map(|v| v.name()).collect();
            return Err(Fail::new(format!(
                "--map {m}: the model has no input '{i}' (inputs: {})",
                names.join(", ")
            )));
        }
        if !streams.iter().any(|n| n == s) {
            return Err(Fail::new(format!(
                "--map {m}: {} has no stream '{s}' (streams: {})",
                args.input.display(),
                streams.join(", ")
            )));
        }
        explicit.push((i.to_string(), s.to_string()));
    }
    let mut out = Vec::new();
    for v in inputs {
        let name = v.name();
        let s = if let Some((_, s)) = explicit.iter().find(|(i, _)| *i == name) {
            s.clone()
        } else if streams.contains(&name) {
            name.clone()
        } else if inputs.len() == 1 && streams.len() == 1 {
            streams[0].clone()
        } else {
            return Err(Fail::new(format!(
                "model input '{name}' is not mapped: {} has streams {}; give --map {name}=STREAM",
                args.input.display(),
                if streams.is_empty() {
                    "(none)".to_string()
                } else {
                    streams.join(", ")
                }
            )));
        };
        out.push(s);
    }
    Ok(out)
}

pub fn run(args: &Args) -> Result<()> {
    let (model, _) = crate::model_file::load(&args.model)?;
    let inputs = model.arguments();
    let outputs = model.outputs();
    let Some(out) = outputs.first().cloned() else {
        return Err(Fail::new(format!(
            "{}: the model has no output",
            args.model.display()
        )));
    };
    if !args.input.exists() {
        return Err(Fail::new(format!(
            "--input {}: no such file",
            args.input.display()
        )));
    }
    if let Some(o) = &args.output {
        rntk::files::check_output_file(o).context("--output")?;
    }
    let input = Input::open(&args.input)?;
    let streams = input.names()?;
    let map = resolve_map(args, &inputs, &streams)?;
    match out.dtype() {
        DType::F64 => eval_typed::<f64>(args, input, &inputs, &map, &out),
        _ => eval_typed::<f32>(args, input, &inputs, &map, &out),
    }
}

enum Sink {
    Text(Box<dyn Write>),
    Ctf(CtfWriter<Box<dyn Write>>),
}

fn eval_typed<T: Element + rntk::io::IoFloat>(
    args: &Args,
    input: Input,
    inputs: &[Variable],
    map: &[String],
    out: &Variable,
) -> Result<()> {
    // one stream per input, named like the input (two inputs may read one field)
    let defs: Vec<StreamDef> = inputs
        .iter()
        .zip(map)
        .map(|(v, field)| {
            let dim = v.shape().numel();
            let d = if v.is_sparse() {
                StreamDef::sparse(&v.name(), dim)
            } else {
                StreamDef::dense(&v.name(), dim)
            };
            d.field(field)
        })
        .collect();
    let ctf = input.reader(&defs)?;
    let d: Arc<dyn Deserializer> = Arc::new(ctf);
    let mut src = MinibatchSource::new(
        vec![d],
        MinibatchSourceConfig {
            randomize: false,
            max_sweeps: 1,
            ..Default::default()
        },
    )?;
    let feed_map: Vec<(Variable, String)> = inputs.iter().map(|v| (v.clone(), v.name())).collect();
    let mut exec = Executor::<T>::new_inference(std::slice::from_ref(out))?;

    let writer: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).context(format!("--output {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let field = {
        let n = out.name();
        if n.is_empty() || n.contains(|c: char| c.is_whitespace() || c == '|') {
            "output".to_string()
        } else {
            n
        }
    };
    let mut sink = match args.format {
        Format::Text => Sink::Text(writer),
        Format::Ctf => Sink::Ctf(CtfWriter::new(writer, &[field.as_str()])?),
    };
    let werr = |e: std::io::Error| Fail::new(format!("writing the output: {e}"));
    match write_all(&mut src, &mut exec, &feed_map, out, &mut sink, args) {
        // a closed pipe (`rntk eval … | head`) ends the output quietly
        Err(Fail(m)) if m.contains("Broken pipe") => return Ok(()),
        r => r?,
    }
    match sink {
        Sink::Text(mut w) => match w.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            r => r.map_err(werr),
        },
        Sink::Ctf(w) => match w.finish() {
            Err(e) if e.to_string().contains("Broken pipe") => Ok(()),
            r => r.map(|_| ()).map_err(Fail::from),
        },
    }
}

fn write_all<T: Element + rntk::io::IoFloat>(
    src: &mut MinibatchSource,
    exec: &mut Executor<T>,
    feed_map: &[(Variable, String)],
    out: &Variable,
    sink: &mut Sink,
    args: &Args,
) -> Result<()> {
    let werr = |e: std::io::Error| Fail::new(format!("writing the output: {e}"));
    let dim = out.shape().numel().max(1);
    let mut id = 0u64;
    let mut line = String::new();
    while let Some(mb) = src.next_minibatch(args.minibatch_size.max(1))? {
        let feeds = rntk::train::feeds_for(&mb, feed_map)?;
        let refs: Vec<(&Variable, &Value)> = feeds.iter().map(|(v, x)| (v, x)).collect();
        exec.forward(&refs, false)?;
        let value = exec.value(out)?;
        let seqs: Vec<Vec<T>> = match value.layout() {
            Layout::Static => vec![value.dense_rows::<T>()],
            _ => value.to_sequences::<T>(),
        };
        for s in &seqs {
            match &mut *sink {
                Sink::Text(w) => {
                    line.clear();
                    for (k, x) in s.iter().enumerate() {
                        if k > 0 {
                            line.push(' ');
                        }
                        line.push_str(&format!("{x:?}"));
                    }
                    line.push('\n');
                    w.write_all(line.as_bytes()).map_err(werr)?;
                }
                Sink::Ctf(w) => {
                    w.write_sequence(id, &[SeqStream::Dense { dim, values: s }])?;
                }
            }
            id += 1;
        }
        if mb.end_of_sweep() {
            break;
        }
    }
    Ok(())
}
