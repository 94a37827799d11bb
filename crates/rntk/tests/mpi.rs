//! Data-parallel training over MPI (cargo feature `mpi`), issue #17. Run as
//! `cargo test -p rntk --features mpi --test mpi`: this program starts itself again
//! under `mpirun -np 2 --oversubscribe` (the command in `RNTK_MPIRUN`, split on
//! spaces, replaces `mpirun --oversubscribe --allow-run-as-root`) and checks that
//! every worker passed. Under the launcher each worker runs the checks below; rank 0
//! also trains the single-worker reference and compares.

mod distributed_support;

use distributed_support::{
    check, corpus, rounding_floor, session, temp_dir, train_distributed, train_single, Fault, Model,
};
use rntk::distributed::{self, check_same, Communicator};
use rntk::train::CheckpointConfig;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn launcher() -> Vec<String> {
    match std::env::var("RNTK_MPIRUN") {
        Ok(s) if !s.trim().is_empty() => s.split_whitespace().map(String::from).collect(),
        _ => ["mpirun", "--oversubscribe", "--allow-run-as-root"]
            .map(String::from)
            .to_vec(),
    }
}

/// Start this program under the launcher with `np` workers and `args`.
fn launch(np: usize, args: &[&str]) -> std::process::Output {
    launch_env(np, args, &[])
}

fn launch_env(np: usize, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let exe = std::env::current_exe().expect("test executable");
    let mut l = launcher();
    let program = l.remove(0);
    let out = Command::new(&program)
        .args(&l)
        .args(["-np", &np.to_string()])
        .arg(exe)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot start {program} (install Open MPI: apt-get install openmpi-bin libopenmpi-dev): {e}"));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    print!("{}", String::from_utf8_lossy(&out.stdout));
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !distributed::launched_by_mpi() {
        equivalence_test();
        faults_test();
        return;
    }
    let comm = distributed::communicator().expect("MPI communicator");
    match args.get(1).map(String::as_str) {
        Some("equivalence") => equivalence(comm.as_ref(), &comm),
        Some("session") => {
            let dir = PathBuf::from(&args[2]);
            let fault = match args.get(3).map(String::as_str) {
                // minibatch 60: after the checkpoint at 300 samples (the trainer counts
                // labels, ~8 per minibatch)
                Some("kill") => Some(Fault::Kill { at: 60 }),
                Some("freeze") => Some(Fault::Freeze { at: 25 }),
                _ => None,
            };
            // only the last rank is hit
            let fault = fault.filter(|_| comm.rank() + 1 == comm.size());
            worker_session(&dir, comm.clone(), fault);
        }
        other => panic!("unknown worker task {other:?}"),
    }
    distributed::finalize().expect("finalize");
}

fn equivalence_test() {
    let t0 = Instant::now();
    let out = launch(2, &["--worker", "equivalence"]);
    assert!(
        out.status.success(),
        "mpirun -np 2 (equivalence): {}",
        out.status
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for m in ["Seed", "Slots"] {
        assert!(
            text.contains(&format!("ok {m} rank 0")) && text.contains(&format!("ok {m} rank 1")),
            "both workers report {m}"
        );
    }
    println!(
        "test mpi equivalence ... ok ({:.1} s)",
        t0.elapsed().as_secs_f64()
    );
}

/// A training session with checkpoints every 300 samples; rank 0 writes the final
/// parameters to DIR/params.bin.
fn worker_session(dir: &Path, comm: std::sync::Arc<dyn Communicator>, fault: Option<Fault>) {
    let mut ck = CheckpointConfig::new(dir.join("m.model"));
    ck.frequency = Some(300);
    let rank = comm.rank();
    let s = session(&dir.join("train.ctf"), Some(comm), 1500, Some(ck), 0, fault);
    if rank == 0 {
        let bytes: Vec<u8> = s
            .params
            .iter()
            .flatten()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        std::fs::write(dir.join("params.bin"), bytes).unwrap();
    }
}

fn session_dir(tag: &str) -> PathBuf {
    let d = temp_dir(&format!("mpi-{tag}"));
    corpus(&d, 300);
    d
}

/// The fault tests: a worker killed with `kill -9` mid-training makes the run stop
/// with an error naming it, in bounded time, and resuming from the last checkpoint
/// gives the parameters of an uninterrupted run; a frozen worker is named by the
/// watchdog once its heartbeats stop for RNTK_HEARTBEAT_TIMEOUT.
fn faults_test() {
    let t0 = Instant::now();
    let whole = session_dir("whole");
    let out = launch(2, &["--worker", "session", whole.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "uninterrupted session: {}",
        out.status
    );

    let killed = session_dir("killed");
    let t = Instant::now();
    let out = launch(
        2,
        &["--worker", "session", killed.to_str().unwrap(), "kill"],
    );
    let took = t.elapsed();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "a killed worker fails the run");
    assert!(took < Duration::from_secs(60), "stopped in {took:?}");
    assert!(text.contains("rank 1"), "the error names rank 1: {text}");
    assert!(
        killed.join("m.model.ckp").exists(),
        "a checkpoint was written before the kill"
    );
    println!(
        "test mpi kill -9 of rank 1 ... stopped in {:.1} s",
        took.as_secs_f64()
    );
    let out = launch(2, &["--worker", "session", killed.to_str().unwrap()]);
    assert!(out.status.success(), "resumed session: {}", out.status);
    let a = std::fs::read(whole.join("params.bin")).unwrap();
    let b = std::fs::read(killed.join("params.bin")).unwrap();
    assert!(
        a == b,
        "resuming after the kill reaches the uninterrupted run's parameters"
    );
    println!("test mpi resume after kill -9 = uninterrupted ... ok");

    let frozen = session_dir("frozen");
    let t = Instant::now();
    let out = launch_env(
        2,
        &["--worker", "session", frozen.to_str().unwrap(), "freeze"],
        &[("RNTK_HEARTBEAT_TIMEOUT", "3")],
    );
    let took = t.elapsed();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "a frozen worker fails the run");
    assert!(took < Duration::from_secs(45), "stopped in {took:?}");
    assert!(
        text.contains("worker rank 1 sent no heartbeat"),
        "the watchdog names rank 1: {text}"
    );
    println!(
        "test mpi frozen rank 1 (heartbeat timeout 3 s) ... stopped in {:.1} s",
        took.as_secs_f64()
    );
    println!(
        "test mpi faults ... ok ({:.1} s)",
        t0.elapsed().as_secs_f64()
    );
}

fn equivalence(comm: &dyn Communicator, shared: &std::sync::Arc<dyn Communicator>) {
    for model in [Model::Seed, Model::Slots] {
        // buckets of 64 KiB: the gradients travel while the backward pass goes on
        let out = train_distributed(model, shared.clone(), 64 << 10);
        // every worker ends with exactly the same parameters
        let bytes: Vec<u8> = out
            .params
            .iter()
            .flatten()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        check_same(comm, "the trained parameters", &bytes).expect("workers agree");
        if comm.rank() == 0 {
            let single = train_single(model, false);
            let floor = rounding_floor(model, &single);
            let d = check(model, &out, &single, floor);
            println!(
                "{model:?}: 2 MPI workers x m/2 vs 1 x m after 50 minibatches: max relative parameter difference {d:e} (rounding floor {floor:e})"
            );
        }
        comm.barrier().expect("barrier");
        println!("ok {model:?} rank {}", comm.rank());
    }
}
