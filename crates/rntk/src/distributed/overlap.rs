//! Gradient exchange overlapping the backward pass: the trainer hands each gradient
//! over as soon as the backward pass has finished it (`Executor::backward_streaming`:
//! the output layer's first, the embedding's last); the gradients are grouped in that
//! order into buckets of about `bucket_bytes`, and a communication thread all-reduces
//! each bucket as soon as it is full, while the backward pass computes the next ones.
//!
//! ```text
//! backward:  [Dense W ][ LSTM 2 ............ ][ LSTM 1 ............ ][Emb]
//! exchange:            [bucket 1: Dense W ]    [bucket 2: LSTM 2 ]    [b3][b4]  → finish
//! ```
//!
//! Every worker forms the same buckets: the order is the compiled plan's, the same on
//! every worker, and a worker without data hands zeros over in that order. Inside a
//! bucket, gradients under [`SMALL`] bytes travel together in one message (one
//! per element type); larger ones each in their own.

use super::communicator::Communicator;
use crate::error::{Error, Result};
use crate::learners::GradientExchange;
use crate::tensor::{DType, Tensor};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Gradients smaller than this share one message within a bucket.
pub const SMALL: usize = 64 << 10;

type Bucket = Vec<(usize, Tensor)>;

/// The exchange of one data-parallel learner: its communication thread and the
/// bucket being filled.
pub(crate) struct Overlap {
    parameters: usize,
    bucket_bytes: usize,
    jobs: Option<Sender<Bucket>>,
    done: Receiver<Result<Bucket>>,
    thread: Option<JoinHandle<()>>,
    filling: Bucket,
    filling_bytes: usize,
    in_flight: usize,
    /// The gradients of this minibatch came back summed (read by `update_minibatch`).
    summed: bool,
    broken: bool,
    /// Wall time `finish` waited for exchanges still running (the part not hidden
    /// behind the backward pass).
    waited: Duration,
}

impl Overlap {
    /// An exchange of `parameters` gradients over `comm` in buckets of `bucket_bytes`.
    pub fn new(
        comm: Arc<dyn Communicator>,
        parameters: usize,
        bucket_bytes: usize,
    ) -> Result<Self> {
        let (jobs, inbox) = channel::<Bucket>();
        let (outbox, done) = channel();
        let thread = std::thread::Builder::new()
            .name(format!("rntk-gradients-{}", comm.rank()))
            .spawn(move || {
                for mut bucket in inbox {
                    let r = all_reduce_bucket(&*comm, &mut bucket).map(|()| bucket);
                    let failed = r.is_err();
                    if outbox.send(r).is_err() || failed {
                        break;
                    }
                }
            })
            .map_err(|e| {
                Error::distributed(
                    None,
                    format!("cannot start the gradient exchange thread: {e}"),
                )
            })?;
        Ok(Overlap {
            parameters,
            bucket_bytes: bucket_bytes.max(1),
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            filling: Vec::new(),
            filling_bytes: 0,
            in_flight: 0,
            summed: false,
            broken: false,
            waited: Duration::ZERO,
        })
    }

    /// A new minibatch: refused if the last one's exchange was left unfinished (its
    /// backward pass failed), as the workers' collectives no longer match.
    pub fn begin(&mut self) -> Result<()> {
        self.summed = false;
        if self.broken || self.in_flight > 0 || !self.filling.is_empty() {
            return Err(self.fail("the last minibatch's gradient exchange did not finish"));
        }
        Ok(())
    }

    /// Whether the gradients of the minibatch now being updated came summed from this
    /// exchange; clears the mark.
    pub fn take_summed(&mut self) -> bool {
        std::mem::take(&mut self.summed)
    }

    pub fn waited(&self) -> Duration {
        self.waited
    }

    fn send(&mut self) -> Result<()> {
        if self.filling.is_empty() {
            return Ok(());
        }
        let bucket = std::mem::take(&mut self.filling);
        self.filling_bytes = 0;
        let sent = self.jobs.as_ref().map(|j| j.send(bucket).is_ok());
        if sent != Some(true) {
            return Err(self.fail("the gradient exchange thread has stopped"));
        }
        self.in_flight += 1;
        Ok(())
    }

