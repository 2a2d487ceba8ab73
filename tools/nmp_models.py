"""nmp_models.py: numpy-only reference models for nmperm's checkpoint tools and tests.

- safetensors reading (F16/BF16/F32/F64 as float64) and writing (float32 or float16),
- BERT encoders (all-MiniLM-L6-v2 and the like): forward pass with mean pooling, WordPiece,
- LLaMA decoders (SmolLM2 and the like): causal forward pass, GPT-2 style byte-level BPE,
- a `record` hook on every linear layer so calibration can collect per-input-channel norms.

No torch, no transformers: the point is an independent check of what nmperm writes.
"""
import json
import math
import os
import re
import struct
import unicodedata

import numpy as np

# ------------------------------------------------------------------ safetensors

_DT = {"F16": "<f2", "F32": "<f4", "F64": "<f8"}


def read_safetensors(path, names=None):
    """{name: float64 array} of the float tensors of a file (names: only those)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, h in header.items():
            if name == "__metadata__" or (names is not None and name not in names):
                continue
            a, b = h["data_offsets"]
            f.seek(base + a)
            raw = f.read(b - a)
            if h["dtype"] == "BF16":
                arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
            elif h["dtype"] in _DT:
                arr = np.frombuffer(raw, _DT[h["dtype"]])
            else:
                continue
            out[name] = arr.reshape(h["shape"]).astype(np.float64)
    return out


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """Writes {name: array} (sorted by name) atomically; dtype F32 or F16."""
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(np.asarray(tensors[name]).astype(_DT[dtype]))
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = "%s.tmp%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for a in blobs:
            f.write(a.tobytes())
    os.replace(tmp, path)


class Recorder:
    """Per linear layer: the sum over tokens of x_j^2 for every input channel j, and the count."""

    def __init__(self):
        self.sq, self.count = {}, {}

    def __call__(self, name, x):
        x2 = (x * x).reshape(-1, x.shape[-1]).sum(0)
        self.sq[name] = self.sq.get(name, 0) + x2
        self.count[name] = self.count.get(name, 0) + x.reshape(-1, x.shape[-1]).shape[0]

    def norms(self):
        """{weight name: ||x_j||_2 over all recorded tokens} (Wanda's activation norm)."""
        return {k: np.sqrt(v) for k, v in self.sq.items()}


def _linear(w, name, x, record, bias=True):
    if record is not None:
        record(name + ".weight", x)
    y = x @ w[name + ".weight"].T
    if bias and (name + ".bias") in w:
        y = y + w[name + ".bias"]
    return y

# ------------------------------------------------------------------------ BERT


def _layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


_erf = np.vectorize(math.erf)


def bert_forward(w, cfg, ids, record=None):
    """Token states (len(ids) x hidden) of a BERT encoder, all tokens attended, float64."""
    heads, eps = cfg["num_attention_heads"], cfg.get("layer_norm_eps", 1e-12)
    n = len(ids)
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    for layer in range(cfg["num_hidden_layers"]):
        p = "encoder.layer.%d." % layer
        q, k, v = (_linear(w, p + "attention.self." + s, x, record) for s in ("query", "key", "value"))
        hd = q.shape[1] // heads
        q, k, v = (a.reshape(n, heads, hd).transpose(1, 0, 2) for a in (q, k, v))
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        ctx = ((s / s.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(n, heads * hd)
        x = _layer_norm(_linear(w, p + "attention.output.dense", ctx, record) + x,
                        w[p + "attention.output.LayerNorm.weight"],
                        w[p + "attention.output.LayerNorm.bias"], eps)
        h = _linear(w, p + "intermediate.dense", x, record)
        h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))
        x = _layer_norm(_linear(w, p + "output.dense", h, record) + x,
                        w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    if record is not None and "pooler.dense.weight" in w:  # the pooler reads the [CLS] state
        record("pooler.dense.weight", x[:1])
    return x


def sentence_embedding(w, cfg, ids, record=None):
    """all-MiniLM-L6-v2's sentence embedding: mean pooling, then L2 normalisation."""
    e = bert_forward(w, cfg, ids, record).mean(0)
    return e / np.linalg.norm(e)


class WordPiece:
    """BERT's uncased tokenizer: lower case, strip accents, split punctuation, greedy longest
    match with ## continuations, [CLS] ... [SEP]."""

    def __init__(self, vocab_path, max_len=128):
        with open(vocab_path, encoding="utf-8") as f:
            self.vocab = {t.rstrip("\n"): i for i, t in enumerate(f)}
        self.max_len = max_len

    def _words(self, text):
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        out = []
        for chunk in text.split():
            word = ""
            for c in chunk:
                if unicodedata.category(c).startswith("P") or (c.isascii() and not c.isalnum()):
                    if word:
                        out.append(word)
                    out.append(c)
                    word = ""
                else:
                    word += c
            if word:
                out.append(word)
        return out

    def encode(self, text):
        ids = [self.vocab["[CLS]"]]
        for word in self._words(text):
            start, pieces = 0, []
            while start < len(word):
                end = len(word)
                while end > start:
                    piece = ("##" if start else "") + word[start:end]
                    if piece in self.vocab:
                        pieces.append(self.vocab[piece])
                        break
                    end -= 1
                if end == start:
                    pieces = [self.vocab["[UNK]"]]
                    break
                start = end
            ids += pieces
        return ids[:self.max_len - 1] + [self.vocab["[SEP]"]]

# ----------------------------------------------------------------------- LLaMA


def llama_forward(w, cfg, ids, record=None):
    """Logits (len(ids) x vocab) of a causal LLaMA decoder (RMSNorm, rotary with rotate_half as
    in transformers, grouped-query attention, SiLU-gated MLP), computed in the dtype of the
    embedding: float64 as read_safetensors returns it, float32 when the caller casts the
    weights (half the time, for bench/prune_benefit.py's perplexities)."""
    hid = cfg["hidden_size"]
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    hd = hid // heads
    eps = cfg.get("rms_norm_eps", 1e-6)
    t = len(ids)

    def rms(x, g):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g

    dt = w["model.embed_tokens.weight"].dtype
    inv = 1.0 / cfg.get("rope_theta", 10000.0) ** (np.arange(0, hd, 2) / hd)
    ang = np.outer(np.arange(t), inv)
    cos = np.concatenate([np.cos(ang)] * 2, axis=1).astype(dt)
    sin = np.concatenate([np.sin(ang)] * 2, axis=1).astype(dt)

    def rope(x):
        half = np.concatenate([-x[..., hd // 2:], x[..., :hd // 2]], axis=-1)
        return x * cos + half * sin

    x = w["model.embed_tokens.weight"][ids]
    mask = np.triu(np.full((t, t), -np.inf, dt), 1)
    for layer in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % layer
        h = rms(x, w[p + "input_layernorm.weight"])
        q = _linear(w, p + "self_attn.q_proj", h, record).reshape(t, heads, hd).transpose(1, 0, 2)
        k = _linear(w, p + "self_attn.k_proj", h, record).reshape(t, kv, hd).transpose(1, 0, 2)
        v = _linear(w, p + "self_attn.v_proj", h, record).reshape(t, kv, hd).transpose(1, 0, 2)
        q, k = rope(q), rope(k)
        k = np.repeat(k, heads // kv, axis=0)
        v = np.repeat(v, heads // kv, axis=0)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd) + mask
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(t, hid)
        x = x + _linear(w, p + "self_attn.o_proj", a, record)
        h = rms(x, w[p + "post_attention_layernorm.weight"])
        g = _linear(w, p + "mlp.gate_proj", h, record)
        u = _linear(w, p + "mlp.up_proj", h, record)
        x = x + _linear(w, p + "mlp.down_proj", g / (1.0 + np.exp(-g)) * u, record)
    x = rms(x, w["model.norm.weight"])
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ head.T


def _byte_chars():
    """GPT-2's reversible map from bytes to printable characters."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


class ByteBPE:
    """GPT-2 style byte-level BPE from a vocabulary and merge list (as GGUF files carry them).
    Pre-tokenisation: contractions, letters with one optional leading space, single digits,
    other symbols, white space; close to SmolLM2's own, and exact enough for perplexity."""

    _split = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d| ?[^\s\w]+|\s+(?!\S)|\s+")

    def __init__(self, tokens, merges):
        self.ids = {t: i for i, t in enumerate(tokens)}
        self.rank = {tuple(m.split(" ")): r for r, m in enumerate(merges)}
        self.chars = _byte_chars()
        self.cache = {}

    def _bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            best, at = None, -1
            for i in range(len(parts) - 1):
                r = self.rank.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best):
                    best, at = r, i
            if best is None:
                break
            parts[at:at + 2] = [parts[at] + parts[at + 1]]
        ids = [self.ids[p] for p in parts]
        self.cache[word] = ids
        return ids

    def encode(self, text):
        out = []
        for piece in self._split.findall(text):
            out += self._bpe("".join(self.chars[b] for b in piece.encode("utf-8")))
        return out


def text_corpus(limit_words=None):
    """Real English text shipped on every Debian system: the license texts of
    /usr/share/common-licenses (GPL, LGPL, GFDL, MPL, Apache, Artistic), in a fixed order."""
    root = "/usr/share/common-licenses"
    names = ["GPL-3", "GFDL-1.3", "LGPL-3", "Apache-2.0", "MPL-2.0", "Artistic", "GPL-2",
             "LGPL-2.1", "GFDL-1.2", "MPL-1.1", "CC0-1.0"]
    parts = []
    for n in names:
        path = os.path.join(root, n)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                parts.append(f.read())
    text = "\n\n".join(parts)
    if limit_words:
        text = " ".join(text.split()[:limit_words])
    return text


def sentences(text, count, min_words=6, max_words=40):
    """The first `count` sentences of text with min_words..max_words words."""
    out = []
    for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())):
        n = len(s.split())
        if min_words <= n <= max_words and any(c.isalpha() for c in s):
            out.append(s)
            if len(out) == count:
                break
    return out
