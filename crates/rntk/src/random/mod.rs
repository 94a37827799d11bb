//! CNTK 2.7's random numbers, reproduced bit for bit: the process-wide seed sequence
//! (`set_fixed_random_seed` and friends), the engine (`std::mt19937_64`), the
//! distributions the initializers draw from (Boost.Random 1.60) and dropout masks.
//! docs/random.md describes the generators; tests/random_oracle.rs checks them against
//! the real CNTK's draws.
//!
//! # The seed sequence
//! Every random initializer or dropout created without an explicit seed takes one from
//! a process-wide counter when it is *created* (a layer's parameters when the layer
//! factory runs, in creation order): the counter starts at 0 and each automatic seed
//! takes its value and increments it. [`set_fixed_random_seed`]`(s)` makes every later
//! automatic seed `s` (the counter stays at `s`); [`reset_random_seed`]`(s)` clears that
//! and restarts the counter at `s`. Explicit seeds never touch the counter and win over
//! a fixed seed. These are CNTK's `cntk_py.set_fixed_random_seed`,
//! `reset_random_seed`, `get_random_seed`, `is_random_seed_fixed` and
//! `generate_random_seed`, with the same numbers.

mod distributions;
mod dropout;
mod mt;
mod ziggurat_tables;

pub use distributions::{exponential, normal, uniform_01, uniform_real, unit_normal};
#[doc(hidden)]
pub use distributions::{unit_normal_counted, ZigguratPaths};
pub use dropout::{DropoutRng, StreamPacking};
pub use mt::Mt19937_64;

use std::sync::Mutex;

struct SeedState {
    next: u64,
    fixed: bool,
}

static SEEDS: Mutex<SeedState> = Mutex::new(SeedState {
    next: 0,
    fixed: false,
});

fn seeds() -> std::sync::MutexGuard<'static, SeedState> {
    // The state is two plain numbers: a panic elsewhere cannot leave it inconsistent.
    SEEDS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every later automatic seed is `seed` (CNTK's `set_fixed_random_seed`). The tutorials
/// call it once at the top (`C.cntk_py.set_fixed_random_seed(1)`): then all parameters
/// without an explicit seed draw from the same seed.
pub fn set_fixed_random_seed(seed: u64) {
    let mut s = seeds();
    s.next = seed;
    s.fixed = true;
}

/// Restart the automatic sequence at `seed` and clear a fixed seed (CNTK's
/// `reset_random_seed`; a fresh process starts as after `reset_random_seed(0)`).
pub fn reset_random_seed(seed: u64) {
    let mut s = seeds();
    s.next = seed;
    s.fixed = false;
}

/// The seed the next automatic draw gets (CNTK's `get_random_seed`).
pub fn get_random_seed() -> u64 {
    seeds().next
}

/// Whether [`set_fixed_random_seed`] is in force (CNTK's `is_random_seed_fixed`).
pub fn is_random_seed_fixed() -> bool {
    seeds().fixed
}

/// The automatic seed sequence's state (a shape probe puts it back afterwards).
#[derive(Clone, Copy, Debug)]
pub struct SeedSnapshot {
    next: u64,
    fixed: bool,
}

/// The seed sequence's state now.
pub fn snapshot_seeds() -> SeedSnapshot {
    let s = seeds();
    SeedSnapshot {
        next: s.next,
        fixed: s.fixed,
    }
}

/// Put the seed sequence back to `snap`.
pub fn restore_seeds(snap: SeedSnapshot) {
    let mut s = seeds();
    s.next = snap.next;
    s.fixed = snap.fixed;
}

/// Take the next automatic seed (CNTK's `generate_random_seed`): the fixed seed if one
/// is set, else the counter's value, which then advances by one.
pub fn generate_random_seed() -> u64 {
    let mut s = seeds();
    let v = s.next;
    if !s.fixed {
        s.next = s.next.wrapping_add(1);
    }
    v
}
