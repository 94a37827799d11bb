//! `rntk`: train a model from a declarative TOML config, evaluate a saved model (rntk's
//! or CNTK 2.x's format) on CTF data, summarize a model file, convert CNTK models, and
//! generate deterministic synthetic data.
//!
//! Exit status: 0 on success, 1 with a one-line `rntk: …` message on a user error.

mod config;
#[cfg(test)]
mod config_proptest;
mod conv_layers;
mod distributed;
mod eval;
mod fail;
mod gendata;
mod image_reader;
mod info;
mod layers;
mod model_file;
mod progress;
mod readers;
mod train;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rntk",
    version,
    about = "CNTK 2.x in Rust: train from a TOML config, evaluate, inspect and import models, generate data"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the model described by CONFIG (see docs/cli-config.md) and save it.
    Train {
        /// The TOML config file.
        config: PathBuf,
        /// Where to train: `cpu`, `gpu` (GPU 0) or `gpu:N`.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Evaluate MODEL on a CTF file: one line per sequence (per sample for outputs
    /// without a sequence axis) with its output values, space separated.
    Eval {
        /// A model saved by `rntk train` (or `save_model`), or by CNTK 2.x.
        model: PathBuf,
        /// The CTF file to read.
        #[arg(long)]
        input: PathBuf,
        /// Where to write (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Feed model input INPUT from the file's stream STREAM (repeatable).
        #[arg(long = "map", value_name = "INPUT=STREAM")]
        map: Vec<String>,
        /// Sequences are read in minibatches of about this many samples.
        #[arg(long, default_value_t = 1024)]
        minibatch_size: usize,
    },
    /// Summarize MODEL (rntk's or CNTK 2.x's format): inputs, outputs, graph,
    /// parameters and their counts.
    Info { model: PathBuf },
    /// Convert a CNTK 2.x model file (CNTKv2 format) into rntk's model format.
    ImportCntk {
        /// The model saved by CNTK (`Function.save`).
        model: PathBuf,
        /// Where to write the rntk model.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write MODEL (rntk's or CNTK 2.x's format) as an ONNX model: sequence inputs as
    /// [sequence, batch, ...] with an int32 `sequence_lens` input (docs/onnx.md).
    ExportOnnx {
        /// The model to convert.
        model: PathBuf,
        /// Where to write the ONNX file.
        #[arg(short, long)]
        output: PathBuf,
        /// The ONNX opset (13 to 21).
        #[arg(long, default_value_t = rntk::onnx::DEFAULT_OPSET)]
        opset: i64,
    },
    /// Write deterministic synthetic data (DIR/train.ctf and DIR/test.ctf; images: PNG
    /// files and map files).
    GenData {
        #[arg(value_enum)]
        dataset: Dataset,
        dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub enum Format {
    /// Values separated by spaces, one line per sequence.
    Text,
    /// CNTK Text Format, one row per step.
    Ctf,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub enum Dataset {
    /// Solar-panel style sequences (features dim 1 per step, one target per sequence).
    Timeseries,
    /// Language-model tokens (vocabulary 10000, sequences of 35, sparse one-hot).
    Lm,
    /// ATIS-like slot tagging (S0 words, S1 intent, S2 slot labels; sparse).
    Slots,
    /// 28×28 grey digits in tutorial 103's CTF layout (`labels` one-hot of 10,
    /// `features` 784 values 0-255); 8000 train, 2000 test.
    Digits,
    /// 32×32 colour shapes, ten classes, as PNG files with CNTK map files
    /// (`train_map.txt`, `test_map.txt`) and 201A's mean file (`mean.xml`); 5000 / 1000.
    Shapes,
}

fn main() -> ExitCode {
    // Anything unexpected still ends with one line, never a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        // `rntk info m | head`: the reader went away; nothing to report
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        eprintln!(
            "rntk: internal error: {} (please report it)",
            fail::one_line(&msg)
        );
    }));
    let cli = Cli::parse();
    // limits from the environment (RNTK_MAX_*): an invalid value is an error now,
    // not a silently ignored setting
    if let Err(e) = rntk::limits::Limits::from_env().and_then(rntk::limits::set) {
        eprintln!("rntk: {}", fail::Fail::from(e));
        return ExitCode::from(1);
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match cli.command {
        Command::Train { config, device } => train::run(&config, &device),
        Command::Eval {
            model,
            input,
            output,
            format,
            map,
            minibatch_size,
        } => eval::run(&eval::Args {
            model,
            input,
            output,
            format,
            map,
            minibatch_size,
        }),
        Command::Info { model } => info::run(&model),
        Command::ImportCntk { model, output } => model_file::import(&model, &output),
        Command::ExportOnnx {
            model,
            output,
            opset,
        } => model_file::export_onnx(&model, &output, opset),
        Command::GenData { dataset, dir, seed } => gendata::run(dataset, &dir, seed),
    }));
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("rntk: {e}");
            ExitCode::from(1)
        }
        Err(_) => ExitCode::from(2),
    }
}
