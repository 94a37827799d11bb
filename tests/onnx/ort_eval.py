"""Oracle for rntk's ONNX tests: checks ONNX files with onnx.checker (full check, with
shape inference) and runs them with onnxruntime.

    python ort_eval.py REQUEST.json RESULT.json

REQUEST: {"cases": [{"model": path, "inputs": {name: {"dtype", "shape", "data"}},
"run": bool}]}. RESULT: {"cases": [{"ok": bool, "error": str, "outputs": [{"name",
"shape", "data"}]}]} in the same order. Non-finite numbers travel as strings.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def num(x):
    if isinstance(x, str):
        return float(x)
    return x


def out_num(v):
    v = float(v)
    if np.isfinite(v):
        return v
    return str(v)


def run_case(c):
    model = onnx.load(c["model"])
    onnx.checker.check_model(model, full_check=True)
    if not c.get("run", True):
        return {"ok": True, "outputs": []}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    s = ort.InferenceSession(c["model"], opts, providers=["CPUExecutionProvider"])
    feeds = {}
    for name, v in c["inputs"].items():
        a = np.array([num(x) for x in v["data"]], dtype=v["dtype"])
        feeds[name] = a.reshape(v["shape"])
    names = [o.name for o in s.get_outputs()]
    outs = s.run(names, feeds)
    return {
        "ok": True,
        "outputs": [
            {"name": n, "shape": list(o.shape), "data": [out_num(x) for x in np.asarray(o).ravel()]}
            for n, o in zip(names, outs)
        ],
    }


def main():
    req = json.load(open(sys.argv[1]))
    res = []
    for c in req["cases"]:
        try:
            res.append(run_case(c))
        except Exception as e:  # report, do not stop the other cases
            res.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
    json.dump({"cases": res}, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
