//! `rntk train CONFIG.toml`: build inputs, model, criterion, learner, readers and
//! callbacks from the config, run `rntk::train::train`, save the model.

use crate::config::{
    Config, InputSpec, LearnerSpec, MinibatchSizeSpec, Per, ReaderSpec, ScheduleSpec,
};
use crate::fail::{Context, Fail, Result};
use crate::progress::WithBar;
use crate::readers::{check_stream_specs, check_streams, source, source_one_sweep, ReaderContext};
use rntk::backend::Cpu;
use rntk::graph::{DynamicAxes, Function, InputOptions};
use rntk::learners::{self as ln, Learner, LearnerOptions, Schedule};
use rntk::tensor::{Device, Element};
use rntk::train::train_on;
use rntk::train::{
    Callbacks, CheckpointConfig, Criterion, CrossValidationConfig, MinibatchSize, ProgressPrinter,
    ProgressWriter, TensorBoardProgressWriter, TestConfig, TrainOptions,
};
use rntk::{losses, metrics, DType, Variable};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

pub fn run(path: &Path, device: &str) -> Result<()> {
    let device = Device::parse(device).context("--device")?;
    let cfg = Config::load(path)?;
    // the config's [limits] over the environment's, before anything is built
    let limits = cfg.limits.apply(rntk::limits::current())?;
    rntk::limits::set(limits)?;
    let text = crate::config::read_text(path)?.into_bytes();
    let comm = crate::distributed::start(path, &text, &cfg)?;
    let r = match cfg.train.dtype.as_deref().unwrap_or("f32") {
        "f32" | "float32" => run_typed::<f32>(&cfg, DType::F32, &comm, device),
        "f64" | "float64" => run_typed::<f64>(&cfg, DType::F64, &comm, device),
        other => Err(Fail::new(format!(
            "train.dtype: expected \"f32\" or \"f64\", found \"{other}\""
        ))),
    };
    let r = match comm.size() {
        1 => r,
        _ => r.map_err(|e| Fail::new(format!("worker rank {}: {e}", comm.rank()))),
    };
    r?;
    rntk::distributed::finalize()?;
    Ok(())
}

/// `Training N parameters in K parameter tensors.` (cntk.logging.log_number_of_parameters).
pub fn parameter_line(params: &[Variable]) -> String {
    let n: usize = params.iter().map(|p| p.shape().numel()).sum();
    format!(
        "Training {n} parameters in {} parameter tensors.",
        params.len()
    )
}

fn make_input(s: &InputSpec, dtype: DType) -> Result<Variable> {
    let dims = s.dim.dims();
    if dims.is_empty() || dims.contains(&0) {
        return Err(Fail::new(format!(
            "inputs '{}'.dim: expected at least 1 (every axis of a shape too), found {dims:?}",
            s.name
        )));
    }
    let shape = rntk::Shape::new(dims);
    rntk::limits::check_sample_shape(&shape)
        .map_err(|d| Fail::new(format!("inputs '{}'.dim: {d}", s.name)))?;
    let o = InputOptions {
        dtype,
        is_sparse: s.sparse,
        name: s.name.clone(),
        dynamic_axes: if s.sequence {
            DynamicAxes::default_sequence()
        } else {
            DynamicAxes::Batch
        },
        ..Default::default()
    };
    Ok(rntk::input_variable_with(shape, o))
}

fn loss_fn(name: &str, key: &str, z: &Variable, t: &Variable, cfg: &Config) -> Result<Variable> {
    let c = &cfg.criterion;
    let r = match name {
        "squared_error" => losses::squared_error(z, t),
        "cross_entropy_with_softmax" => losses::cross_entropy_with_softmax(z, t, c.axis),
        "binary_cross_entropy" => losses::binary_cross_entropy(z, t),
        "classification_error" => metrics::classification_error(z, t, c.axis, c.top_n),
        "cosine_distance" => metrics::cosine_distance(z, t),
        other => {
            return Err(Fail::new(format!(
                "{key}: unknown function \"{other}\" (expected one of squared_error, cross_entropy_with_softmax, binary_cross_entropy, classification_error, cosine_distance)"
            )))
        }
    };
    r.context(format!(
        "{key} = \"{name}\" on the model output {} and labels '{}' {}",
        z.shape(),
        t.name(),
        t.shape()
    ))
}

