//! Failure detection beside MPI. MPI's collectives wait forever for a worker that
//! died or froze (Open MPI's launcher often, not always, tears the job down; another
//! launcher, a frozen process or a lost machine leave the others hanging). The
//! watchdog keeps a TCP connection from every worker to rank 0 (a star, set up over
//! MPI at start) and sends a heartbeat byte each `interval`:
//!
//! * a worker that exits or is killed closes its connection: noticed at once;
//! * a worker silent for `timeout` (frozen, machine or network lost) is taken as lost;
//! * rank 0 relays a loss to every other worker; a loss of rank 0 is seen by all.
//!
//! A lost worker is recorded with its rank. The next collective then fails with
//! [`Error::Distributed`] naming it; if the training thread is already waiting inside
//! a collective (which MPI cannot cancel), the watchdog writes the error to stderr and
//! ends the process with status [`EXIT_WORKER_LOST`]. A clean `finalize` says goodbye
//! first, so a worker that finished is not mistaken for a lost one.

use crate::error::{Error, Result};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Exit status of a worker that the watchdog stopped because another was lost.
pub const EXIT_WORKER_LOST: i32 = 3;

const HEARTBEAT: u8 = b'H';
const BYE: u8 = b'B';
const LOST: u8 = b'L';

#[derive(Clone, Copy, Debug)]
pub struct WatchdogOptions {
    pub interval: Duration,
    pub timeout: Duration,
}

#[derive(Default)]
struct State {
    lost: Mutex<Option<(usize, String)>>,
    /// The training thread is inside a collective.
    waiting: AtomicUsize,
    stopped: AtomicBool,
    peers: Mutex<Vec<(usize, TcpStream)>>,
}

/// The running watchdog of one worker.
pub struct Watchdog {
    rank: usize,
    state: Arc<State>,
}

/// While alive, the training thread counts as waiting in a collective.
pub struct Entered<'a>(&'a State);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

fn err(detail: impl Into<String>) -> Error {
    Error::distributed(None, detail)
}

impl Watchdog {
    /// Connect the workers (rank 0 listens; its addresses travel by `broadcast`) and
    /// start the heartbeat threads.
    pub fn start(
        rank: usize,
        size: usize,
        opts: WatchdogOptions,
        broadcast: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<Watchdog> {
        let state = Arc::new(State::default());
        let connect_timeout = Duration::from_secs(30).max(opts.timeout);
        if rank == 0 {
            let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))
                .map_err(|e| err(format!("watchdog: cannot listen on a TCP port: {e}")))?;
            let port = listener
                .local_addr()
                .map_err(|e| err(e.to_string()))?
                .port();
            let mut msg = format!("{}|{port}", local_addresses().join(",")).into_bytes();
            broadcast(&mut msg)?;
            listener
                .set_nonblocking(true)
                .map_err(|e| err(e.to_string()))?;
            let deadline = Instant::now() + connect_timeout;
            let mut peers = Vec::new();
            while peers.len() < size - 1 {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).map_err(|e| err(e.to_string()))?;
                        s.set_read_timeout(Some(connect_timeout)).ok();
                        let mut b = [0u8; 4];
                        s.read_exact(&mut b)
                            .map_err(|e| err(format!("watchdog hello: {e}")))?;
                        peers.push((u32::from_le_bytes(b) as usize, s));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        if Instant::now() > deadline {
                            let missing: Vec<String> = (1..size)
                                .filter(|r| !peers.iter().any(|(p, _)| p == r))
                                .map(|r| r.to_string())
                                .collect();
                            return Err(Error::distributed(
                                missing.first().and_then(|r| r.parse().ok()),
                                format!("watchdog: rank(s) {} did not connect to rank 0 within {:?} (a firewall between the machines? set RNTK_WATCHDOG=0 to run without it)", missing.join(", "), connect_timeout),
                            ));
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => return Err(err(format!("watchdog accept: {e}"))),
                }
            }
            peers.sort_by_key(|p| p.0);
            *state.peers.lock().expect("watchdog lock") = peers;
        } else {
            let mut msg = Vec::new();
            broadcast(&mut msg)?;
            let text = String::from_utf8_lossy(&msg).to_string();
            let (addrs, port) = text
                .split_once('|')
                .ok_or_else(|| err(format!("watchdog: bad address message {text:?}")))?;
            let port: u16 = port.parse().map_err(|_| err("watchdog: bad port"))?;
            let mut stream = None;
            let mut last = String::new();
            for a in addrs.split(',').filter(|a| !a.is_empty()) {
                let Ok(ip) = a.parse::<Ipv4Addr>() else {
                    continue;
                };
                match TcpStream::connect_timeout(
                    &SocketAddr::from((ip, port)),
                    Duration::from_secs(5),
                ) {
                    Ok(s) => {
                        stream = Some(s);
                        break;
                    }
                    Err(e) => last = format!("{a}:{port}: {e}"),
                }
            }
            let mut s = stream.ok_or_else(|| {
                Error::distributed(Some(0), format!("watchdog: cannot reach rank 0 ({last}); set RNTK_WATCHDOG=0 to run without it"))
            })?;
            s.write_all(&(rank as u32).to_le_bytes())
                .map_err(|e| err(e.to_string()))?;
            *state.peers.lock().expect("watchdog lock") = vec![(0, s)];
        }
        let w = Watchdog { rank, state };
        w.spawn_threads(opts)?;
        Ok(w)
    }

    fn spawn_threads(&self, opts: WatchdogOptions) -> Result<()> {
        let peers: Vec<(usize, TcpStream)> = {
            let p = self.state.peers.lock().expect("watchdog lock");
            p.iter()
                .map(|(r, s)| s.try_clone().map(|s| (*r, s)))
                .collect::<std::io::Result<_>>()
                .map_err(|e| err(e.to_string()))?
        };
        for (peer, mut s) in peers {
            let state = self.state.clone();
            let me = self.rank;
            s.set_read_timeout(Some(opts.timeout)).ok();
            std::thread::Builder::new()
                .name(format!("rntk-watchdog-{peer}"))
                .spawn(move || listen(me, peer, &mut s, &state, opts.timeout))
                .map_err(|e| err(e.to_string()))?;
        }
        let state = self.state.clone();
        std::thread::Builder::new()
            .name("rntk-heartbeat".into())
            .spawn(move || {
                while !state.stopped.load(Ordering::SeqCst) {
                    send_all(&state, &[HEARTBEAT]);
                    std::thread::sleep(opts.interval);
                }
            })
            .map_err(|e| err(e.to_string()))?;
        Ok(())
    }

    /// Mark the training thread as inside a collective; refused if a worker is lost.
    pub fn enter(&self) -> Result<Entered<'_>> {
        self.state.waiting.fetch_add(1, Ordering::SeqCst);
        let e = Entered(&self.state);
        if let Some((rank, why)) = self.state.lost.lock().expect("watchdog lock").clone() {
            return Err(Error::distributed(Some(rank), why));
        }
        Ok(e)
    }

    /// Clean end: tell the peers, stop the threads.
    pub fn stop(&self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        send_all(&self.state, &[BYE]);
        for (_, s) in self.state.peers.lock().expect("watchdog lock").iter() {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
    }
}

