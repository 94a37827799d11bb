//! Data-parallel training with the workers as threads of one process (`ThreadGroup`):
//! the equivalence of issue #17 (N workers × m/N = 1 worker × m) without MPI, and the
//! distributed learners' contracts. `tests/mpi.rs` runs the same equivalence over MPI.

mod distributed_support;

use distributed_support::{check, rounding_floor, train_distributed, train_single, Model};
use rntk::distributed::{Communicator, ThreadGroup};
use std::sync::Arc;

fn threads(model: Model, workers: usize, bucket_bytes: usize) -> Vec<distributed_support::Outcome> {
    let handles: Vec<_> = ThreadGroup::new(workers)
        .into_iter()
        .map(|c| {
            std::thread::spawn(move || {
                let c: Arc<dyn Communicator> = Arc::new(c);
                train_distributed(model, c, bucket_bytes)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn equivalence(model: Model) {
    let single = train_single(model, false);
    let floor = rounding_floor(model, &single);
    // gradients exchanged after the backward pass (0), and in buckets while it goes
    // on: one gradient per bucket (1 byte) and the small ones together (64 KiB)
    let after = threads(model, 2, 0);
    for bucket in [1, 64 << 10] {
        let outs = threads(model, 2, bucket);
        // every worker holds exactly the same parameters
        assert_eq!(outs[0].params, outs[1].params, "{model:?}: workers differ");
        // the same sums as exchanged after the backward pass, bit for bit
        assert_eq!(
            outs[0].params, after[0].params,
            "{model:?}: buckets of {bucket}"
        );
        assert_eq!(
            outs[0].losses, after[0].losses,
            "{model:?}: buckets of {bucket}"
        );
        let d = check(model, &outs[0], &single, floor);
        eprintln!(
            "{model:?}: 2 threads x m/2 vs 1 x m (buckets of {bucket} bytes): max relative difference {d:e} (rounding floor {floor:e})"
        );
    }
}

#[test]
fn seed_two_workers_equal_one() {
    equivalence(Model::Seed);
}

#[test]
fn slots_two_workers_equal_one() {
    equivalence(Model::Slots);
}

// --- the data split and the training session --------------------------------------

use distributed_support::{corpus, max_difference, session, source, temp_dir};
use rntk::train::CheckpointConfig;
use std::collections::BTreeMap;

#[test]
fn partitions_are_the_whole_minibatch_split_by_chunk() {
    let dir = temp_dir("partition");
    let path = corpus(&dir, 300);
    let mut whole = source(&path);
    let mut parts = [source(&path), source(&path)];
    let mut both = 0;
    for _ in 0..120 {
        let w = whole.next_minibatch(40).unwrap().unwrap();
        let mut keys = BTreeMap::new();
        let mut nonempty = 0;
        for (r, p) in parts.iter_mut().enumerate() {
            let got = p.next_minibatch_partition(40, 2, r).unwrap().unwrap();
            assert_eq!(got.end_of_sweep, w.end_of_sweep());
            assert_eq!(p.current_position(), whole.current_position());
            if let Some(mb) = got.minibatch {
                nonempty += 1;
                for k in mb.keys {
                    *keys.entry(k).or_insert(0) += 1;
                }
            }
        }
        both += (nonempty == 2) as usize;
        let mut want = BTreeMap::new();
        for k in w.keys {
            *want.entry(k).or_insert(0) += 1;
        }
        assert_eq!(
            keys, want,
            "the partitions are the whole minibatch, disjoint"
        );
    }
    assert!(
        both > 60,
        "both partitions have data in most minibatches ({both})"
    );
    assert!(parts[0].next_minibatch_partition(40, 2, 2).is_err());
}

/// Run `f(rank, communicator)` on 2 thread workers.
fn on_two<R: Send + 'static>(
    f: impl Fn(usize, Arc<dyn Communicator>) -> R + Send + Sync + Clone + 'static,
) -> Vec<R> {
    let hs: Vec<_> = ThreadGroup::new(2)
        .into_iter()
        .map(|c| {
            let f = f.clone();
            std::thread::spawn(move || f(c.rank(), Arc::new(c) as Arc<dyn Communicator>))
        })
        .collect();
    hs.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn session_splits_the_data_and_rank_0_reports_and_checkpoints() {
    let dir = temp_dir("session");
    let path = corpus(&dir, 300);
    let single = session(&path, None, 1200, None, 0, None);
    for after in [0u64, 200] {
        let (p, d) = (path.clone(), dir.clone());
        let outs = on_two(move |rank, c| {
            let ck = d.join(format!("after{after}-rank{rank}.model"));
            session(
                &p,
                Some(c),
                1200,
                Some(CheckpointConfig::new(ck)),
                after,
                None,
            )
        });
        assert_eq!(outs[0].params, outs[1].params, "workers agree");
        let diff = max_difference(&outs[0].params, &single.params);
        assert!(
            diff <= 1e-5,
            "distributed_after {after}: {diff:e} from one worker"
        );
        assert!(
            outs[1].text.is_empty(),
            "rank 1 prints nothing: {}",
            outs[1].text
        );
        let lines = |t: &str| t.lines().filter(|l| l.contains("Minibatch[")).count();
        assert_eq!(
            lines(&outs[0].text),
            lines(&single.text),
            "{}",
            outs[0].text
        );
        assert!(dir.join(format!("after{after}-rank0.model.ckp")).exists());
        assert!(!dir.join(format!("after{after}-rank1.model.ckp")).exists());
    }
}

#[test]
fn a_checkpoint_resumes_on_the_same_workers_as_an_uninterrupted_run() {
    let dir = temp_dir("resume");
    let path = corpus(&dir, 300);
    // uninterrupted, keeping the checkpoint taken after 600 samples
    let (p, d) = (path.clone(), dir.clone());
    let whole = on_two(move |_, c| {
        let mut ck = CheckpointConfig::new(d.join("m.model"));
        ck.frequency = Some(600);
        ck.preserve_all = true;
        session(&p, Some(c), 1200, Some(ck), 0, None)
    });
    std::fs::copy(dir.join("m.model0.ckp"), dir.join("r.model.ckp")).unwrap();
    let (p, d) = (path.clone(), dir.clone());
    let resumed = on_two(move |_, c| {
        let mut ck = CheckpointConfig::new(d.join("r.model"));
        ck.frequency = Some(600);
        session(&p, Some(c), 1200, Some(ck), 0, None)
    });
    assert_eq!(
        resumed[0].params, whole[0].params,
        "resumed = uninterrupted"
    );
    assert_eq!(resumed[1].params, whole[1].params);
}

// --- the distributed learners' formulas ----------------------------------------------

use rntk::distributed::{
    block_momentum_distributed_learner, data_parallel_distributed_learner, BlockMomentumOptions,
    DataParallelOptions,
};
use rntk::initializer::Initializer;
use rntk::learners::{sgd, Learner, LearnerOptions, MinibatchInfo, Schedule};
use rntk::{DType, Tensor, Variable};

/// A parameter holding `v` and plain SGD with learning rate 1 per sample on it (the
/// update is w −= Σ gradient, whatever the minibatch's N).
fn sgd_on(v: &[f64]) -> (Variable, Box<dyn Learner>) {
    let p = rntk::parameter([v.len()], DType::F64, Initializer::zero(), "w").unwrap();
    p.set_value(Tensor::from_vec([v.len()], v.to_vec()).unwrap())
        .unwrap();
    let l = sgd(
        std::slice::from_ref(&p),
        Schedule::constant(1.0).per_sample(),
        LearnerOptions::default(),
    )
    .unwrap();
    (p, Box::new(l))
}

fn step(l: &mut dyn Learner, p: &Variable, g: &[f64]) {
    let mut grads = vec![(p.clone(), Tensor::from_vec([g.len()], g.to_vec()).unwrap())];
    let mut info = MinibatchInfo {
        sample_count: 1,
        ..Default::default()
    };
    l.update_minibatch(&mut grads, &mut info).unwrap();
}

fn values(p: &Variable) -> Vec<f64> {
    p.value().unwrap().as_slice::<f64>().unwrap().to_vec()
}

/// Two workers, one sample each per step, block size 2 (one step per block): the block
/// update by hand with μ = 1 − 1/2 (CNTK's default), η_b = 1.
#[test]
fn block_momentum_follows_cntks_formula() {
    for nesterov in [false, true] {
        let outs = on_two(move |rank, c| {
            let (p, local) = sgd_on(&[1.0, 2.0]);
            let mut o = BlockMomentumOptions::new(2);
            o.use_nesterov_momentum = nesterov;
            let mut l = block_momentum_distributed_learner(local, c, o).unwrap();
            let g = if rank == 0 { [1.0, 0.0] } else { [0.0, 2.0] };
            step(&mut l, &p, &g);
            let first = values(&p);
            step(&mut l, &p, &g);
            (first, values(&p))
        });
        // G = Σ (w_prev − w_local) = g0 + g1 = [1, 2] every block
        // Δ1 = 0.5·G = [0.5, 1];  Δ2 = 0.5·Δ1 + 0.5·G = [0.75, 1.5]
        let (first, second) = if nesterov {
            // w1 = w0 − Δ1 − μΔ1;  w2 = w1 − Δ2 − μΔ2
            (vec![0.25, 0.5], vec![0.25 - 1.125, 0.5 - 2.25])
        } else {
            (vec![0.5, 1.0], vec![-0.25, -0.5])
        };
        for o in &outs {
            assert_eq!(o.0, first, "nesterov {nesterov}: after block 1");
            assert_eq!(o.1, second, "nesterov {nesterov}: after block 2");
        }
    }
}

/// 1-bit SGD: each step's exchanged gradient is quantized (not the true sum), but the
/// error feedback carries what was lost, so after K steps the parameters have moved by
/// K × (the true sum) up to the workers' residuals.
#[test]
fn one_bit_sgd_carries_the_quantization_error_forward() {
    let outs = on_two(|rank, c| {
        let (p, local) = sgd_on(&[0.0; 4]);
        let o = DataParallelOptions {
            num_quantization_bits: 1,
            ..Default::default()
        };
        let mut l = data_parallel_distributed_learner(local, c, o).unwrap();
        let g = if rank == 0 {
            [0.3, -0.1, 0.05, 0.7]
        } else {
            [0.1, 0.2, -0.3, 0.0]
        };
        step(&mut l, &p, &g);
        let first = values(&p);
        for _ in 1..200 {
            step(&mut l, &p, &g);
        }
        (first, values(&p))
    });
    let sum = [0.4, 0.1, -0.25, 0.7];
    assert_eq!(outs[0], outs[1], "the workers agree");
    let (first, last) = &outs[0];
    let exact: Vec<f64> = sum.iter().map(|s| -s).collect();
    assert_ne!(first, &exact, "the first step is quantized");
    for (i, (&w, s)) in last.iter().zip(sum).enumerate() {
        let drift = (w + 200.0 * s).abs();
        assert!(
            drift < 2.0,
            "element {i}: {w} vs {} (drift {drift})",
            -200.0 * s
        );
    }
}

/// One worker: nothing is aggregated, so 1-bit SGD quantizes nothing and the update is
/// the local learner's own (CNTK's quantized aggregation returns its input unquantized
/// for one worker; before, rntk quantized it, which made one process differ from CNTK's).
#[test]
fn one_bit_sgd_on_one_worker_is_the_local_learner() {
    let (p, local) = sgd_on(&[0.0; 4]);
    let o = DataParallelOptions {
        num_quantization_bits: 1,
        ..Default::default()
    };
    let comm: Arc<dyn Communicator> = Arc::new(rntk::distributed::SingleProcess);
    let mut l = data_parallel_distributed_learner(local, comm, o).unwrap();
    let g = [0.3, -0.1, 0.05, 0.7];
    step(&mut l, &p, &g);
    step(&mut l, &p, &g);
    assert_eq!(values(&p), vec![-0.6, 0.2, -0.1, -1.4]);
}
