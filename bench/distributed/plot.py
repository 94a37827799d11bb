#!/usr/bin/env python3
"""Plot the loss curves of bench/distributed/curves.sh (needs matplotlib):
    python3 bench/distributed/plot.py OUTDIR docs/distributed-curves.png
Prints, per workload and mode, the mean loss over the last fifth of the samples and
its difference from single-worker training."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out, png = sys.argv[1], sys.argv[2]
# CNTK's defaults (solid), then the settings tried against the gaps they leave (dashed)
modes = [("single", "1 worker, plain", "-"), ("dp", "2 workers, data parallel (32-bit)", "-"),
         ("1bit", "2 workers, 1-bit SGD", "-"), ("bm", "2 workers, block momentum", "-"),
         ("1bit-warm", "1-bit SGD, warm start (distributed_after 20 mb)", "--"),
         ("bm-nonesterov", "block momentum, no Nesterov (= block lr 2/3 with it)", "--")]
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
for ax, w in zip(axes, ["lm", "slots"]):
    base = None
    for mode, label, style in modes:
        try:
            r = json.load(open(f"{out}/{w}-{mode}.json"))
        except (OSError, ValueError):
            continue
        losses = r["losses"]
        per_step = r["samples"] / max(1, r["minibatches"])
        xs = [(i + 1) * per_step for i in range(len(losses))]
        # a running mean over 10 steps: the curves are noisy minibatch losses
        sm = [sum(losses[max(0, i - 9):i + 1]) / len(losses[max(0, i - 9):i + 1])
              for i in range(len(losses))]
        ax.plot(xs, sm, style, label=label)
        tail = [l for x, l in zip(xs, losses) if x >= 0.8 * xs[-1]]
        mean = sum(tail) / len(tail)
        if mode == "single":
            base = mean
        diff = "" if base is None else f" ({100 * (mean - base) / base:+.2f}% vs 1 worker)"
        print(f"{w} {mode}: {r['samples']} samples, last-fifth mean loss {mean:.4f}{diff}, "
              f"{r['samples_per_s']:.0f} samples/s, comm {r.get('comm_seconds', 0):.2f} s")
    ax.set_title(f"P{2 if w == 'lm' else 3} {w}: training loss (mean of 10 minibatches)")
    ax.set_xlabel("samples (all workers)")
    ax.set_ylabel("cross entropy per sample")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
fig.tight_layout()
fig.savefig(png, dpi=90)
print("wrote", png)
