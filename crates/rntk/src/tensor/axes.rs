//! Dynamic axes: the batch axis and sequence axes whose extent each minibatch decides.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

static NEXT_AXIS: AtomicU64 = AtomicU64::new(1);

/// A sequence axis. Two sequence variables may be combined element-wise only when they
/// share the same axis object (their lengths are then required to agree).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Axis {
    id: u64,
    name: Arc<str>,
}

impl Axis {
    /// CNTK's `Axis.default_dynamic_axis()`, shared by every `sequence::input_variable`.
    pub fn default_dynamic_axis() -> Axis {
        Axis {
            id: 0,
            name: Arc::from("defaultDynamicAxis"),
        }
    }
    /// A new, independent sequence axis (CNTK's `C.Axis('name')`).
    pub fn new(name: &str) -> Axis {
        Axis {
            id: NEXT_AXIS.fetch_add(1, Ordering::Relaxed),
            name: Arc::from(name),
        }
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)
    }
}

/// Which dynamic axes a variable carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DynamicAxes {
    /// Parameters, constants, values reduced over all axes.
    None,
    /// `[#]`: one sample per batch item.
    Batch,
    /// `[#, *]`: a sequence per batch item, along the given axis.
    Sequence(Axis),
}

impl DynamicAxes {
    pub fn default_sequence() -> Self {
        DynamicAxes::Sequence(Axis::default_dynamic_axis())
    }
    pub fn has_sequence(&self) -> bool {
        matches!(self, DynamicAxes::Sequence(_))
    }
    pub fn is_none(&self) -> bool {
        matches!(self, DynamicAxes::None)
    }
    /// CNTK's notation: `[]`, `[#]`, `[#, *]`.
    pub fn notation(&self) -> String {
        match self {
            DynamicAxes::None => "[]".into(),
            DynamicAxes::Batch => "[#]".into(),
            DynamicAxes::Sequence(a) if a.id == 0 => "[#, *]".into(),
            DynamicAxes::Sequence(a) => format!("[#, {}]", a.name),
        }
    }
    /// The axes of an element-wise combination: static operands broadcast over
    /// dynamic ones; batch and sequence operands must be reconciled explicitly.
    pub fn join(&self, other: &DynamicAxes) -> Result<DynamicAxes, String> {
        match (self, other) {
            (DynamicAxes::None, x) | (x, DynamicAxes::None) => Ok(x.clone()),
            (a, b) if a == b => Ok(a.clone()),
            (DynamicAxes::Batch, DynamicAxes::Sequence(_))
            | (DynamicAxes::Sequence(_), DynamicAxes::Batch) => Err(format!(
                "{} and {} (use sequence::broadcast_as to spread a per-sequence value over the steps)",
                self.notation(),
                other.notation()
            )),
            (DynamicAxes::Sequence(a), DynamicAxes::Sequence(b)) if a.name == b.name => {
                Err(format!(
                    "{} and {} are two different sequence axes named '{}' (each Axis::new \
                     makes a new axis; make it once and share it)",
                    self.notation(),
                    other.notation(),
                    a.name
                ))
            }
            _ => Err(format!(
                "{} and {} are different sequence axes",
                self.notation(),
                other.notation()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_names_what_differs() {
        let (a, b) = (Axis::new("dec"), Axis::new("dec"));
        let (sa, sb) = (DynamicAxes::Sequence(a.clone()), DynamicAxes::Sequence(b));
        assert_eq!(sa.join(&DynamicAxes::Sequence(a)).unwrap(), sa);
        assert_eq!(sa.join(&DynamicAxes::None).unwrap(), sa);
        let e = sa.join(&sb).unwrap_err();
        assert!(e.contains("two different sequence axes named 'dec'"), "{e}");
        let e = sa.join(&DynamicAxes::default_sequence()).unwrap_err();
        assert!(
            e.contains("[#, dec] and [#, *] are different sequence axes"),
            "{e}"
        );
        let e = sa.join(&DynamicAxes::Batch).unwrap_err();
        assert!(e.contains("broadcast_as"), "{e}");
    }
}
