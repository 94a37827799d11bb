//! Static shapes in Python (row-major) order; dynamic axes are never part of a shape.

use std::fmt;

/// A dimension not known yet; fixed when the owning parameter is first connected
/// (CNTK's `InferredDimension`, written `-1` in Python).
pub const INFERRED: usize = usize::MAX;

/// The static shape of one sample, outermost axis first (NumPy C order).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape(dims.into())
    }
    /// The shape of a scalar: rank 0, one element.
    pub fn scalar() -> Self {
        Shape(Vec::new())
    }
    pub fn dims(&self) -> &[usize] {
        &self.0
    }
    pub fn rank(&self) -> usize {
        self.0.len()
    }
    /// Number of elements; 0 if any dimension is still inferred. Saturates at
    /// `usize::MAX` rather than wrapping (a shape that large is refused by the
    /// limits checks of `crate::limits` wherever shapes come from users or files).
    #[inline]
    pub fn numel(&self) -> usize {
        // one pass: 0 as soon as an inferred dimension shows up
        self.0
            .iter()
            .try_fold(1usize, |acc, &d| {
                (d != INFERRED).then(|| acc.saturating_mul(d))
            })
            .unwrap_or(0)
    }
    /// Number of elements, `None` if it does not fit in a `usize` or a dimension is
    /// still inferred.
    pub fn checked_numel(&self) -> Option<usize> {
        self.0.iter().try_fold(1usize, |acc, &d| {
            (d != INFERRED).then_some(acc)?.checked_mul(d)
        })
    }
    pub fn has_inferred(&self) -> bool {
        self.0.contains(&INFERRED)
    }
    /// Product of the dims in `range` (empty product = 1), saturating.
    pub fn prod(&self, range: std::ops::Range<usize>) -> usize {
        self.0[range]
            .iter()
            .fold(1usize, |acc, &d| acc.saturating_mul(d))
    }
    /// Resolve a possibly negative Python axis against this rank.
    pub fn axis(&self, axis: isize) -> Option<usize> {
        let r = self.rank() as isize;
        let a = if axis < 0 { axis + r } else { axis };
        (0..r).contains(&a).then_some(a as usize)
    }
    /// Row-major strides of this shape, in elements.
    pub fn strides(&self) -> Vec<usize> {
        let mut s = vec![1usize; self.rank()];
        for i in (0..self.rank().saturating_sub(1)).rev() {
            s[i] = s[i + 1].saturating_mul(self.0[i + 1]);
        }
        s
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape(d.to_vec())
    }
}
/// A bare number is a rank-1 shape, as CNTK's `Dense(15)` or `input_variable(1)`.
impl From<usize> for Shape {
    fn from(d: usize) -> Self {
        Shape(vec![d])
    }
}
impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape(d)
    }
}
impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape(d.to_vec())
    }
}

/// Serialized as a list of dimensions with `-1` for `INFERRED` (as in Python), so the
/// model file stays readable from any language.
impl serde::Serialize for Shape {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for &d in &self.0 {
            if d == INFERRED {
                seq.serialize_element(&-1i64)?;
            } else {
                seq.serialize_element(&(d as u64))?;
            }
        }
        seq.end()
    }
}

impl<'de> serde::Deserialize<'de> for Shape {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let dims = Vec::<i64>::deserialize(d)?;
        dims.into_iter()
            .map(|x| match x {
                -1 => Ok(INFERRED),
                x if x >= 0 && (x as u64) < INFERRED as u64 => Ok(x as usize),
                x => Err(D::Error::custom(format!(
                    "dimension {x}: expected a size ≥ 0, or -1 for an inferred one"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Shape)
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if *d == INFERRED {
                f.write_str("?")?;
            } else {
                write!(f, "{d}")?;
            }
        }
        if self.0.len() == 1 {
            f.write_str(",")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn display_and_strides() {
        assert_eq!(Shape::from([3]).to_string(), "(3,)");
        assert_eq!(Shape::from([2, INFERRED]).to_string(), "(2, ?)");
        assert_eq!(Shape::from([2, 3, 4]).strides(), vec![12, 4, 1]);
        assert_eq!(Shape::scalar().numel(), 1);
        assert_eq!(Shape::from([2, 3]).axis(-1), Some(1));
        assert_eq!(Shape::from([2, 3]).axis(2), None);
    }
    #[test]
    fn sizes_saturate_instead_of_wrapping() {
        let s = Shape::from([3, 6148914691236517226]);
        assert_eq!(s.numel(), usize::MAX);
        assert_eq!(s.checked_numel(), None);
        assert_eq!(s.prod(0..2), usize::MAX);
        assert_eq!(Shape::from([2, 3]).checked_numel(), Some(6));
        assert_eq!(Shape::from([2, INFERRED]).checked_numel(), None);
        assert_eq!(Shape::from([0, 1 << 62, 1 << 62]).checked_numel(), Some(0));
    }
}
