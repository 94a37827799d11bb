//! The graph description of a model file: plain serde types mirroring the symbolic
//! graph (axes, leaf variables, functions in dependency order, placeholder
//! replacements, the root), written as JSON into the container's metadata.

use crate::ops::Op;
use crate::tensor::Shape;
use serde::{Deserialize, Serialize};

/// The value of the `format` field (and metadata key) of every rntk model file.
pub const FORMAT: &str = "rntk-model";
/// The format version this build writes and the newest it reads.
pub const VERSION: u32 = 1;

/// The whole graph of a saved function.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphDesc {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version, [`VERSION`] when written by this build.
    pub version: u32,
    /// Sequence axes, referred to by index; variables sharing an axis share its index.
    pub axes: Vec<AxisDesc>,
    /// Leaf variables (inputs, parameters, constants, placeholders), referred to by index.
    pub variables: Vec<LeafDesc>,
    /// Functions, each after every function it refers to (through its inputs, block
    /// body or composite outputs); placeholder replacements may point anywhere.
    pub functions: Vec<FunctionDesc>,
    /// Index of the saved function in `functions`.
    pub root: usize,
    /// The saved function's outputs (the model's outputs), in order.
    pub outputs: Vec<VarRef>,
}

/// A sequence axis. Loading creates one new axis per entry (the default dynamic axis
/// stays CNTK's shared default), so variables on one axis still share it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AxisDesc {
    pub name: String,
    /// CNTK's `Axis.default_dynamic_axis()`, shared by every sequence input.
    pub default: bool,
}

/// Which dynamic axes a variable has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AxesDesc {
    None,
    Batch,
    /// Batch and the sequence axis with this index in `axes`.
    Sequence(usize),
}

/// Element type names, as NumPy spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DTypeDesc {
    Float32,
    Float64,
}

/// Everything shape inference knows about a variable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfoDesc {
    pub shape: Shape,
    pub dtype: DTypeDesc,
    pub dynamic_axes: AxesDesc,
    pub is_sparse: bool,
    pub needs_gradient: bool,
}

/// What a leaf variable is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeafKind {
    Input,
    Parameter,
    Constant,
    Placeholder,
}

/// A leaf variable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeafDesc {
    pub kind: LeafKind,
    /// The uid it had when saved (loading gives the variable a new one).
    pub uid: String,
    pub name: String,
    pub info: InfoDesc,
    /// Parameters and constants: the key of their value in the container's tensors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensor: Option<String>,
    /// Placeholders closed by `replace_placeholders` (recurrent loops): the replacement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<VarRef>,
}

/// A reference to a variable: a leaf by index, or output `k` of function `f`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VarRef {
    Leaf(usize),
    Output(usize, usize),
}

/// What kind of function.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FnKindDesc {
    /// A primitive op with its attributes.
    Primitive(Op),
    /// `combine`: the function's outputs are its inputs.
    Composite,
    /// A named sub-graph: `body`'s placeholders `args[i]` (leaf indices) stand for the
    /// block's input `i`.
    Block {
        op_name: String,
        body: usize,
        args: Vec<usize>,
    },
}

/// A function.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionDesc {
    /// The uid it had when saved (loading gives the function a new one).
    pub uid: String,
    pub name: String,
    pub kind: FnKindDesc,
    pub inputs: Vec<VarRef>,
    /// The outputs as saved; loading re-infers them and requires the same.
    pub outputs: Vec<InfoDesc>,
}
