#!/usr/bin/env python3
"""test_shards.py: sharded checkpoints (model-0000k-of-0000n.safetensors + index) end to end.

usage: test_shards.py NMPERM SOURCE_ROOT
A small LLaMA (tests/gen_ckpt.py llama --shards 3, one MLP space spanning two shards) permuted
from its index and from its folder gives the same tensors and permutations as the same model in one
file (same seed, fixed work: --solver osg --time-limit 0); the index, config and tokenizer files
are written beside the shards; plan and apply take the index; a failed --verify, a signal or
kill -9 leave the old output folder as it was; the input's folder is refused as output; bad
indexes (missing shard, tensor in the wrong shard, in two shards, listed but absent, unlisted,
a path escaping the folder) fail with one line and exit 1.
"""
import glob
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

NMPERM, ROOT = sys.argv[1], sys.argv[2]
GEN = os.path.join(ROOT, "tests", "gen_ckpt.py")
INDEX = "model.safetensors.index.json"
FAST = ["--solver", "osg", "--time-limit", "0", "--seed", "5", "--quiet"]
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


def one_line(p, *words):
    return p.stderr.count("\n") == 1 and p.stderr.startswith("nmperm: ") and \
        all(w in p.stderr for w in words)


def read_st(path):
    """(metadata, [(name, dtype, shape, raw bytes)] in file order)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    items = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    return meta, [(k, v["dtype"], v["shape"],
                   data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
                  for k, v in items]


def write_st(path, meta, tensors):
    header, off = {"__metadata__": meta}, 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors))


def tensors_of(folder):
    """name -> (dtype, shape, raw) over every shard its index lists."""
    wm = json.load(open(os.path.join(folder, INDEX)))["weight_map"]
    out = {}
    for shard in sorted(set(wm.values())):
        for name, dtype, shape, raw in read_st(os.path.join(folder, shard))[1]:
            out[name] = (dtype, shape, raw)
    return out


def snapshot(folder):
    return {n: open(os.path.join(folder, n), "rb").read() for n in sorted(os.listdir(folder))}


def temporaries(folder):
    return glob.glob(os.path.join(glob.escape(folder), "*.nmperm-tmp.*"))


def perms(report):
    return {s["name"]: s.get("perm") for s in json.load(open(report))["spaces"]}


def main():
    tmp = tempfile.mkdtemp(prefix="nmperm_shards_")
    src, single = os.path.join(tmp, "in"), os.path.join(tmp, "single")
    os.makedirs(src)
    os.makedirs(single)
    subprocess.run([sys.executable, GEN, "llama", os.path.join(src, INDEX), "--shards", "3"],
                   check=True)
    subprocess.run([sys.executable, GEN, "llama", os.path.join(single, "m.safetensors")],
                   check=True)
    companions = {"tokenizer.json": b'{"model": {}}', "tokenizer_config.json": b"{}",
                  "generation_config.json": b'{"do_sample": false}', "tokenizer.model": b"\x00sp",
                  "vocab.txt": b"a\nb\n"}
    for name, data in companions.items():
        open(os.path.join(src, name), "wb").write(data)
    open(os.path.join(src, "README.md"), "w").write("not a model file\n")
    index = json.load(open(os.path.join(src, INDEX)))
    wm = index["weight_map"]
    shards = sorted(set(wm.values()))
    spanning = [n for n in wm if n.endswith("mlp.gate_proj.weight") and
                wm[n] != wm[n.replace("gate_proj", "down_proj")]]
    check(len(shards) == 3 and spanning, "the input has 3 shards and an MLP space spanning two "
          "(%s)" % ", ".join(spanning))

    # the same model, one file and sharded, same seed and fixed work: the same tensors
    out, r1, r2 = os.path.join(tmp, "out"), os.path.join(tmp, "r1.json"), os.path.join(tmp, "r2.json")
    p1 = run("permute", os.path.join(src, INDEX), "-o", out, *FAST, "--verify", "--report", r1)
    p2 = run("permute", os.path.join(single, "m.safetensors"), "-o",
             os.path.join(single, "p.safetensors"), *FAST, "--verify", "--report", r2)
    check(p1.returncode == 0 and p2.returncode == 0, "permute INDEX -o OUTDIR and the one-file "
          "model: exit 0")
    one = {n: (d, s, raw) for n, d, s, raw in read_st(os.path.join(single, "p.safetensors"))[1]}
    sharded = tensors_of(out)
    check(sharded == one, "sharded output tensors == one-file output tensors (%d tensors)" %
          len(one))
    check(perms(r1) == perms(r2), "the same permutations in both reports")
    layer = spanning[0].rsplit(".mlp.", 1)[0]
    orig = tensors_of(src)
    check(sharded[layer + ".mlp.down_proj.weight"] != orig[layer + ".mlp.down_proj.weight"] and
          sharded[layer + ".mlp.gate_proj.weight"] != orig[layer + ".mlp.gate_proj.weight"],
          "the spanning space %s.mlp was permuted in both of its shards" % layer)
    new_index = json.load(open(os.path.join(out, INDEX)))
    total = sum(len(raw) for _, _, raw in one.values())
    check(new_index["weight_map"] == wm and new_index["metadata"]["total_size"] == total,
          "output index: the same weight_map, total_size %d" % total)
    for shard in shards:
        a, b = read_st(os.path.join(src, shard)), read_st(os.path.join(out, shard))
        check([t[0] for t in a[1]] == [t[0] for t in b[1]] and b[0].get("format") == "pt",
              "%s: same tensors in the same order" % shard)
    check(all(open(os.path.join(out, n), "rb").read() == d for n, d in companions.items()) and
          open(os.path.join(out, "config.json")).read() ==
          open(os.path.join(src, "config.json")).read() and
          not os.path.exists(os.path.join(out, "README.md")) and not temporaries(out),
          "config, generation config and tokenizer files copied; README.md not; no temporary")
    check(snapshot(src)[INDEX] == open(os.path.join(src, INDEX), "rb").read() and
          tensors_of(src) == orig, "the input is unchanged")

    # the folder as input; plan and apply take the index too
    out2 = os.path.join(tmp, "out2")
    p = run("permute", src, "-o", out2, *FAST)
    check(p.returncode == 0 and snapshot(out2) == snapshot(out), "permute DIR == permute INDEX")
    pa, pb = run("plan", src), run("plan", os.path.join(single, "m.safetensors"))
    check(pa.returncode == 0 and pa.stdout == pb.stdout, "plan DIR == plan of the one-file model")
    out3 = os.path.join(tmp, "out3")
    p = run("apply", os.path.join(src, INDEX), "--report", r1, "-o", out3, "--verify", "--quiet")
    check(p.returncode == 0 and tensors_of(out3) == sharded, "apply --report on the index "
          "reproduces permute")

    # failures leave the old output folder as it was
    old = snapshot(out)
    for hook, rc in (("corrupt@verify", 2), ("TERM@verify", 143), ("TERM@write", 143)):
        p = run("permute", src, "-o", out, *FAST, "--seed", "9", "--verify",
                env={"NMPERM_TEST_HOOK": hook}, expect=rc)
        check(p.returncode == rc and p.stderr.count("\n") == 1 and snapshot(out) == old and
              not temporaries(out), "%s: exit %d, the old output set intact, no temporary: %s" %
              (hook, rc, p.stderr.strip()))
    p = run("permute", src, "-o", out, *FAST, "--seed", "9", "--verify",
            env={"NMPERM_TEST_HOOK": "KILL@verify"}, expect=-9)
    left = temporaries(out)
    check(p.returncode == -9 and len(left) == len(shards) + len(companions) + 2 and
          all(open(os.path.join(out, n), "rb").read() == old[n] for n in old),
          "kill -9 during verify: the old set intact, %d temporaries left" % len(left))
    p = run("permute", src, "-o", out, *FAST)
    check(p.returncode == 0 and not temporaries(out) and snapshot(out) == old,
          "the next run removes them and writes the same set")
    fresh = os.path.join(tmp, "fresh")
    p = run("permute", src, "-o", fresh, *FAST, "--verify",
            env={"NMPERM_TEST_HOOK": "corrupt@verify"}, expect=2)
    check(p.returncode == 2 and not os.path.exists(fresh), "a failed run removes the output "
          "folder it made")

    # the input's folder (by inode), or a file, as OUTDIR: refused before any work
    for bad, what in ((src, "input's folder"), (os.path.join(src, "..", "in"), "input's folder"),
                      (os.path.join(src, "config.json"), "not a folder")):
        p = run("permute", os.path.join(src, INDEX), "-o", bad, *FAST, expect=1)
        check(p.returncode == 1 and one_line(p, what) and tensors_of(src) == orig,
              "-o %s: refused: %s" % (bad, p.stderr.strip()))

    # bad indexes: one line naming the problem, exit 1, nothing written
    def bad_index(name, edit, *words):
        d = os.path.join(tmp, "bad_" + name)
        shutil.copytree(src, d)
        edit(d)
        o = os.path.join(tmp, "bad_out_" + name)
        p = run("permute", d, "-o", o, *FAST, expect=1)
        check(p.returncode == 1 and one_line(p, *words) and not os.path.exists(o),
              "bad index (%s): %s" % (name, p.stderr.strip()))

    def set_map(d, change):
        ix = json.load(open(os.path.join(d, INDEX)))
        change(ix["weight_map"])
        json.dump(ix, open(os.path.join(d, INDEX), "w"))

    victim = sorted(n for n in wm if wm[n] == shards[0])[0]
    bad_index("missing shard", lambda d: os.remove(os.path.join(d, shards[1])), shards[1],
              "cannot open")
    bad_index("wrong shard", lambda d: set_map(d, lambda m: m.update({victim: shards[2]})),
              victim, shards[2], "but it is in")
    bad_index("listed, absent", lambda d: set_map(d, lambda m: m.update({"x.weight": shards[0]})),
              "x.weight", "no such tensor")
    bad_index("unlisted", lambda d: set_map(d, lambda m: m.pop(victim)), victim,
              "not in the weight_map")
    bad_index("escape", lambda d: set_map(d, lambda m: m.update({victim: "../in/" + shards[0]})),
              "../in/", "file name in the index's folder")

    def duplicate(d):
        meta, ts = read_st(os.path.join(d, shards[2]))
        extra = [t for t in read_st(os.path.join(d, shards[0]))[1] if t[0] == victim]
        write_st(os.path.join(d, shards[2]), meta, ts + extra)
    bad_index("in two shards", duplicate, victim, "two shards")
    bad_index("not JSON", lambda d: open(os.path.join(d, INDEX), "w").write("{"), INDEX,
              "bad JSON")
    shutil.rmtree(tmp)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
