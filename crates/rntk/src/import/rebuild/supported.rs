//! What rntk cannot load, found before anything is built: every unsupported primitive
//! reachable from the root (by op code, or by an attribute it cannot take), reported
//! together in one error.

use super::{split_output, Builder};
use crate::error::{Error, Result};
use crate::import::model::FnDesc;
use crate::import::op_codes::{op_name, BLOCK, COMBINE};
use crate::import::seq_conv;
use std::collections::HashSet;

/// Primitive op codes that map onto rntk ops (some only with certain attributes; those
/// report the attribute they cannot take).
fn supported(code: u64) -> bool {
    matches!(
        code,
        0..=17 | 19..=27 | 31..=33 | 37..=44 | 47 | 48 | 51 | 52 | 54..=57 | 62 | 64 | 65 | 58
            | 68 | 69 | 75
    )
}

/// One unsupported function for the combined error.
struct Unsupported {
    code: u64,
    uid: String,
    name: String,
    within: String,
    /// What about the op is unsupported, when the op code itself is.
    detail: Option<&'static str>,
}

/// Attribute-level limits known from the function alone (without shapes), reported
/// with the unsupported op codes.
fn unsupported_form(fd: &FnDesc) -> Option<&'static str> {
    let has = |k: &str| fd.attributes.data.contains_key(k);
    match fd.op {
        // a bare Where is sequence.where; fixed or scaled lengths only occur inside
        // Sequence::Slice, which loads as a whole
        13 if has("newSequenceAxisLengthScalingFactor") => {
            Some("a fixed or scaled output length (only sequence.where)")
        }
        _ => None,
    }
}

impl<'a> Builder<'a> {
    /// Every unsupported primitive reachable from the root (block bodies included,
    /// except bodies of blocks loaded as one op), as one error.
    pub fn check_supported(&self, root: &'a str) -> Result<()> {
        let mut found: Vec<Unsupported> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut stack: Vec<(&str, String)> = vec![(root, String::new())];
        while let Some((uid, within)) = stack.pop() {
            let Some(fd) = self.fns.get(uid).copied() else {
                continue;
            };
            if !seen.insert(fd.uid.as_str()) {
                continue;
            }
            let push_inputs = |stack: &mut Vec<(&'a str, String)>, list: &'a [String]| {
                for i in list {
                    if let Some((f, _)) = split_output(i) {
                        stack.push((f, within.clone()));
                    }
                }
            };
            match &fd.block {
                Some(b) => {
                    push_inputs(&mut stack, &fd.inputs);
                    let args: Vec<String> = b.arguments.iter().map(|(_, v)| v.clone()).collect();
                    for v in &args {
                        if let Some((f, _)) = split_output(v) {
                            if let Some(fd2) = self.fns.get(f) {
                                stack.push((fd2.uid.as_str(), within.clone()));
                            }
                        }
                    }
                    if self.block_op(fd).is_none() {
                        let here = if fd.name.is_empty() {
                            format!("block {} {}", b.op_name, fd.uid)
                        } else {
                            format!("block {} '{}' {}", b.op_name, fd.name, fd.uid)
                        };
                        let inner = if within.is_empty() {
                            here
                        } else {
                            format!("{within} / {here}")
                        };
                        stack.push((b.root.as_str(), inner));
                    }
                }
                None if fd.op == seq_conv::TO_SEQUENCE => match seq_conv::find(&self.fns, fd) {
                    // a sequential convolution loads as one op on (W, x)
                    Some(m) => {
                        for i in [m.w, m.x] {
                            if let Some((f, _)) = split_output(i) {
                                stack.push((f, within.clone()));
                            }
                        }
                    }
                    None => {
                        found.push(Unsupported {
                            code: fd.op,
                            uid: fd.uid.clone(),
                            name: fd.name.clone(),
                            within: within.clone(),
                            detail: None,
                        });
                        push_inputs(&mut stack, &fd.inputs);
                    }
                },
                None => {
                    let detail = unsupported_form(fd);
                    if fd.op != COMBINE && fd.op != BLOCK && (!supported(fd.op) || detail.is_some())
                    {
                        found.push(Unsupported {
                            code: fd.op,
                            uid: fd.uid.clone(),
                            name: fd.name.clone(),
                            within: within.clone(),
                            detail,
                        });
                    }
                    push_inputs(&mut stack, &fd.inputs);
                }
            }
        }
        if found.is_empty() {
            return Ok(());
        }
        found.sort_by(|a, b| a.uid.cmp(&b.uid));
        let list: Vec<String> = found
            .iter()
            .map(|u| {
                let mut s = format!("op {} {} in function {}", u.code, op_name(u.code), u.uid);
                if !u.name.is_empty() {
                    s.push_str(&format!(" '{}'", u.name));
                }
                if let Some(d) = u.detail {
                    s.push_str(&format!(" with {d}"));
                }
                if !u.within.is_empty() {
                    s.push_str(&format!(" (inside {})", u.within));
                }
                s
            })
            .collect();
        Err(Error::Unsupported(format!(
            "{}: the model uses {} CNTK op(s) rntk cannot load: {}",
            self.file,
            found.len(),
            list.join("; ")
        )))
    }
}