    fn fail(&mut self, what: &str) -> Error {
        self.broken = true;
        Error::distributed(None, what.to_string())
    }
}

impl GradientExchange for Overlap {
    fn ready(&mut self, index: usize, gradient: Tensor) -> Result<()> {
        if self.broken {
            return Err(self.fail("an earlier gradient exchange failed"));
        }
        self.filling_bytes += gradient.shape().numel() * gradient.dtype().size_in_bytes();
        self.filling.push((index, gradient));
        if self.filling_bytes >= self.bucket_bytes {
            self.send()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<Tensor>> {
        if self.broken {
            return Err(self.fail("an earlier gradient exchange failed"));
        }
        self.send()?;
        let t0 = Instant::now();
        let mut out: Vec<Option<Tensor>> = (0..self.parameters).map(|_| None).collect();
        while self.in_flight > 0 {
            self.in_flight -= 1;
            let bucket = match self.done.recv() {
                Ok(r) => r,
                Err(_) => Err(self.fail("the gradient exchange thread has stopped")),
            };
            let bucket = bucket.inspect_err(|_| self.broken = true)?;
            for (k, t) in bucket {
                if let Some(slot) = out.get_mut(k) {
                    *slot = Some(t);
                }
            }
        }
        self.waited += t0.elapsed();
        let out = out.into_iter().collect::<Option<Vec<Tensor>>>();
        match out {
            Some(v) => {
                self.summed = true;
                Ok(v)
            }
            None => Err(self.fail("a gradient was not handed over to the exchange")),
        }
    }
}

impl Drop for Overlap {
    fn drop(&mut self) {
        // closing the job queue ends the thread after the bucket in hand
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sum one bucket over the workers, in place: large gradients one by one, the small
/// ones of each element type in one message.
fn all_reduce_bucket(comm: &dyn Communicator, bucket: &mut Bucket) -> Result<()> {
    let small = |t: &Tensor| t.shape().numel() * t.dtype().size_in_bytes() < SMALL;
    for (_, t) in bucket.iter_mut().filter(|(_, t)| !small(t)) {
        all_reduce_tensor(comm, t)?;
    }
    for dtype in [DType::F32, DType::F64] {
        let mut joined: Vec<&mut Tensor> = bucket
            .iter_mut()
            .map(|(_, t)| t)
            .filter(|t| small(t) && t.dtype() == dtype)
            .collect();
        match joined.len() {
            0 => {}
            1 => all_reduce_tensor(comm, joined[0])?,
            _ => match dtype {
                DType::F32 => all_reduce_joined::<f32>(comm, &mut joined)?,
                DType::F64 => all_reduce_joined::<f64>(comm, &mut joined)?,
            },
        }
    }
    Ok(())
}

fn all_reduce_tensor(comm: &dyn Communicator, t: &mut Tensor) -> Result<()> {
    match t.dtype() {
        DType::F32 => comm.all_reduce_f32(host(t.as_mut_slice::<f32>())?),
        DType::F64 => comm.all_reduce_f64(host(t.as_mut_slice::<f64>())?),
    }
}

/// A gradient's elements in host memory (the exchange reads and writes them there).
fn host<S>(s: Option<S>) -> Result<S> {
    s.ok_or_else(|| Error::distributed(None, "a gradient is not in host memory"))
}

fn all_reduce_joined<T: crate::tensor::Element>(
    comm: &dyn Communicator,
    ts: &mut [&mut Tensor],
) -> Result<()> {
    let mut flat: Vec<T> = Vec::with_capacity(ts.iter().map(|t| t.shape().numel()).sum());
    for t in ts.iter() {
        flat.extend_from_slice(host(t.as_slice::<T>())?);
    }
    super::communicator::all_reduce(comm, &mut flat)?;
    let mut at = 0;
    for t in ts.iter_mut() {
        let s = host(t.as_mut_slice::<T>())?;
        s.copy_from_slice(&flat[at..at + s.len()]);
        at += s.len();
    }
    Ok(())
}
