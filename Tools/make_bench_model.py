#!/usr/bin/env python3
"""Write the benchmark model of issue 7: a DeepSeek-V3 HF folder with random weights.

    python Tools/make_bench_model.py --out bench-models/deepseek-v3-bench-f32 --dtype f32
    python Tools/make_bench_model.py --out bench-models/deepseek-v3-bench-bf16 --dtype bf16

`bench-models/` is git-ignored: the F32 model is 1.8 GB. The shape is the one llama.cpp was
measured on (see the issue): vocab 32000, hidden 1024, 8 layers (1 dense + 7 MoE with 64 routed
experts of width 256, top-6, 2 shared), MLA with q_lora_rank 384, kv_lora_rank 256, heads 16 of
64 + 32 rope dims, v 64. 460.8 M parameters, ~108.7 M touched per token.

The model is built with transformers' own DeepseekV3ForCausalLM and written with save_pretrained,
then re-initialised exactly like Tools/make_toy_models.py (`reinit_weights`: N(0, 1/fan_in)
matrices, router logits ~N(0, 4), a non-zero correction bias), so tokens spread over the experts
as in a trained model instead of all picking the same ones. BF16 keeps the router weight and
correction bias in F32, as transformers does (`_keep_in_fp32_modules_strict`).

No golden fixture is written: on this random model some routing decisions are separated by ~1e-5,
so it is for speed, not numerics (formats are compared on the toy models).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_toy_models import DTYPES, cast_for_storage, clear_checkpoint, reinit_weights  # noqa: E402
from transformers import DeepseekV3Config, DeepseekV3ForCausalLM  # noqa: E402

BENCH_CONFIG = dict(
    vocab_size=32000, hidden_size=1024, intermediate_size=2816, moe_intermediate_size=256,
    num_hidden_layers=8, first_k_dense_replace=1, moe_layer_freq=1,
    num_attention_heads=16, num_key_value_heads=16,
    q_lora_rank=384, kv_lora_rank=256, qk_nope_head_dim=64, qk_rope_head_dim=32, v_head_dim=64,
    n_routed_experts=64, num_experts_per_tok=6, n_shared_experts=2, n_group=8, topk_group=4,
    routed_scaling_factor=2.5, norm_topk_prob=True, scoring_func="sigmoid", topk_method="noaux_tc",
    rope_interleave=True, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    max_position_embeddings=4096, rms_norm_eps=1e-6, bos_token_id=0, eos_token_id=1,
    tie_word_embeddings=False, num_mtp_layers=0,
)

EXPECTED_PARAMETERS = 460.8e6
EXPECTED_ACTIVE = 108.7e6


def count_parameters(model, config) -> tuple[int, int]:
    """(total, active per token): active leaves out the routed experts a token does not pick."""
    total = sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for n, b in model.named_buffers() if n.endswith("e_score_correction_bias"))
    per_expert = 3 * config.hidden_size * config.moe_intermediate_size
    moe_layers = config.num_hidden_layers - config.first_k_dense_replace
    idle = moe_layers * (config.n_routed_experts - config.num_experts_per_tok) * per_expert
    # Embedding rows: a token reads one row of embed_tokens, not the table.
    embedding = config.vocab_size * config.hidden_size
    return total, total - idle - embedding + config.hidden_size


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="output folder, e.g. bench-models/deepseek-v3-bench-f32")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="f32", help="storage dtype")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--router-gain", type=float, default=2.0, help="router weight std * sqrt(hidden)")
    ap.add_argument("--bias-std", type=float, default=0.1, help="std of e_score_correction_bias")
    ap.add_argument("--lm-head-gain", type=float, default=1.0, help="lm_head std * sqrt(hidden)")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    config = DeepseekV3Config(**BENCH_CONFIG)
    model = DeepseekV3ForCausalLM(config).eval()
    reinit_weights(model, torch.Generator().manual_seed(args.seed), args.router_gain, args.bias_std, args.lm_head_gain)
    total, active = count_parameters(model, config)
    print(f"parameters: {total / 1e6:.1f} M total, {active / 1e6:.1f} M active per token "
          f"(issue: {EXPECTED_PARAMETERS / 1e6:.1f} M, ~{EXPECTED_ACTIVE / 1e6:.1f} M)")
    if abs(total - EXPECTED_PARAMETERS) > 0.05e6 or abs(active - EXPECTED_ACTIVE) > 0.05e6:
        raise SystemExit("parameter count differs from the issue's benchmark model")

    cast_for_storage(model, DTYPES[args.dtype])
    args.out.mkdir(parents=True, exist_ok=True)
    clear_checkpoint(args.out)
    model.save_pretrained(args.out, safe_serialization=True)

    # Routing sanity: on a random prompt the experts chosen across layers should spread widely.
    ids = torch.randint(0, config.vocab_size, (1, 64), generator=torch.Generator().manual_seed(1))
    chosen: dict[int, set] = {}
    hooks = []
    for name, m in model.named_modules():
        if type(m).__name__.endswith("TopkRouter"):
            layer = int(name.split(".")[2])
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, layer=layer: chosen.setdefault(layer, set()).update(out[2].flatten().tolist())))
    model.float()(ids, use_cache=False)
    for h in hooks:
        h.remove()
    spread = {layer: len(s) for layer, s in sorted(chosen.items())}
    print(f"distinct experts chosen by 64 random tokens, per MoE layer: {json.dumps(spread)}")
    evict_from_page_cache(args.out)
    sizes = {p.name: p.stat().st_size for p in sorted(args.out.iterdir()) if p.is_file()}
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sizes.items()))


def evict_from_page_cache(folder: Path) -> None:
    """Drops the written weights from the page cache (Linux; a hint elsewhere ignored).

    Buffered writes leave the file cached in 4 KB pages, and a cached file stays that way. Evicted,
    its first load by tinyseek reads it back through a huge-page mapping, in 2 MB folios, which
    decode streams a few percent faster (the README's benchmark notes; `tinyseek bench` prints how
    much of the weights are in 2 MB pages).
    """
    if not hasattr(os, "posix_fadvise"):
        return
    for path in folder.glob("*.safetensors"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


if __name__ == "__main__":
    main()
