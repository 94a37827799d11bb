//! The MPI communicator (cargo feature `mpi`, the `mpi` crate over the system's MPI):
//! MPI's world, every call serialized through one lock, and a [`Watchdog`] beside it
//! so that a worker that dies or freezes makes the others stop with an error naming
//! it instead of hanging in a collective (MPI's default).

use super::communicator::Communicator;
use super::watchdog::{Watchdog, WatchdogOptions};
use crate::error::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::Communicator as _;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Threading;
use std::sync::Mutex;
use std::time::Duration;

/// Options of the MPI communicator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MpiOptions {
    /// Run the failure watchdog (heartbeats over TCP between rank 0 and the others).
    pub watchdog: bool,
    /// Heartbeats are sent this often...
    pub heartbeat_interval: Duration,
    /// ...and a worker silent this long is taken as lost (a worker that exits or
    /// is killed is noticed at once: its connection closes).
    pub heartbeat_timeout: Duration,
}

impl Default for MpiOptions {
    fn default() -> Self {
        let secs = |var: &str, d: f64| {
            std::env::var(var)
                .ok()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0)
                .unwrap_or(d)
        };
        MpiOptions {
            watchdog: std::env::var("RNTK_WATCHDOG").map_or(true, |v| v != "0"),
            heartbeat_interval: Duration::from_secs_f64(secs("RNTK_HEARTBEAT_INTERVAL", 1.0)),
            heartbeat_timeout: Duration::from_secs_f64(secs("RNTK_HEARTBEAT_TIMEOUT", 30.0)),
        }
    }
}

struct World {
    // dropped last: MPI_Finalize
    _universe: Universe,
    comm: SimpleCommunicator,
}

/// MPI's world as a [`Communicator`].
pub struct MpiCommunicator {
    world: Mutex<Option<World>>,
    rank: usize,
    size: usize,
    library: String,
    watchdog: Option<Watchdog>,
}

// SAFETY: MPI is initialized with MPI_THREAD_SERIALIZED and every call goes through
// the `world` lock, so no two threads are ever inside MPI at once.
unsafe impl Send for MpiCommunicator {}
unsafe impl Sync for MpiCommunicator {}

impl std::fmt::Debug for MpiCommunicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

fn mpi_err(detail: impl Into<String>) -> Error {
    Error::distributed(None, detail)
}

impl MpiCommunicator {
    /// Initialize MPI (once per process) and start the watchdog.
    pub fn init(options: MpiOptions) -> Result<MpiCommunicator> {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| {
                mpi_err(
                    "MPI is already initialized in this process (initialize it once, through rntk)",
                )
            })?;
        if !matches!(threading, Threading::Serialized | Threading::Multiple) {
            return Err(mpi_err(format!(
                "the MPI library offers thread level {threading:?}; rntk needs Serialized"
            )));
        }
        let comm = universe.world();
        let rank = comm.rank() as usize;
        let size = comm.size() as usize;
        let library = mpi::environment::library_version()
            .map(|v| {
                v.lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_end_matches(',')
                    .to_string()
            })
            .unwrap_or_else(|_| "MPI".into());
        let mut c = MpiCommunicator {
            world: Mutex::new(Some(World {
                _universe: universe,
                comm,
            })),
            rank,
            size,
            library,
            watchdog: None,
        };
        if options.watchdog && size > 1 {
            let wd = Watchdog::start(
                rank,
                size,
                WatchdogOptions {
                    interval: options.heartbeat_interval,
                    timeout: options.heartbeat_timeout,
                },
                |bytes| c.broadcast_raw(bytes, 0),
            )?;
            c.watchdog = Some(wd);
        }
        Ok(c)
    }

    /// Run one MPI call on the world, watched: refused if a worker was already lost;
    /// if one is lost while this call waits, the watchdog ends the process.
    fn call<R>(&self, f: impl FnOnce(&SimpleCommunicator) -> Result<R>) -> Result<R> {
        let _guard = match &self.watchdog {
            Some(w) => Some(w.enter()?),
            None => None,
        };
        let w = self
            .world
            .lock()
            .map_err(|_| mpi_err("MPI lock poisoned"))?;
        let world = w
            .as_ref()
            .ok_or_else(|| mpi_err("the communicator was finalized"))?;
        f(&world.comm)
    }

    fn broadcast_raw(&self, data: &mut Vec<u8>, root: usize) -> Result<()> {
        let w = self
            .world
            .lock()
            .map_err(|_| mpi_err("MPI lock poisoned"))?;
        let world = &w.as_ref().ok_or_else(|| mpi_err("finalized"))?.comm;
        broadcast_in(world, data, root)
    }
}

