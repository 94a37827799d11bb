//! The `Communicator`: the few collectives data-parallel training needs (all-reduce,
//! all-gather, broadcast, barrier), with the process's rank and the number of workers.
//! [`SingleProcess`] is the one-worker communicator, [`ThreadGroup`] runs several
//! workers as threads of one process (tests, and trying a distributed setup without
//! MPI); the MPI implementation is in `mpi.rs` (cargo feature `mpi`).

use crate::error::{Error, Result};
use crate::tensor::{DType, Element};
use std::sync::{Arc, Condvar, Mutex};

/// Collectives over a fixed group of workers. Every worker must call the same
/// collectives in the same order with buffers of the same length (as in MPI); a
/// worker that dies or stops answering makes the others fail with
/// [`Error::Distributed`] naming it, not hang (for MPI, see `mpi.rs`).
pub trait Communicator: Send + Sync + std::fmt::Debug {
    /// This worker's index, `0..size()`.
    fn rank(&self) -> usize;
    /// The number of workers.
    fn size(&self) -> usize;
    /// Element-wise sum over all workers, in place: afterwards every worker holds
    /// the same sum.
    fn all_reduce_f32(&self, data: &mut [f32]) -> Result<()>;
    /// [`Communicator::all_reduce_f32`] for f64.
    fn all_reduce_f64(&self, data: &mut [f64]) -> Result<()>;
    /// Every worker's bytes (of any length), in rank order, on every worker.
    fn all_gather(&self, data: &[u8]) -> Result<Vec<Vec<u8>>>;
    /// `root`'s bytes on every worker (`data` is replaced on the others).
    fn broadcast(&self, data: &mut Vec<u8>, root: usize) -> Result<()>;
    /// Wait until every worker got here.
    fn barrier(&self) -> Result<()>;
    /// End the group's communication (CNTK's `Communicator.finalize()`): waits for
    /// every worker, then releases the transport. Idempotent; later collectives fail.
    fn finalize(&self) -> Result<()>;
    /// What it runs on, for messages ("MPI (Open MPI v4.1.4), 2 workers").
    fn describe(&self) -> String;
}

/// All-reduce (sum) of a slice of `T`.
pub fn all_reduce<T: Element>(comm: &dyn Communicator, data: &mut [T]) -> Result<()> {
    match T::DTYPE {
        DType::F32 => comm.all_reduce_f32(cast_mut::<T, f32>(data)),
        DType::F64 => comm.all_reduce_f64(cast_mut::<T, f64>(data)),
    }
}

fn cast_mut<T: Element, U: Element>(data: &mut [T]) -> &mut [U] {
    assert_eq!(T::DTYPE, U::DTYPE);
    // SAFETY: T and U are the same type (same DType ⇒ same concrete Element type).
    unsafe { std::slice::from_raw_parts_mut(data.as_mut_ptr() as *mut U, data.len()) }
}

/// Check that every worker holds the same `what` (a config, a model file): its bytes
/// are hashed and the hashes compared. Fails on every worker, naming the ranks that
/// differ from rank 0.
pub fn check_same(comm: &dyn Communicator, what: &str, bytes: &[u8]) -> Result<()> {
    if comm.size() == 1 {
        return Ok(());
    }
    let h = fnv1a(bytes).to_le_bytes();
    let all = comm.all_gather(&h)?;
    let differ: Vec<usize> = (1..all.len()).filter(|&r| all[r] != all[0]).collect();
    if differ.is_empty() {
        return Ok(());
    }
    let ranks: Vec<String> = differ.iter().map(|r| r.to_string()).collect();
    Err(Error::distributed(
        differ.first().copied(),
        format!(
            "{what} differs between the workers: rank(s) {} do not have rank 0's (start every worker with the same {what})",
            ranks.join(", ")
        ),
    ))
}

/// FNV-1a, 64 bits: a fingerprint to compare, not a cryptographic hash.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The communicator of a single worker: every collective is the identity.
#[derive(Debug, Default, Clone, Copy)]
pub struct SingleProcess;

impl Communicator for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_reduce_f32(&self, _data: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn all_reduce_f64(&self, _data: &mut [f64]) -> Result<()> {
        Ok(())
    }
    fn all_gather(&self, data: &[u8]) -> Result<Vec<Vec<u8>>> {
        Ok(vec![data.to_vec()])
    }
    fn broadcast(&self, _data: &mut Vec<u8>, root: usize) -> Result<()> {
        check_root(root, 1)
    }
    fn barrier(&self) -> Result<()> {
        Ok(())
    }
    fn finalize(&self) -> Result<()> {
        Ok(())
    }
    fn describe(&self) -> String {
        "single process".into()
    }
}

fn check_root(root: usize, size: usize) -> Result<()> {
    if root >= size {
        return Err(Error::invalid(
            "broadcast",
            format!("root rank {root} is not one of the {size} workers"),
        ));
    }
    Ok(())
}

/// Workers as threads of one process, exchanging through shared memory: what a test
/// needs to run a distributed learner without MPI. Create the group with
/// [`ThreadGroup::new`] and hand one member to each thread.
#[derive(Debug, Clone)]
pub struct ThreadGroup {
    rank: usize,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    size: usize,
    state: Mutex<Round>,
    cv: Condvar,
}

/// One collective in progress: every worker deposits its bytes; the last one to
/// arrive completes the round; each worker takes the result and the last to leave
/// opens the next round.
#[derive(Debug, Default)]
struct Round {
    generation: u64,
    inputs: Vec<Option<Vec<u8>>>,
    result: Option<Arc<Vec<Vec<u8>>>>,
    taken: usize,
    finalized: bool,
}