fn send_all(state: &State, bytes: &[u8]) {
    let mut peers = state.peers.lock().expect("watchdog lock");
    for (_, s) in peers.iter_mut() {
        let _ = s.write_all(bytes);
    }
}

/// Read a peer's bytes until it says goodbye or is lost.
fn listen(me: usize, peer: usize, s: &mut TcpStream, state: &Arc<State>, timeout: Duration) {
    let mut b = [0u8; 1];
    loop {
        let got = s.read(&mut b);
        if state.stopped.load(Ordering::SeqCst) {
            return;
        }
        match got {
            Ok(1) if b[0] == HEARTBEAT => {}
            Ok(1) if b[0] == BYE => return,
            Ok(1) if b[0] == LOST => {
                // rank 0 relays another worker's loss: [LOST, rank u32]
                let mut r = [0u8; 4];
                let rank = s
                    .read_exact(&mut r)
                    .map(|_| u32::from_le_bytes(r) as usize)
                    .unwrap_or(0);
                lost(
                    me,
                    state,
                    rank,
                    format!("worker rank {rank} was lost (reported by rank 0)"),
                );
                return;
            }
            Ok(0) => {
                lost(me, state, peer, format!("worker rank {peer} exited or was killed (its connection closed without a goodbye)"));
                return;
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                lost(me, state, peer, format!("worker rank {peer} sent no heartbeat for {:.0} s (frozen, or its machine or network was lost)", timeout.as_secs_f64()));
                return;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                lost(
                    me,
                    state,
                    peer,
                    format!("worker rank {peer}: connection failed ({e})"),
                );
                return;
            }
        }
    }
}

/// Record a loss; rank 0 relays it; then, if the training thread waits in a
/// collective now or later, end the process.
fn lost(me: usize, state: &Arc<State>, rank: usize, why: String) {
    {
        let mut l = state.lost.lock().expect("watchdog lock");
        if l.is_some() {
            return;
        }
        *l = Some((rank, why.clone()));
    }
    if me == 0 {
        let mut msg = vec![LOST];
        msg.extend_from_slice(&(rank as u32).to_le_bytes());
        send_all(state, &msg);
    }
    let state = state.clone();
    let _ = std::thread::Builder::new()
        .name("rntk-watchdog-exit".into())
        .spawn(move || loop {
            if state.stopped.load(Ordering::SeqCst) {
                return;
            }
            if state.waiting.load(Ordering::SeqCst) > 0 {
                let e = Error::distributed(Some(rank), why.clone());
                eprintln!(
                    "rntk: rank {me}: {e}; stopping this worker (exit status {EXIT_WORKER_LOST})"
                );
                let _ = std::io::stderr().flush();
                // MPI cannot cancel the collective this worker waits in.
                std::process::exit(EXIT_WORKER_LOST);
            }
            std::thread::sleep(Duration::from_millis(20));
        });
}

/// This machine's IPv4 addresses, loopback last (rank 0's candidates for the others).
fn local_addresses() -> Vec<String> {
    if let Ok(a) = std::env::var("RNTK_WATCHDOG_ADDR") {
        return vec![a];
    }
    let mut out = interface_addresses();
    out.retain(|a| a != "127.0.0.1");
    out.push("127.0.0.1".into());
    out
}

#[cfg(target_os = "linux")]
fn interface_addresses() -> Vec<String> {
    let mut out = Vec::new();
    // SAFETY: getifaddrs fills a list we only read, then free with freeifaddrs.
    unsafe {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut p = head;
        while !p.is_null() {
            let a = (*p).ifa_addr;
            if !a.is_null() && (*a).sa_family as i32 == libc::AF_INET {
                let sin = &*(a as *const libc::sockaddr_in);
                out.push(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).to_string());
            }
            p = (*p).ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out
}

#[cfg(not(target_os = "linux"))]
fn interface_addresses() -> Vec<String> {
    Vec::new()
}
