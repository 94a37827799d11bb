#!/usr/bin/env python3
"""Plot the loss curves of bench/distributed/curves.sh (needs matplotlib):
    python3 bench/distributed/plot.py OUTDIR docs/distributed-curves.png [CNTK_OUTDIR]
Prints, per workload and mode, the mean loss over the last fifth of the samples and
its difference from single-worker training. With CNTK_OUTDIR (the RESULT lines of
bench/distributed/cntk_curves.py: <workload>-<mode>.json) a second row shows the real
CNTK 2.7's own distributed learners on the same data, against its own single worker."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out, png = sys.argv[1], sys.argv[2]
cntk = sys.argv[3] if len(sys.argv) > 3 else None
# CNTK's defaults (solid), then the settings tried against the gaps they leave (dashed)
modes = [("single", "1 worker, plain", "-"), ("dp", "2 workers, data parallel (32-bit)", "-"),
         ("1bit", "2 workers, 1-bit SGD", "-"), ("bm", "2 workers, block momentum", "-"),
         ("1bit-warm", "1-bit SGD, warm start (distributed_after 20 mb)", "--"),
         ("bm-nonesterov", "block momentum, no Nesterov (= block lr 2/3 with it)", "--")]
# the same colours as the rntk row for the same setting
cntk_modes = [("single", "CNTK 2.7, 1 worker", "-"), ("dp", "CNTK 2.7, 2 workers, 32-bit", "-"),
              ("1bit", "CNTK 2.7, 2 workers, 1-bit SGD", "-"), ("bm", "", "-"),
              ("1bit-warm", "CNTK 2.7, 1-bit SGD, warm start (20 mb)", "--")]


def panel(ax, folder, w, modes, who):
    base = None
    for k, (mode, label, style) in enumerate(modes):
        try:
            r = json.load(open(f"{folder}/{w}-{mode}.json"))
        except (OSError, ValueError):
            continue
        losses = r["losses"]
        per_step = r["samples"] / max(1, r["minibatches"])
        xs = [(i + 1) * per_step for i in range(len(losses))]
        # a running mean over 10 steps: the curves are noisy minibatch losses
        sm = [sum(losses[max(0, i - 9):i + 1]) / len(losses[max(0, i - 9):i + 1])
              for i in range(len(losses))]
        ax.plot(xs, sm, style, color=f"C{k}", label=label)
        tail = [l for x, l in zip(xs, losses) if x >= 0.8 * xs[-1]]
        mean = sum(tail) / len(tail)
        if mode == "single":
            base = mean
        diff = "" if base is None else f" ({100 * (mean - base) / base:+.2f}% vs 1 worker)"
        print(f"{who} {w} {mode}: {r['samples']} samples, last-fifth mean loss {mean:.4f}{diff}, "
              f"{r['samples_per_s']:.0f} samples/s, comm {r.get('comm_seconds', 0):.2f} s")
    ax.set_xlabel("samples (all workers)")
    ax.set_ylabel("cross entropy per sample")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


rows = 2 if cntk else 1
fig, axes = plt.subplots(rows, 2, figsize=(12, 4.5 * rows), squeeze=False)
for col, w in enumerate(["lm", "slots"]):
    p = 2 if w == "lm" else 3
    panel(axes[0][col], out, w, modes, "rntk")
    axes[0][col].set_title(f"P{p} {w}, rntk: training loss (mean of 10 minibatches)")
    if cntk:
        panel(axes[1][col], cntk, w, cntk_modes, "cntk")
        axes[1][col].set_title(f"P{p} {w}, the real CNTK 2.7 (same data and model)")
fig.tight_layout()
fig.savefig(png, dpi=90)
print("wrote", png)