fn schedule(s: &ScheduleSpec, per: Per, epoch_size: Option<u64>, key: &str) -> Result<Schedule> {
    let sch = match s {
        ScheduleSpec::Constant(v) => Ok(Schedule::constant(*v)),
        ScheduleSpec::List(v) => Schedule::piecewise(v, epoch_size),
        ScheduleSpec::Counts(p) => Schedule::piecewise_counts(p, epoch_size),
    }
    .context(key)?;
    Ok(match per {
        Per::Sample => sch.per_sample(),
        Per::Minibatch => sch,
    })
}

fn learner(l: &LearnerSpec, params: &[Variable]) -> Result<Box<dyn Learner>> {
    let lr = schedule(&l.lr, l.lr_per, l.epoch_size, "learner.lr")?;
    let momentum = || -> Result<Schedule> {
        match &l.momentum {
            Some(m) => schedule(m, l.momentum_per, l.epoch_size, "learner.momentum"),
            None => Err(Fail::new(format!(
                "learner.momentum: the {} learner needs a momentum (e.g. momentum = 0.9)",
                l.kind
            ))),
        }
    };
    let mut common = LearnerOptions {
        l1_regularization_weight: l.l1_regularization_weight,
        l2_regularization_weight: l.l2_regularization_weight,
        ..Default::default()
    };
    if let Some(c) = l.gradient_clipping_threshold_per_sample {
        common.gradient_clipping_threshold_per_sample = c;
    }
    if let Some(t) = l.gradient_clipping_with_truncation {
        common.gradient_clipping_with_truncation = t;
    }
    let unit_gain = l.unit_gain.unwrap_or(true);
    let ctx = format!("learner ({})", l.kind);
    let var_mom = |v: f64| Schedule::constant(v).per_sample();
    let b: Box<dyn Learner> = match l.kind.as_str() {
        "sgd" => Box::new(ln::sgd(params, lr, common).context(&ctx)?),
        "momentum_sgd" => Box::new(
            ln::momentum_sgd(params, lr, momentum()?, unit_gain, common).context(&ctx)?,
        ),
        "nesterov" => {
            Box::new(ln::nesterov(params, lr, momentum()?, unit_gain, common).context(&ctx)?)
        }
        "adam" => {
            let mut o = ln::AdamOptions {
                unit_gain,
                common,
                adamax: l.adamax.unwrap_or(false),
                ..Default::default()
            };
            if let Some(v) = l.variance_momentum {
                o.variance_momentum = var_mom(v);
            }
            if let Some(e) = l.epsilon {
                o.epsilon = e;
            }
            Box::new(ln::adam(params, lr, momentum()?, o).context(&ctx)?)
        }
        "fsadagrad" => {
            let mut o = ln::FsAdaGradOptions {
                unit_gain,
                common,
                ..Default::default()
            };
            if let Some(v) = l.variance_momentum {
                o.variance_momentum = var_mom(v);
            }
            Box::new(ln::fsadagrad(params, lr, momentum()?, o).context(&ctx)?)
        }
        "adagrad" => Box::new(
            ln::adagrad(params, lr, l.need_ave_multiplier.unwrap_or(true), common)
                .context(&ctx)?,
        ),
        "adadelta" => Box::new(
            ln::adadelta(
                params,
                lr,
                l.rho.unwrap_or(0.95),
                l.epsilon.unwrap_or(1e-8),
                common,
            )
            .context(&ctx)?,
        ),
        "rmsprop" => {
            let need = |v: Option<f64>, k: &str| {
                v.ok_or_else(|| Fail::new(format!("learner.{k}: the rmsprop learner needs it")))
            };
            let o = ln::RmsPropOptions {
                gamma: need(l.gamma, "gamma")?,
                inc: need(l.inc, "inc")?,
                dec: need(l.dec, "dec")?,
                max: need(l.max, "max")?,
                min: need(l.min, "min")?,
                need_ave_multiplier: l.need_ave_multiplier.unwrap_or(true),
            };
            Box::new(ln::rmsprop(params, lr, o, common).context(&ctx)?)
        }
        other => {
            return Err(Fail::new(format!(
                "learner.type: unknown learner \"{other}\" (expected one of sgd, momentum_sgd, nesterov, adam, fsadagrad, adagrad, adadelta, rmsprop)"
            )))
        }
    };
    Ok(b)
}

