//! Typed reads from a CNTK `Dictionary`: every missing key or wrong value type is an
//! error naming the file, the dictionary (function or variable uid) and the key.

use super::proto::{dictionary_value::Value as V, Axis, Dictionary, NdArrayView, NdShape};
use crate::error::{Error, Result};

/// A dictionary together with what to call it in errors.
#[derive(Clone, Copy)]
pub(crate) struct Dict<'a> {
    pub file: &'a str,
    /// e.g. `function Times837` or `variable Parameter4`.
    pub what: &'a str,
    pub d: &'a Dictionary,
}

fn type_name(v: Option<&V>) -> &'static str {
    match v {
        None => "no value",
        Some(V::BoolValue(_)) => "Bool",
        Some(V::IntValue(_)) => "Int",
        Some(V::SizeTValue(_)) => "SizeT",
        Some(V::FloatValue(_)) => "Float",
        Some(V::DoubleValue(_)) => "Double",
        Some(V::StringValue(_)) => "String",
        Some(V::NdShapeValue(_)) => "NDShape",
        Some(V::AxisValue(_)) => "Axis",
        Some(V::VectorValue(_)) => "Vector",
        Some(V::DictionaryValue(_)) => "Dictionary",
        Some(V::NdArrayViewValue(_)) => "NDArrayView",
    }
}

impl<'a> Dict<'a> {
    pub fn new(file: &'a str, what: &'a str, d: &'a Dictionary) -> Self {
        Dict { file, what, d }
    }

    pub fn err(&self, detail: impl Into<String>) -> Error {
        Error::Format {
            file: self.file.to_string(),
            detail: format!("{}: {}", self.what, detail.into()),
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.d.data.contains_key(key)
    }

    fn value(&self, key: &str) -> Result<Option<&'a V>> {
        match self.d.data.get(key) {
            Some(v) => Ok(v.value.as_ref()),
            None => Err(self.err(format!("missing key '{key}'"))),
        }
    }

    fn wrong(&self, key: &str, expected: &str, got: Option<&V>) -> Error {
        self.err(format!(
            "key '{key}' must hold a {expected}, found {}",
            type_name(got)
        ))
    }

    pub fn string(&self, key: &str) -> Result<&'a str> {
        match self.value(key)? {
            Some(V::StringValue(s)) => Ok(s),
            v => Err(self.wrong(key, "String", v)),
        }
    }

    /// An optional string (`name` is omitted when empty).
    pub fn opt_string(&self, key: &str) -> Result<&'a str> {
        if self.has(key) {
            self.string(key)
        } else {
            Ok("")
        }
    }

    /// An unsigned integer (SizeT; Int accepted when non-negative).
    pub fn size_t(&self, key: &str) -> Result<u64> {
        match self.value(key)? {
            Some(V::SizeTValue(n)) => Ok(*n),
            Some(V::IntValue(n)) if *n >= 0 => Ok(*n as u64),
            v => Err(self.wrong(key, "SizeT", v)),
        }
    }

    /// A signed integer (Int; SizeT accepted when it fits).
    pub fn int(&self, key: &str) -> Result<i64> {
        match self.value(key)? {
            Some(V::IntValue(n)) => Ok(i64::from(*n)),
            Some(V::SizeTValue(n)) => {
                i64::try_from(*n).map_err(|_| self.err(format!("key '{key}': {n} is too large")))
            }
            v => Err(self.wrong(key, "Int", v)),
        }
    }

    pub fn bool(&self, key: &str) -> Result<bool> {
        match self.value(key)? {
            Some(V::BoolValue(b)) => Ok(*b),
            v => Err(self.wrong(key, "Bool", v)),
        }
    }

    /// A real number (Double or Float).
    pub fn real(&self, key: &str) -> Result<f64> {
        match self.value(key)? {
            Some(V::DoubleValue(x)) => Ok(*x),
            Some(V::FloatValue(x)) => Ok(f64::from(*x)),
            v => Err(self.wrong(key, "Double", v)),
        }
    }

    pub fn shape(&self, key: &str) -> Result<&'a NdShape> {
        match self.value(key)? {
            Some(V::NdShapeValue(s)) => Ok(s),
            v => Err(self.wrong(key, "NDShape", v)),
        }
    }

    pub fn axis(&self, key: &str) -> Result<&'a Axis> {
        match self.value(key)? {
            Some(V::AxisValue(a)) => Ok(a),
            v => Err(self.wrong(key, "Axis", v)),
        }
    }

    pub fn dict(&self, key: &str) -> Result<&'a Dictionary> {
        match self.value(key)? {
            Some(V::DictionaryValue(d)) => Ok(d),
            v => Err(self.wrong(key, "Dictionary", v)),
        }
    }

    pub fn array(&self, key: &str) -> Result<&'a NdArrayView> {
        match self.value(key)? {
            Some(V::NdArrayViewValue(a)) => Ok(a),
            v => Err(self.wrong(key, "NDArrayView", v)),
        }
    }

    fn vector(&self, key: &str) -> Result<impl Iterator<Item = Option<&'a V>>> {
        match self.value(key)? {
            Some(V::VectorValue(v)) => Ok(v.value.iter().map(|x| x.value.as_ref())),
            v => Err(self.wrong(key, "Vector", v)),
        }
    }

    pub fn strings(&self, key: &str) -> Result<Vec<&'a str>> {
        self.vector(key)?
            .enumerate()
            .map(|(i, v)| match v {
                Some(V::StringValue(s)) => Ok(s.as_str()),
                v => Err(self.wrong(&format!("{key}[{i}]"), "String", v)),
            })
            .collect()
    }

    pub fn dicts(&self, key: &str) -> Result<Vec<&'a Dictionary>> {
        self.vector(key)?
            .enumerate()
            .map(|(i, v)| match v {
                Some(V::DictionaryValue(d)) => Ok(d),
                v => Err(self.wrong(&format!("{key}[{i}]"), "Dictionary", v)),
            })
            .collect()
    }

    pub fn axes(&self, key: &str) -> Result<Vec<&'a Axis>> {
        self.vector(key)?
            .enumerate()
            .map(|(i, v)| match v {
                Some(V::AxisValue(a)) => Ok(a),
                v => Err(self.wrong(&format!("{key}[{i}]"), "Axis", v)),
            })
            .collect()
    }
}