impl ThreadGroup {
    /// `size` members of one group, ranks 0..size.
    pub fn new(size: usize) -> Vec<ThreadGroup> {
        let shared = Arc::new(Shared {
            size,
            state: Mutex::new(Round {
                inputs: vec![None; size],
                ..Round::default()
            }),
            cv: Condvar::new(),
        });
        (0..size)
            .map(|rank| ThreadGroup {
                rank,
                shared: shared.clone(),
            })
            .collect()
    }

    /// Deposit `mine`, wait for every member, return all deposits in rank order.
    fn exchange(&self, mine: Vec<u8>) -> Result<Arc<Vec<Vec<u8>>>> {
        let sh = &self.shared;
        let poisoned = |_| Error::distributed(None, "a worker thread panicked");
        let mut st = sh.state.lock().map_err(poisoned)?;
        // wait until the previous round is fully taken
        while st.result.is_some() {
            st = sh.cv.wait(st).map_err(poisoned)?;
        }
        if st.finalized {
            return Err(Error::distributed(
                Some(self.rank),
                "the communicator was finalized",
            ));
        }
        let generation = st.generation;
        st.inputs[self.rank] = Some(mine);
        if st.inputs.iter().all(|x| x.is_some()) {
            let all: Vec<Vec<u8>> = st
                .inputs
                .iter_mut()
                .map(|x| x.take().unwrap_or_default())
                .collect();
            st.result = Some(Arc::new(all));
            st.taken = 0;
            sh.cv.notify_all();
        }
        while st.generation == generation && st.result.is_none() {
            st = sh.cv.wait(st).map_err(poisoned)?;
        }
        let r = st
            .result
            .clone()
            .ok_or_else(|| Error::distributed(None, "collective lost"))?;
        st.taken += 1;
        if st.taken == sh.size {
            st.result = None;
            st.generation += 1;
            sh.cv.notify_all();
        }
        Ok(r)
    }

    fn reduce<T: Element>(&self, data: &mut [T]) -> Result<()> {
        let bytes = to_bytes(data);
        let all = self.exchange(bytes)?;
        data.fill(T::zero());
        // every member sums in rank order: the same bits everywhere
        for b in all.iter() {
            for (d, x) in data.iter_mut().zip(from_bytes::<T>(b)) {
                *d += x;
            }
        }
        Ok(())
    }
}

pub(crate) fn to_bytes<T: Element>(data: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 8);
    for &x in data {
        match T::DTYPE {
            DType::F32 => out.extend_from_slice(&(x.as_f64() as f32).to_le_bytes()),
            DType::F64 => out.extend_from_slice(&x.as_f64().to_le_bytes()),
        }
    }
    out
}

pub(crate) fn from_bytes<T: Element>(b: &[u8]) -> impl Iterator<Item = T> + '_ {
    let w = match T::DTYPE {
        DType::F32 => 4,
        DType::F64 => 8,
    };
    b.chunks_exact(w).map(move |c| match T::DTYPE {
        DType::F32 => T::from_f64(f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64),
        DType::F64 => T::from_f64(f64::from_le_bytes([
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
        ])),
    })
}

impl Communicator for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.shared.size
    }
    fn all_reduce_f32(&self, data: &mut [f32]) -> Result<()> {
        self.reduce(data)
    }
    fn all_reduce_f64(&self, data: &mut [f64]) -> Result<()> {
        self.reduce(data)
    }
    fn all_gather(&self, data: &[u8]) -> Result<Vec<Vec<u8>>> {
        Ok(self.exchange(data.to_vec())?.as_ref().clone())
    }
    fn broadcast(&self, data: &mut Vec<u8>, root: usize) -> Result<()> {
        check_root(root, self.size())?;
        let mine = if self.rank == root {
            data.clone()
        } else {
            Vec::new()
        };
        let all = self.exchange(mine)?;
        *data = all[root].clone();
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        self.exchange(Vec::new()).map(|_| ())
    }
    fn finalize(&self) -> Result<()> {
        self.barrier()?;
        if let Ok(mut st) = self.shared.state.lock() {
            st.finalized = true;
        }
        Ok(())
    }
    fn describe(&self) -> String {
        format!("{} threads of one process", self.shared.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_group_collectives() {
        let group = ThreadGroup::new(3);
        let handles: Vec<_> = group
            .into_iter()
            .map(|c| {
                std::thread::spawn(move || {
                    let r = c.rank() as f32;
                    let mut v = vec![r, 2.0 * r, 1.0];
                    c.all_reduce_f32(&mut v).unwrap();
                    let g = c
                        .all_gather(&[c.rank() as u8; 2][..c.rank() % 2 + 1])
                        .unwrap();
                    let mut b = if c.rank() == 1 { vec![7u8, 8] } else { vec![] };
                    c.broadcast(&mut b, 1).unwrap();
                    for _ in 0..50 {
                        c.barrier().unwrap();
                    }
                    (v, g, b)
                })
            })
            .collect();
        for h in handles {
            let (v, g, b) = h.join().unwrap();
            assert_eq!(v, vec![3.0, 6.0, 3.0]);
            assert_eq!(g, vec![vec![0u8], vec![1, 1], vec![2]]);
            assert_eq!(b, vec![7, 8]);
        }
    }

    #[test]
    fn check_same_names_the_odd_rank() {
        let group = ThreadGroup::new(3);
        let handles: Vec<_> = group
            .into_iter()
            .map(|c| {
                std::thread::spawn(move || {
                    let cfg: &[u8] = if c.rank() == 2 {
                        b"model = b.model"
                    } else {
                        b"model = a.model"
                    };
                    check_same(&c, "config", cfg).map_err(|e| e.to_string())
                })
            })
            .collect();
        for h in handles {
            let e = h.join().unwrap().unwrap_err();
            assert!(e.contains("rank 2") && e.contains("config differs"), "{e}");
        }
    }
}