fn reader<'a>(cfg: &'a Config, name: &str, key: &str) -> Result<&'a ReaderSpec> {
    cfg.readers.get(name).ok_or_else(|| {
        let known: Vec<&str> = cfg.readers.keys().map(|s| s.as_str()).collect();
        Fail::new(format!(
            "{key}: no reader named \"{name}\" (add a [readers.{name}] table; readers defined: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    })
}

fn run_typed<T: Element>(
    cfg: &Config,
    dtype: DType,
    comm: &Arc<dyn rntk::distributed::Communicator>,
    device: Device,
) -> Result<()> {
    // with several workers, rank 0 prints and saves
    let lead = comm.rank() == 0;
    let inputs = make_inputs(cfg, dtype)?;
    let labels = find_input(&inputs, &cfg.criterion.labels, "criterion.labels")?;
    let x = match &cfg.model.input {
        Some(n) => find_input(&inputs, n, "model.input")?,
        None => inputs
            .iter()
            .find(|(n, _)| *n != cfg.criterion.labels)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                Fail::new("inputs: the model needs an input besides the criterion's labels")
            })?,
    };

    // model
    let model = crate::layers::build(&cfg.model.layers, &cfg.model.default_options)?;
    let z = rntk::layers::Layer::apply(&model, &x).context(format!(
        "model.layers applied to input '{}' {}",
        x.name(),
        x.shape()
    ))?;
    let params = rntk::layers::Layer::parameters(&model);

    // criterion
    let loss = loss_fn(&cfg.criterion.loss, "criterion.loss", &z, &labels, cfg)?;
    let metric_name = cfg
        .criterion
        .metric
        .as_deref()
        .unwrap_or(&cfg.criterion.loss);
    let metric = loss_fn(metric_name, "criterion.metric", &z, &labels, cfg)?;
    let criterion = Criterion::new(loss.clone(), Some(metric.clone()));
    let args = Function::combine(&[loss, metric], "criterion")?.arguments();
    let map = stream_map(cfg, &args)?;

    let learner = learner(&cfg.learner, &params)?;
    let cx = ReaderContext {
        inputs: &cfg.inputs,
        base: &cfg.base,
        dtype,
        labels_dim: Some(labels.shape().numel()),
    };
    let learner = crate::distributed::wrap(cfg.distributed.as_ref(), comm, learner)?;

    // readers
    let train_reader = reader(cfg, &cfg.train.reader, "train.reader")?;
    let train_key = format!("readers.{}", cfg.train.reader);
    check_stream_specs(train_reader, &map, &train_key)?;
    let mut src = source(&cfg.train.reader, train_reader, &cx)?;
    check_streams(&src, &map, &train_key)?;

    let (options, num_epochs) = train_options(cfg)?;

    // every path the run writes, before anything is written
    check_outputs(cfg)?;

    // cntk.logging.log_number_of_parameters(model), before the printer's header
    if lead {
        println!("{}", parameter_line(&params));
    }
    let bar_epoch = options.epoch_size.or(cfg.train.max_samples).unwrap_or(0);
    let callbacks = callbacks(cfg, lead, num_epochs, bar_epoch, &map, &cx)?;

    let learners = vec![learner];
    match device {
        Device::Cuda(n) => {
            let gpu = rntk_cuda::Cuda::new(n).context(format!("--device {device}"))?;
            eprintln!("Training on {device} ({}).", gpu.name());
            train_on::<T, _>(
                gpu, &criterion, &mut src, &map, learners, options, callbacks,
            )
        }
        _ => train_on::<T, _>(
            Cpu, &criterion, &mut src, &map, learners, options, callbacks,
        ),
    }
    .context("training")?;

    if !lead {
        return Ok(());
    }
    let out = Function::combine(std::slice::from_ref(&z), "model")?;
    rntk::save_model(&out, &cfg.train.output).context("train.output")?;
    println!("Model saved to {}", cfg.train.output.display());
    Ok(())
}

/// The config's inputs by name, in order; names unique.
fn make_inputs(cfg: &Config, dtype: DType) -> Result<Vec<(String, Variable)>> {
    let mut inputs = Vec::new();
    for s in &cfg.inputs {
        if inputs
            .iter()
            .any(|(n, _): &(String, Variable)| *n == s.name)
        {
            return Err(Fail::new(format!(
                "inputs: the name '{}' is used twice",
                s.name
            )));
        }
        // rntk's losses take dense targets: a sparse labels stream is densified on
        // the way in (the reader still reads it as sparse)
        let var = if s.name == cfg.criterion.labels && s.sparse {
            make_input(
                &InputSpec {
                    name: s.name.clone(),
                    dim: s.dim.clone(),
                    sequence: s.sequence,
                    sparse: false,
                },
                dtype,
            )?
        } else {
            make_input(s, dtype)?
        };
        inputs.push((s.name.clone(), var));
    }
    Ok(inputs)
}

/// The input named `name` (`key` names the config entry that asks for it).
fn find_input(inputs: &[(String, Variable)], name: &str, key: &str) -> Result<Variable> {
    inputs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| {
            let names: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
            Fail::new(format!(
                "{key}: no input named '{name}' (inputs: {})",
                names.join(", ")
            ))
        })
}

