//! Shared helpers of the persistence tests: temporary directories, bitwise
//! comparison of evaluations, and a few adam steps through the `Trainer`.

#![allow(dead_code)]

use rntk::learners::{adam, AdamOptions, Schedule};
use rntk::tensor::Element;
use rntk::train::Trainer;
use rntk::{DType, Function, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A fresh, empty directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "rntk-persist-{tag}-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every element of a dense value, as raw bits (f32 widened losslessly to its bits).
pub fn bits(v: &Value) -> Vec<u64> {
    match v.dtype() {
        DType::F32 => v
            .to_vec::<f32>()
            .iter()
            .map(|x| x.to_bits() as u64)
            .collect(),
        DType::F64 => v.to_vec::<f64>().iter().map(|x| x.to_bits()).collect(),
    }
}

/// Raw bits of every parameter value of `f`, in `parameters()` order.
pub fn param_bits(f: &Function) -> Vec<Vec<u64>> {
    f.parameters()
        .iter()
        .map(|p| {
            let t = p.value().unwrap();
            match t.dtype() {
                DType::F32 => t
                    .as_slice::<f32>()
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits() as u64)
                    .collect(),
                DType::F64 => t
                    .as_slice::<f64>()
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect(),
            }
        })
        .collect()
}

/// Evaluate every output of `f` with `values` fed to `f.arguments()` in order.
pub fn eval_bits(f: &Function, values: &[Value]) -> Vec<Vec<u64>> {
    let args = f.arguments();
    assert_eq!(args.len(), values.len(), "arguments of {f:?}: {args:?}");
    let feeds: Vec<_> = args.iter().zip(values).collect();
    f.eval(&feeds).unwrap().iter().map(bits).collect()
}

/// Train `root` (outputs: model, loss) with adam for one step per minibatch; returns
/// the bits of each minibatch's loss average and of the final parameters.
pub fn train_bits<T: Element>(
    root: &Function,
    batches: &[Vec<Value>],
) -> (Vec<u64>, Vec<Vec<u64>>) {
    let outs = root.outputs();
    let params = root.parameters();
    let learner = adam(
        &params,
        Schedule::constant(0.01),
        Schedule::constant(0.9),
        AdamOptions::default(),
    )
    .unwrap();
    let mut tr = Trainer::<T>::new(
        Some(outs[0].clone()),
        outs[1].clone(),
        None,
        vec![Box::new(learner)],
        vec![],
    )
    .unwrap();
    let args = root.arguments();
    let mut losses = Vec::new();
    for b in batches {
        assert_eq!(args.len(), b.len());
        let feeds: Vec<_> = args.iter().zip(b).collect();
        tr.train_minibatch(&feeds, false).unwrap();
        losses.push(tr.previous_minibatch_loss_average().to_bits());
    }
    (losses, param_bits(root))
}

/// Save `root`, load it back, and check the loaded model against the original: same
/// argument and parameter lists (new variables, same names and shapes), bit-identical
/// evaluation on `eval_feed`, and bit-identical adam training on `batches` (training
/// the loaded model first must leave the original untouched).
pub fn check_roundtrip<T: Element>(
    tag: &str,
    root: &Function,
    eval_feed: &[Value],
    batches: &[Vec<Value>],
) -> Function {
    let dir = TempDir::new(tag);
    let path = dir.file("model.rntk");
    root.save(&path).unwrap();
    let loaded = Function::load(&path).unwrap();

    let (a, b) = (root.arguments(), loaded.arguments());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_ne!(x, y, "a loaded argument must be a new variable");
        assert_eq!(x.name(), y.name());
        assert_eq!(x.shape(), y.shape());
        assert_eq!(x.dtype(), y.dtype());
        assert_eq!(x.is_sparse(), y.is_sparse());
        assert_eq!(x.dynamic_axes().notation(), y.dynamic_axes().notation());
    }
    let (p, q) = (root.parameters(), loaded.parameters());
    assert_eq!(p.len(), q.len());
    for (x, y) in p.iter().zip(&q) {
        assert_ne!(x, y, "a loaded parameter must be a new variable");
        assert_eq!(x.name(), y.name());
        assert_eq!(x.shape(), y.shape());
    }
    assert_eq!(root.constants().len(), loaded.constants().len());
    assert_eq!(param_bits(root), param_bits(&loaded));
    assert_eq!(root.outputs().len(), loaded.outputs().len());
    for (x, y) in root.outputs().iter().zip(&loaded.outputs()) {
        assert_eq!(x.info().shape, y.info().shape);
        assert_eq!(x.name(), y.name());
    }

    assert_eq!(
        eval_bits(root, eval_feed),
        eval_bits(&loaded, eval_feed),
        "{tag}: evaluation of the loaded model differs"
    );

    if !batches.is_empty() {
        let before = param_bits(root);
        let trained_loaded = train_bits::<T>(&loaded, batches);
        assert_eq!(
            param_bits(root),
            before,
            "{tag}: training the loaded model changed the original"
        );
        assert_ne!(trained_loaded.1, before, "{tag}: training changed nothing");
        let trained_root = train_bits::<T>(root, batches);
        assert_eq!(
            trained_root, trained_loaded,
            "{tag}: training the loaded model differs from training the original"
        );
    }

    // Saving the loaded model again gives the same description, up to uids.
    let again = dir.file("again.rntk");
    loaded.save(&again).unwrap();
    let strip = |p: &Path| {
        let mut d = rntk::persist::read_description(p).unwrap();
        for v in &mut d.variables {
            v.uid.clear();
            v.tensor = v.tensor.as_ref().map(|_| String::new());
        }
        for f in &mut d.functions {
            f.uid.clear();
        }
        d
    };
    assert_eq!(
        strip(&path),
        strip(&again),
        "{tag}: re-saving changed the graph"
    );
    loaded
}
