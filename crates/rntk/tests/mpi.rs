//! Data-parallel training over MPI (cargo feature `mpi`), issue #17. Run as
//! `cargo test -p rntk --features mpi --test mpi`: this program starts itself again
//! under `mpirun -np 2 --oversubscribe` (the command in `RNTK_MPIRUN`, split on
//! spaces, replaces `mpirun --oversubscribe --allow-run-as-root`) and checks that
//! every worker passed. Under the launcher each worker runs the checks below; rank 0
//! also trains the single-worker reference and compares.

mod distributed_support;

use distributed_support::{check, rounding_floor, train_distributed, train_single, Model};
use rntk::distributed::{self, check_same, Communicator};
use std::process::Command;
use std::time::Instant;

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
    let exe = std::env::current_exe().expect("test executable");
    let mut l = launcher();
    let program = l.remove(0);
    let out = Command::new(&program)
        .args(&l)
        .args(["-np", &np.to_string()])
        .arg(exe)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {program} (install Open MPI: apt-get install openmpi-bin libopenmpi-dev): {e}"));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    print!("{}", String::from_utf8_lossy(&out.stdout));
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !distributed::launched_by_mpi() {
        // the test driver: run the workers
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
                text.contains(&format!("ok {m} rank 0"))
                    && text.contains(&format!("ok {m} rank 1")),
                "both workers report {m}"
            );
        }
        println!(
            "test mpi equivalence ... ok ({:.1} s)",
            t0.elapsed().as_secs_f64()
        );
        return;
    }
    let comm = distributed::communicator().expect("MPI communicator");
    assert_eq!(comm.size(), 2, "run with 2 workers");
    match args.get(1).map(String::as_str) {
        Some("equivalence") => equivalence(comm.as_ref(), &comm),
        other => panic!("unknown worker task {other:?}"),
    }
    distributed::finalize().expect("finalize");
}

fn equivalence(comm: &dyn Communicator, shared: &std::sync::Arc<dyn Communicator>) {
    for model in [Model::Seed, Model::Slots] {
        let out = train_distributed(model, shared.clone());
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