fn broadcast_in(world: &SimpleCommunicator, data: &mut Vec<u8>, root: usize) -> Result<()> {
    let p = world.process_at_rank(root as i32);
    let mut len = data.len() as u64;
    p.broadcast_into(&mut len);
    if world.rank() as usize != root {
        data.clear();
        data.resize(len as usize, 0);
    }
    for c in data.chunks_mut(CHUNK) {
        p.broadcast_into(c);
    }
    Ok(())
}

/// Elements per MPI call: counts are C ints.
const CHUNK: usize = 1 << 30;

fn reduce<T: Copy + Equivalence + Default>(world: &SimpleCommunicator, data: &mut [T]) {
    let send: Vec<T> = data.to_vec();
    for (s, r) in send.chunks(CHUNK).zip(data.chunks_mut(CHUNK)) {
        world.all_reduce_into(s, r, SystemOperation::sum());
    }
}

impl Communicator for MpiCommunicator {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn all_reduce_f32(&self, data: &mut [f32]) -> Result<()> {
        self.call(|w| {
            reduce(w, data);
            Ok(())
        })
    }
    fn all_reduce_f64(&self, data: &mut [f64]) -> Result<()> {
        self.call(|w| {
            reduce(w, data);
            Ok(())
        })
    }
    fn all_gather(&self, data: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.call(|w| {
            let n = self.size;
            let mut lens = vec![0i64; n];
            w.all_gather_into(&(data.len() as i64), &mut lens[..]);
            let total: i64 = lens.iter().sum();
            if total > i32::MAX as i64 {
                return Err(mpi_err(format!(
                    "all_gather of {total} bytes exceeds MPI's 2 GiB count limit"
                )));
            }
            let counts: Vec<i32> = lens.iter().map(|&l| l as i32).collect();
            let displs: Vec<i32> = counts
                .iter()
                .scan(0i32, |acc, &c| {
                    let d = *acc;
                    *acc += c;
                    Some(d)
                })
                .collect();
            let mut buf = vec![0u8; total as usize];
            {
                let mut part = PartitionMut::new(&mut buf[..], counts.clone(), &displs[..]);
                w.all_gather_varcount_into(data, &mut part);
            }
            Ok(counts
                .iter()
                .zip(&displs)
                .map(|(&c, &d)| buf[d as usize..(d + c) as usize].to_vec())
                .collect())
        })
    }
    fn broadcast(&self, data: &mut Vec<u8>, root: usize) -> Result<()> {
        if root >= self.size {
            return Err(Error::invalid(
                "broadcast",
                format!("root rank {root} is not one of the {} workers", self.size),
            ));
        }
        self.call(|w| broadcast_in(w, data, root))
    }
    fn barrier(&self) -> Result<()> {
        self.call(|w| {
            w.barrier();
            Ok(())
        })
    }
    fn finalize(&self) -> Result<()> {
        let mut w = self
            .world
            .lock()
            .map_err(|_| mpi_err("MPI lock poisoned"))?;
        let Some(world) = w.as_ref() else {
            return Ok(());
        };
        {
            let _guard = match &self.watchdog {
                Some(wd) => Some(wd.enter()?),
                None => None,
            };
            world.comm.barrier();
        }
        // every worker got here: the watchdog says goodbye before MPI goes away
        if let Some(wd) = &self.watchdog {
            wd.stop();
        }
        *w = None; // MPI_Finalize
        Ok(())
    }
    fn describe(&self) -> String {
        format!("MPI ({}), {} workers", self.library, self.size)
    }
}