/// Each argument of the criterion with the stream that feeds it (its own name
/// unless `train.inputs_to_streams` says otherwise).
fn stream_map(cfg: &Config, args: &[Variable]) -> Result<Vec<(Variable, String)>> {
    let mut map = Vec::new();
    for a in args {
        let name = a.name();
        let stream = cfg
            .train
            .inputs_to_streams
            .get(&name)
            .cloned()
            .unwrap_or_else(|| name.clone());
        map.push((a.clone(), stream));
    }
    for k in cfg.train.inputs_to_streams.keys() {
        if !args.iter().any(|a| a.name() == *k) {
            return Err(Fail::new(format!(
                "train.inputs_to_streams: '{k}' is not an input the criterion uses"
            )));
        }
    }
    Ok(map)
}

/// The run's sizes: minibatch size (or schedule), epoch size and limits, and the
/// number of epochs where it is known.
fn train_options(cfg: &Config) -> Result<(TrainOptions, Option<u64>)> {
    let t = &cfg.train;
    let mbs = match &t.minibatch_size {
        MinibatchSizeSpec::Constant(n) => MinibatchSize::Constant(*n),
        MinibatchSizeSpec::Counts(p) => MinibatchSize::Schedule {
            pairs: p.clone(),
            epoch_size: t.epoch_size.unwrap_or(1),
        },
    };
    let epoch_size = match (t.epoch_size, t.max_samples) {
        (Some(e), _) => Some(e),
        (None, Some(_)) => None,
        (None, None) => {
            return Err(Fail::new(
                "train.epoch_size: expected a number of samples (or give train.max_samples)",
            ))
        }
    };
    let options = TrainOptions {
        minibatch_size: mbs,
        epoch_size,
        max_epochs: t.max_epochs,
        max_samples: t.max_samples,
        progress_frequency: None,
    };
    let num_epochs = t
        .max_epochs
        .or_else(|| match (t.max_samples, t.epoch_size) {
            (Some(m), Some(e)) if e > 0 => Some(m.div_ceil(e)),
            _ => None,
        });
    Ok((options, num_epochs))
}

/// The `[callbacks]` tables: progress writers (rank 0 only), test,
/// cross-validation and checkpoint.
fn callbacks(
    cfg: &Config,
    lead: bool,
    num_epochs: Option<u64>,
    bar_epoch: u64,
    map: &[(Variable, String)],
    cx: &ReaderContext,
) -> Result<Callbacks> {
    let cb = &cfg.callbacks;
    let mut callbacks = Callbacks::default();
    // with several workers only rank 0 prints (the printer's header included) and logs
    if lead {
        callbacks.progress_writers = progress_writers(cfg, num_epochs, bar_epoch)?;
    }
    if let Some(tc) = &cb.test {
        let r = reader(cfg, &tc.reader, "callbacks.test.reader")?;
        check_stream_specs(r, map, &format!("readers.{}", tc.reader))?;
        // one pass over the test data unless the reader says otherwise
        let s = if r.max_sweeps.is_none() && r.max_samples.is_none() {
            source_one_sweep(&tc.reader, r, cx)?
        } else {
            source(&tc.reader, r, cx)?
        };
        check_streams(&s, map, &format!("readers.{}", tc.reader))?;
        let mut c = TestConfig::new(Box::new(s));
        c.minibatch_size = tc.minibatch_size;
        callbacks.test = Some(c);
    }
    if let Some(cv) = &cb.cross_validation {
        let r = reader(cfg, &cv.reader, "callbacks.cross_validation.reader")?;
        check_stream_specs(r, map, &format!("readers.{}", cv.reader))?;
        let s = source(&cv.reader, r, cx)?;
        check_streams(&s, map, &format!("readers.{}", cv.reader))?;
        let mut c = CrossValidationConfig::new(Box::new(s));
        c.minibatch_size = cv.minibatch_size;
        c.frequency = cv.frequency;
        c.max_samples = cv.max_samples;
        callbacks.cross_validation = Some(c);
    }
    if let Some(ck) = &cb.checkpoint {
        let mut c = CheckpointConfig::new(&ck.file);
        c.frequency = ck.frequency;
        c.restore = ck.restore;
        c.preserve_all = ck.preserve_all;
        callbacks.checkpoint = Some(c);
    }
    Ok(callbacks)
}

