#!/usr/bin/env python3
"""gen_ckpt.py: synthetic safetensors checkpoints shaped like GPT-2, LLaMA (GQA) and torchvision
ResNet, for the checkpoint tests (no torch, no safetensors package: header JSON + bytes).

usage: gen_ckpt.py {gpt2,llama,resnet,big} OUT.safetensors [--seed N] [--gb G] [--all-float]
                   [--shards N]
Writes config.json beside OUT for gpt2 and llama (heads). --all-float: no int8 layer in llama (its
residual stream, which every down_proj writes, can then be permuted). 'big' is a LLaMA-shaped file of about
G GB (default 2.1) for memory measurements; write it under /tmp, never commit it.
--shards N (N >= 2): OUT is the index (e.g. DIR/model.safetensors.index.json), written as
transformers does, beside N files model-0000k-of-0000N.safetensors with the same tensors; each cut
falls right after an mlp.up_proj (when there is one past the byte target), so that MLP space
spans two shards (gate/up in one, down_proj in the next).
"""
import argparse
import json
import os
import random
import struct


def encode(values, dtype):
    if dtype == "F32":
        return struct.pack("<%df" % len(values), *values)
    if dtype == "F16":
        return struct.pack("<%de" % len(values), *values)
    if dtype == "BF16":
        raw = struct.pack("<%df" % len(values), *values)
        return b"".join(raw[k + 2:k + 4] for k in range(0, len(raw), 4))
    if dtype == "I64":
        return struct.pack("<%dq" % len(values), *[int(v) for v in values])
    if dtype in ("U8", "I8"):
        return bytes(int(v) & 0xFF for v in values)
    raise ValueError(dtype)


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class Writer:
    """Collects (name, dtype, shape, bytes) and writes them in order."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.tensors = []

    def add(self, name, shape, dtype="F32", kind="normal"):
        n = numel(shape)
        if kind == "normal":
            vals = [self.rng.gauss(0.0, 0.5) for _ in range(n)]
        elif kind == "positive":
            vals = [0.5 + abs(self.rng.gauss(0.0, 0.5)) for _ in range(n)]
        elif kind == "int":
            vals = [self.rng.randrange(0, 100) for _ in range(n)]
        else:
            vals = [0.0] * n
        self.tensors.append((name, dtype, list(shape), encode(vals, dtype)))

    def write(self, path, shards=1):
        entries = [(name, dtype, shape, len(data), (lambda f, d=data: f.write(d)))
                   for name, dtype, shape, data in self.tensors]
        write_entries(path, entries, shards, {"format": "pt", "generator": "gen_ckpt.py"})


def write_file(path, entries, meta):
    """One safetensors file; entries are (name, dtype, shape, nbytes, write(f))."""
    header, off = {"__metadata__": meta}, 0
    for name, dtype, shape, nbytes, _ in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + nbytes]}
        off += nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for entry in entries:
            entry[4](f)


def write_entries(path, entries, shards, meta):
    """One file at path, or (shards >= 2) an index at path and its shards beside it."""
    if shards < 2:
        write_file(path, entries, meta)
        return
    total = sum(e[3] for e in entries)
    groups, cur, acc = [], [], 0
    has_up = any(e[0].endswith("up_proj.weight") for e in entries)
    for k, e in enumerate(entries):
        cur.append(e)
        acc += e[3]
        due = acc >= total * (len(groups) + 1) / shards and len(groups) < shards - 1
        if due and (not has_up or e[0].endswith("up_proj.weight")) and k + 1 < len(entries):
            groups.append(cur)
            cur = []
    groups.append(cur)
    n = len(groups)
    folder = os.path.dirname(os.path.abspath(path))
    weight_map = {}
    for k, g in enumerate(groups, 1):
        name = "model-%05d-of-%05d.safetensors" % (k, n)
        write_file(os.path.join(folder, name), g, meta)
        for e in g:
            weight_map[e[0]] = name
    with open(path, "w") as f:
        json.dump({"metadata": {"total_size": total},
                   "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)


def gpt2(w):
    H, L, V, P = 32, 2, 50, 16
    w.add("wte.weight", [V, H])
    w.add("wpe.weight", [P, H])
    for n in range(L):
        p = "h.%d." % n
        dt = "F16" if n == 1 else "F32"
        w.add(p + "ln_1.weight", [H])
        w.add(p + "ln_1.bias", [H])
        w.add(p + "attn.bias", [1, 1, P, P], "U8", "int")  # the causal mask buffer
        w.add(p + "attn.c_attn.weight", [H, 3 * H], dt)
        w.add(p + "attn.c_attn.bias", [3 * H], dt)
        w.add(p + "attn.c_proj.weight", [H, H], dt)
        w.add(p + "attn.c_proj.bias", [H], dt)
        w.add(p + "ln_2.weight", [H])
        w.add(p + "ln_2.bias", [H])
        w.add(p + "mlp.c_fc.weight", [H, 4 * H], dt)
        w.add(p + "mlp.c_fc.bias", [4 * H], dt)
        w.add(p + "mlp.c_proj.weight", [4 * H, H], dt)
        w.add(p + "mlp.c_proj.bias", [H], dt)
    w.add("ln_f.weight", [H])
    w.add("ln_f.bias", [H])
    return {"model_type": "gpt2", "n_head": 4, "n_embd": H, "n_layer": L}


def llama(w, hidden=32, inter=64, layers=3, heads=4, kv=2, vocab=40, small=True, int8=True):
    hd = hidden // heads
    w.add("model.embed_tokens.weight", [vocab, hidden])
    for n in range(layers):
        p = "model.layers.%d." % n
        dt = "BF16" if small and n == 1 else "F32"
        w.add(p + "input_layernorm.weight", [hidden], kind="positive")
        w.add(p + "self_attn.q_proj.weight", [heads * hd, hidden], dt)
        w.add(p + "self_attn.k_proj.weight", [kv * hd, hidden], dt)
        w.add(p + "self_attn.v_proj.weight", [kv * hd, hidden], dt)
        w.add(p + "self_attn.o_proj.weight", [hidden, heads * hd], dt)
        w.add(p + "post_attention_layernorm.weight", [hidden], kind="positive")
        w.add(p + "mlp.gate_proj.weight", [inter, hidden], dt)
        w.add(p + "mlp.up_proj.weight", [inter, hidden], dt)
        # layer 2's down_proj is int8 (a quantized layer): its space must be skipped
        q = small and int8 and n == 2
        w.add(p + "mlp.down_proj.weight", [hidden, inter], "I8" if q else dt,
              "int" if q else "normal")
    w.add("model.norm.weight", [hidden], kind="positive")
    w.add("lm_head.weight", [vocab, hidden])
    w.add("rope.step", [1], "I64", "int")
    return {"model_type": "llama", "num_attention_heads": heads, "num_key_value_heads": kv,
            "hidden_size": hidden, "intermediate_size": inter}


def resnet(w):
    w.add("conv1.weight", [16, 3, 3, 3])
    for s in ("weight", "bias", "running_mean"):
        w.add("bn1." + s, [16])
    w.add("bn1.running_var", [16], kind="positive")
    w.add("bn1.num_batches_tracked", [], "I64", "int")
    blocks = {"layer1.0.": (16, 16, 64, True), "layer2.0.": (64, 32, 32, False)}
    for p, (cin, width, cout, bottleneck) in blocks.items():
        convs = [(cin, width, 1), (width, width, 3), (width, cout, 1)] if bottleneck else \
                [(cin, width, 3), (width, cout, 3)]
        for k, (i, o, ks) in enumerate(convs, 1):
            w.add(p + "conv%d.weight" % k, [o, i, ks, ks], "F16" if k == 2 else "F32")
            for s in ("weight", "bias", "running_mean"):
                w.add(p + "bn%d.%s" % (k, s), [o])
            w.add(p + "bn%d.running_var" % k, [o], kind="positive")
            w.add(p + "bn%d.num_batches_tracked" % k, [], "I64", "int")
        w.add(p + "downsample.0.weight", [cout, cin, 1, 1])
    w.add("fc.weight", [10, 32])
    w.add("fc.bias", [10])
    return None


def big(path, gb, seed, shards=1):
    """LLaMA-shaped, ~gb GB of F32; values from a repeated random block (fast)."""
    hidden, inter, heads, kv = 2048, 8192, 16, 4
    hd = hidden // heads
    per_layer = 4 * (2 * hidden * hidden + 2 * kv * hd * hidden + 3 * inter * hidden)
    layers = max(1, int(gb * 1e9 // per_layer))
    rng = random.Random(seed)
    block = struct.pack("<%df" % 262147, *[rng.gauss(0, 0.5) for _ in range(262147)])
    names = []
    for n in range(layers):
        p = "model.layers.%d." % n
        names += [(p + "input_layernorm.weight", [hidden]),
                  (p + "self_attn.q_proj.weight", [hidden, hidden]),
                  (p + "self_attn.k_proj.weight", [kv * hd, hidden]),
                  (p + "self_attn.v_proj.weight", [kv * hd, hidden]),
                  (p + "self_attn.o_proj.weight", [hidden, hidden]),
                  (p + "post_attention_layernorm.weight", [hidden]),
                  (p + "mlp.gate_proj.weight", [inter, hidden]),
                  (p + "mlp.up_proj.weight", [inter, hidden]),
                  (p + "mlp.down_proj.weight", [hidden, inter])]
    def writer(k, shape):
        def write(f):
            left = 4 * numel(shape)
            start = (k * 4097 * 4) % len(block)
            while left > 0:
                chunk = block[start:start + left]
                f.write(chunk)
                left -= len(chunk)
                start = 0
        return write

    entries = [(name, "F32", shape, 4 * numel(shape), writer(k, shape))
               for k, (name, shape) in enumerate(names)]
    write_entries(path, entries, shards, {"format": "pt"})
    return {"model_type": "llama", "num_attention_heads": heads, "num_key_value_heads": kv}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("arch", choices=["gpt2", "llama", "resnet", "big"])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gb", type=float, default=2.1)
    ap.add_argument("--all-float", action="store_true", help="llama: no int8 down_proj")
    ap.add_argument("--shards", type=int, default=1, help="OUT is an index over N shards")
    a = ap.parse_args()
    if a.arch == "big":
        cfg = big(a.out, a.gb, a.seed, a.shards)
    else:
        w = Writer(a.seed)
        if a.arch == "llama":
            cfg = llama(w, int8=not a.all_float)
        else:
            cfg = {"gpt2": gpt2, "resnet": resnet}[a.arch](w)
        w.write(a.out, a.shards)
    if cfg:
        with open(os.path.join(os.path.dirname(os.path.abspath(a.out)), "config.json"), "w") as f:
            json.dump(cfg, f)


if __name__ == "__main__":
    main()
