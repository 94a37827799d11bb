//! `rntk info MODEL`: inputs, outputs, the graph's top-level functions, and the
//! parameters with their shapes and counts (rntk, CNTK 2.x and ONNX models).

use crate::fail::Result;
use crate::model_file::Kind;
use rntk::graph::{DynamicAxes, Function};
use rntk::Variable;
use std::collections::HashSet;
use std::path::Path;

fn axes(v: &Variable) -> &'static str {
    match v.dynamic_axes() {
        DynamicAxes::None => "static",
        DynamicAxes::Batch => "batch",
        DynamicAxes::Sequence(_) => "sequence",
    }
}

fn describe(v: &Variable) -> String {
    format!(
        "{} {} {}{}",
        v.shape(),
        format!("{:?}", v.dtype()).to_lowercase(),
        axes(v),
        if v.is_sparse() { " sparse" } else { "" }
    )
}

/// Top-level functions in evaluation order (inputs before users).
fn functions(outputs: &[Variable]) -> Vec<Function> {
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    // iterative post-order DFS
    let mut stack: Vec<(Function, bool)> = outputs
        .iter()
        .rev()
        .filter_map(|v| v.owner())
        .map(|f| (f, false))
        .collect();
    while let Some((f, done)) = stack.pop() {
        if done {
            order.push(f);
            continue;
        }
        if !seen.insert(f.uid().to_string()) {
            continue;
        }
        stack.push((f.clone(), true));
        for i in f.inputs().iter().rev() {
            if let Some(g) = i.resolve().owner() {
                if !seen.contains(g.uid()) {
                    stack.push((g, false));
                }
            }
        }
    }
    order
}

pub fn run(path: &Path) -> Result<()> {
    let model = match crate::model_file::kind(path)? {
        Kind::Rntk => {
            let desc = rntk::persist::read_description(path)?;
            println!(
                "Model: {} ({} version {})",
                path.display(),
                desc.format,
                desc.version
            );
            rntk::load_model(path)?
        }
        Kind::Cntk => {
            let m = rntk::import::read_cntk(path)?;
            let name = if m.name.is_empty() {
                String::new()
            } else {
                format!(" '{}'", m.name)
            };
            println!(
                "Model: {}{name} (CNTK v2 model, {} primitive functions, {} variables)",
                path.display(),
                m.functions.len(),
                m.variables.len()
            );
            rntk::load_cntk(path)?
        }
        Kind::Onnx => {
            let (m, _) = crate::model_file::load(path)?;
            println!("Model: {} (ONNX model)", path.display());
            m
        }
    };
    println!("Inputs:");
    for a in model.arguments() {
        println!("  {}: {}", a.label(), describe(&a));
    }
    println!("Outputs:");
    let outputs = model.outputs();
    for o in &outputs {
        println!("  {}: {}", o.label(), describe(o));
    }
    println!("Graph:");
    for f in functions(&outputs) {
        let ins: Vec<String> = f
            .inputs()
            .iter()
            .filter(|v| !v.is_parameter())
            .map(|v| v.resolve().label())
            .collect();
        let outs: Vec<String> = f.outputs().iter().map(|o| o.shape().to_string()).collect();
        let name = if f.name().is_empty() {
            String::new()
        } else {
            format!(" '{}'", f.name())
        };
        println!(
            "  {}{name}({}) -> {}",
            f.op_name(),
            ins.join(", "),
            outs.join(", ")
        );
    }
    let params = model.parameters();
    println!("Parameters:");
    let width = params
        .iter()
        .map(|p| p.label().chars().count())
        .max()
        .unwrap_or(0);
    for p in &params {
        println!(
            "  {:<width$}  {:<14} {:>10}",
            p.label(),
            p.shape().to_string(),
            p.shape().numel()
        );
    }
    println!("{}", crate::train::parameter_line(&params));
    Ok(())
}