/// The progress printer (with a bar on a terminal) and the TensorBoard writer.
fn progress_writers(
    cfg: &Config,
    num_epochs: Option<u64>,
    bar_epoch: u64,
) -> Result<Vec<Box<dyn ProgressWriter>>> {
    let cb = &cfg.callbacks;
    let mut writers: Vec<Box<dyn ProgressWriter>> = Vec::new();
    let p = cb.progress.as_ref();
    let freq = match p {
        Some(p) => p.freq,
        None => Some(0),
    };
    let mut printer = ProgressPrinter::new(freq);
    if let Some(p) = p {
        printer = printer.first(p.first);
        if let Some(tag) = &p.tag {
            printer = printer.tag(tag);
        }
        if let Some(n) = p.num_epochs.or(num_epochs) {
            printer = printer.num_epochs(n);
        }
        if let Some(n) = p.test_freq {
            printer = printer.test_freq(n);
        }
        if let Some(pct) = p.metric_is_pct {
            printer = printer.metric_is_pct(pct);
        }
        if let Some(f) = &p.log_file {
            printer = printer
                .log_to_file(f)
                .context(format!("callbacks.progress.log_file {}", f.display()))?;
        }
    }
    let mut printer: Box<dyn ProgressWriter> = Box::new(printer);
    let bar = p.and_then(|p| p.bar).unwrap_or(true) && std::io::stderr().is_terminal();
    if bar && bar_epoch > 0 {
        printer = Box::new(WithBar::new(printer, bar_epoch, num_epochs));
    }
    writers.push(printer);
    if let Some(tb) = &cb.tensorboard {
        let w = TensorBoardProgressWriter::new(tb.freq, &tb.log_dir).context(format!(
            "callbacks.tensorboard.log_dir {}",
            tb.log_dir.display()
        ))?;
        writers.push(Box::new(w));
    }
    Ok(writers)
}

/// Every path the run will write — the model, the checkpoint, the progress log, the
/// TensorBoard folder — checked before training starts (a run must not be lost to an
/// output that cannot be written): folders exist or are created, accept new files,
/// files are not directories, no two outputs are one file and no output is a data
/// file being read. The checkpoint must not be in use by another trainer.
fn check_outputs(cfg: &Config) -> Result<()> {
    let cb = &cfg.callbacks;
    let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
    let mut file = |key: &str, p: &Path| -> Result<()> {
        rntk::files::check_output_file(p).context(key)?;
        files.push((key.to_string(), p.to_path_buf()));
        Ok(())
    };
    file("train.output", &cfg.train.output)?;
    // temporary files of an earlier save that was killed (their writer is gone)
    let out = &cfg.train.output;
    if let Some(name) = out.file_name().and_then(|n| n.to_str()) {
        let dir = out.parent().unwrap_or(Path::new(""));
        rntk::persist::remove_stale_temps(dir, |t| t == name, false);
    }
    if let Some(f) = cb.progress.as_ref().and_then(|p| p.log_file.as_ref()) {
        file("callbacks.progress.log_file", f)?;
    }
    if let Some(ck) = &cb.checkpoint {
        file("callbacks.checkpoint.file", &ck.file)?;
        let mut ckp = ck.file.as_os_str().to_owned();
        ckp.push(".ckp");
        file("callbacks.checkpoint.file (.ckp)", Path::new(&ckp))?;
        rntk::files::PathLock::probe(&ck.file, "checkpoint")
            .context("callbacks.checkpoint.file")?;
    }
    if let Some(tb) = &cb.tensorboard {
        rntk::files::check_output_dir(&tb.log_dir).context("callbacks.tensorboard.log_dir")?;
    }
    // the same file twice, or over a data file (compared where the paths lead)
    let real = |p: &Path| -> std::path::PathBuf {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        dir.join(p.file_name().unwrap_or_default())
    };
    for (i, (ka, a)) in files.iter().enumerate() {
        for (kb, b) in &files[..i] {
            if real(a) == real(b) {
                return Err(Fail::new(format!(
                    "{ka} and {kb} are the same file {}: give each output its own path",
                    a.display()
                )));
            }
        }
        for (name, r) in &cfg.readers {
            if real(a) == real(&r.file) {
                return Err(Fail::new(format!(
                    "{ka} {} is the data file of readers.{name}: writing it would destroy the data",
                    a.display()
                )));
            }
        }
    }
    Ok(())
}
