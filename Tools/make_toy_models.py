#!/usr/bin/env python3
"""Make tiny DeepSeek-style checkpoints (HF layout) and golden fixtures with HF transformers.

    python Tools/make_toy_models.py                  # the shipped set: Models/<name> + golden fixtures
    python Tools/make_toy_models.py --list           # show the presets and their config fields
    python Tools/make_toy_models.py --preset deepseek-v3-tiny --out /tmp/my-model \\
        --set hidden_size=96 --set n_group=2 --set topk_group=1 --dtype bf16 --seed 7 \\
        [--golden /tmp/my-model.json] [--classic-rope]

Models are built with transformers' own classes (DeepseekV3ForCausalLM / DeepseekV2ForCausalLM)
and saved with save_pretrained, so tensor names, shapes and config keys are exactly what
transformers writes. The weights are then re-initialised, because the default init (std 0.02)
makes every logit ~0 and every token pick the same experts, which would test nothing:

    every Linear / expert matrix  ~ N(0, 1/fan_in)      activations keep O(1) scale per layer
    embed_tokens                  ~ N(0, 1)
    RMSNorm weights               ~ 1 + 0.1 N(0, 1)
    router gate.weight            ~ N(0, (2/sqrt(hidden))^2)   router logits ~ N(0, 4): tokens disagree
    gate.e_score_correction_bias  ~ 0.1 N(0, 1)                non-zero, so biased != unbiased scores
    lm_head                       ~ N(0, 1/hidden)              logits ~ N(0, 1), max |logit| ~ 3

A model is only accepted when, on the fixture prompts (and their greedy continuations), every
routing decision (k-th vs (k+1)-th expert score, and the group cut) and every greedy argmax wins by
at least --min-margin; otherwise the next seed is tried. That keeps the golden tests off knife
edges where float32 rounding order could flip an expert or a token.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
import transformers
from transformers import (
    AutoModelForCausalLM,
    DeepseekV2Config,
    DeepseekV2ForCausalLM,
    DeepseekV3Config,
    DeepseekV3ForCausalLM,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
GOLDEN_DIR = REPO_ROOT / "Tests" / "TinySeekTests" / "Fixtures" / "golden"

# Prompts of lengths 1, 5 and 12 (ids are taken modulo vocab_size for custom vocabularies).
# Token 1 is the eos id of the shipped models: it appears inside a prompt on purpose.
FIXTURE_PROMPTS = [
    [0],
    [17, 101, 3, 201, 42],
    [5, 66, 129, 200, 1, 9, 88, 143, 31, 240, 77, 12],
]
GREEDY_STEPS = 8

MODEL_CLASSES = {
    "deepseek_v3": (DeepseekV3Config, DeepseekV3ForCausalLM),
    "deepseek_v2": (DeepseekV2Config, DeepseekV2ForCausalLM),
}
DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}

# ----------------------------------------------------------------------------------------------
# Presets. Config fields are HF DeepseekV3Config / DeepseekV2Config keyword arguments.

_V3_TINY = dict(
    vocab_size=256, hidden_size=64, intermediate_size=96, moe_intermediate_size=16,
    num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
    q_lora_rank=32, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
    n_routed_experts=8, n_group=4, topk_group=2, num_experts_per_tok=2, n_shared_experts=1,
    first_k_dense_replace=1, moe_layer_freq=1, norm_topk_prob=True, routed_scaling_factor=2.5,
    scoring_func="sigmoid", topk_method="noaux_tc",  # what published V3 configs say; HF V3 always does this
    rope_interleave=True, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    max_position_embeddings=128, rms_norm_eps=1e-6, bos_token_id=0, eos_token_id=1,
    tie_word_embeddings=False, num_mtp_layers=0,  # no MTP weights are written, so say 0
)

_V2_COMMON = dict(
    vocab_size=256, hidden_size=64, intermediate_size=96, moe_intermediate_size=16,
    num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
    kv_lora_rank=32, qk_nope_head_dim=16, v_head_dim=16,
    n_routed_experts=8, num_experts_per_tok=2, first_k_dense_replace=1, moe_layer_freq=1,
    scoring_func="softmax", norm_topk_prob=False,  # HF DeepseekV2 ignores norm_topk_prob (see validate)
    max_position_embeddings=128, bos_token_id=0, eos_token_id=1, tie_word_embeddings=False,
)

PRESETS: dict[str, dict] = {
    # Sigmoid + noaux_tc routing with groups, q LoRA, interleaved RoPE, one dense layer.
    "deepseek-v3-tiny": dict(model_type="deepseek_v3", dtype="f32", seed=8, classic_rope=False,
                             config=_V3_TINY),
    # V2-Lite shape: direct q_proj, softmax greedy routing, 2 shared experts, YaRN rope written in
    # the classic published form (rope_theta + rope_scaling {"type": "yarn"}). mscale != mscale_all_dim
    # so both the cos/sin attention factor and the softmax-scale correction are non-trivial.
    "deepseek-v2-lite-tiny": dict(model_type="deepseek_v2", dtype="f32", seed=2, classic_rope=True, config={
        **_V2_COMMON, "q_lora_rank": None, "qk_rope_head_dim": 16,
        "n_shared_experts": 2, "n_group": 1, "topk_group": 1, "topk_method": "greedy",
        "routed_scaling_factor": 1.0, "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                            "original_max_position_embeddings": 32, "mscale": 1.0,
                            "mscale_all_dim": 0.707, "beta_fast": 32, "beta_slow": 1},
    }),
    # Same weights as deepseek-v3-tiny (same seed), stored in BF16; the router stays F32.
    "deepseek-v3-tiny-bf16": dict(model_type="deepseek_v3", dtype="bf16", seed=8, classic_rope=False,
                                  config=_V3_TINY),
    # DeepSeek-V2 (full) routing: softmax, group_limited_greedy (group score = max), q LoRA, plain rope.
    "deepseek-v2-tiny-group": dict(model_type="deepseek_v2", dtype="f32", seed=6, classic_rope=False, config={
        **_V2_COMMON, "q_lora_rank": 32, "qk_rope_head_dim": 8,
        "n_shared_experts": 1, "n_group": 4, "topk_group": 2, "topk_method": "group_limited_greedy",
        "routed_scaling_factor": 2.0, "rms_norm_eps": 1e-5,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
    }),
    # The other V3 branches: half-split RoPE, direct q_proj, one group, unnormalised top-k weights,
    # every layer MoE, v_head_dim != qk_nope_head_dim, 2 heads, hidden/vocab not powers of two.
    # rms_norm_eps 1e-3 is large on purpose: HF builds q_a_layernorm/kv_a_layernorm with the fixed
    # default eps 1e-6 and only the decoder norms with rms_norm_eps, and with 1e-3 either mistake
    # (config eps for the latent norms, or 1e-6 everywhere) moves logits by ~1e-3, above tolerance.
    "deepseek-v3-tiny-halfsplit": dict(model_type="deepseek_v3", dtype="f32", seed=11, classic_rope=False, config={
        **_V3_TINY, "vocab_size": 250, "hidden_size": 48, "intermediate_size": 64,
        "num_attention_heads": 2, "num_key_value_heads": 2, "q_lora_rank": None, "kv_lora_rank": 24,
        "qk_nope_head_dim": 32, "qk_rope_head_dim": 16, "v_head_dim": 24,
        "n_routed_experts": 6, "n_group": 1, "topk_group": 1, "num_experts_per_tok": 3,
        "n_shared_experts": 2, "first_k_dense_replace": 0, "norm_topk_prob": False,
        "routed_scaling_factor": 1.5, "rope_interleave": False, "rms_norm_eps": 1e-3,
        "rope_parameters": {"rope_type": "default", "rope_theta": 50000.0},
    }),
    # V3 with YaRN in the new `rope_parameters` form, published-V3 style mscale == mscale_all_dim
    # (attention factor exactly 1, softmax scale * mscale^2), beta_fast/beta_slow left to defaults.
    "deepseek-v3-tiny-yarn": dict(model_type="deepseek_v3", dtype="f32", seed=7, classic_rope=False, config={
        **_V3_TINY, "qk_rope_head_dim": 16, "max_position_embeddings": 256,
        "rope_parameters": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                            "original_max_position_embeddings": 64, "mscale": 1.0, "mscale_all_dim": 1.0},
    }),
}

# ----------------------------------------------------------------------------------------------
# Config


def parse_set(assignments: list[str]) -> dict:
    """`key=value` pairs; value is JSON (1, 2.5, null, true, "x", {...}) or else a bare string.
    A dotted key (`rope_parameters.factor=8`) updates one field of a nested dict."""
    out = {}
    for item in assignments:
        if "=" not in item:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip()] = value
    return out


def apply_overrides(fields: dict, overrides: dict) -> dict:
    fields = copy.deepcopy(fields)
    for key, value in overrides.items():
        if "." in key:
            outer, inner = key.split(".", 1)
            if not isinstance(fields.get(outer), dict):
                raise SystemExit(f"--set {key}: {outer} is not a dict in this preset")
            fields[outer][inner] = value
        else:
            fields[key] = value
    return fields


def validate(model_type: str, f: dict) -> None:
    """Reject configs that transformers would run but that make a meaningless or ambiguous fixture."""
    def need(cond, msg):
        if not cond:
            raise SystemExit(f"invalid config: {msg}")

    need(model_type in MODEL_CLASSES, f"model_type must be one of {sorted(MODEL_CLASSES)}")
    e, k = f["n_routed_experts"], f["num_experts_per_tok"]
    need(f["qk_rope_head_dim"] % 2 == 0, "qk_rope_head_dim must be even")
    need(0 <= f["first_k_dense_replace"] <= f["num_hidden_layers"], "first_k_dense_replace out of range")
    need(1 <= k <= e, "need 1 <= num_experts_per_tok <= n_routed_experts")
    need(f["max_position_embeddings"] >= max(map(len, FIXTURE_PROMPTS)) + GREEDY_STEPS,
         "max_position_embeddings too small for the fixture prompts + greedy steps")
    grouped = model_type == "deepseek_v3" or f.get("topk_method") == "group_limited_greedy"
    if grouped:
        g, tg = f["n_group"], f["topk_group"]
        need(g and e % g == 0, "n_routed_experts must be a multiple of n_group")
        need(tg and 1 <= tg <= g, "need 1 <= topk_group <= n_group")
        need(k <= tg * (e // g), "num_experts_per_tok exceeds the experts in topk_group groups")
    if model_type == "deepseek_v3":
        need(e // f["n_group"] >= 2, "V3 group score is the sum of the top-2 experts: need >= 2 per group")
    else:
        need(f.get("topk_method") in ("greedy", "group_limited_greedy"),
             "HF DeepseekV2 supports topk_method greedy | group_limited_greedy only")
        need(not f.get("norm_topk_prob"),
             "HF DeepseekV2's router ignores norm_topk_prob (the original DeepSeek code honours it); "
             "a true value would make the fixture ambiguous")
        need(f.get("rope_interleave", True), "HF DeepseekV2 always uses interleaved (complex) RoPE")
        need(f["hidden_size"] % f["num_attention_heads"] == 0, "DeepseekV2Config needs hidden % heads == 0")


def build_config(model_type: str, fields: dict):
    config_cls, _ = MODEL_CLASSES[model_type]
    return config_cls(**copy.deepcopy(fields))


# ----------------------------------------------------------------------------------------------
# Weights


@torch.no_grad()
def reinit_weights(model, gen: torch.Generator, router_gain: float, bias_std: float, lm_head_gain: float) -> None:
    """Overwrite every parameter (see the module docstring for the distributions)."""
    hidden = model.config.hidden_size

    def normal(t: torch.Tensor, std: float, mean: float = 0.0):
        t.copy_(torch.randn(t.shape, generator=gen, dtype=torch.float32) * std + mean)

    for name, p in model.named_parameters():
        if name.endswith("embed_tokens.weight"):
            normal(p, 1.0)
        elif name == "lm_head.weight":
            normal(p, lm_head_gain / math.sqrt(hidden))
        elif name.endswith("mlp.gate.weight"):  # router [n_routed_experts, hidden]
            normal(p, router_gain / math.sqrt(hidden))
        elif name.endswith("norm.weight"):  # input/post_attention/q_a/kv_a layernorm and final norm
            normal(p, 0.1, mean=1.0)
        elif name.endswith(".bias"):  # only with attention_bias / mlp_bias
            normal(p, 0.1)
        elif p.numel() == 0:  # e.g. shared_experts with n_shared_experts = 0: an empty Linear
            continue
        elif p.dim() in (2, 3):  # Linear [out, in] and stacked experts [E, out, in]: fan_in = last dim
            normal(p, 1.0 / math.sqrt(p.shape[-1]))
        else:
            raise RuntimeError(f"reinit_weights: no rule for parameter {name} {tuple(p.shape)}")
    for name, b in model.named_buffers():
        if name.endswith("e_score_correction_bias"):
            normal(b, bias_std)


@torch.no_grad()
def cast_for_storage(model, dtype: torch.dtype) -> None:
    """Cast like a half-precision checkpoint: everything except the modules transformers keeps in
    float32 (`_keep_in_fp32_modules_strict`: V3 gate.weight + e_score_correction_bias, V2 gate.weight)."""
    if dtype == torch.float32:
        return
    keep = list(getattr(model, "_keep_in_fp32_modules_strict", None) or [])
    for name, p in model.named_parameters():
        if not any(k in name for k in keep):
            p.data = p.data.to(dtype)
    model.config.dtype = dtype


# ----------------------------------------------------------------------------------------------
# Saving


def to_classic_rope(config_path: Path) -> None:
    """Rewrite a saved config.json into the form of published DeepSeek checkpoints: top-level
    `rope_theta` + `rope_scaling` {"type": ...}, `torch_dtype`, and without the derived
    `head_dim` / `qk_head_dim` keys that save_pretrained adds."""
    cfg = json.loads(config_path.read_text())
    rope = dict(cfg.pop("rope_parameters"))
    cfg.pop("head_dim", None)
    cfg.pop("qk_head_dim", None)
    if "dtype" in cfg:
        cfg["torch_dtype"] = cfg.pop("dtype")
    cfg["rope_theta"] = rope.pop("rope_theta")
    rope_type = rope.pop("rope_type", None) or rope.pop("type", "default")
    rope.pop("type", None)
    cfg["rope_scaling"] = None if rope_type == "default" else {"type": rope_type, **rope}
    config_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def clear_checkpoint(out: Path) -> None:
    for name in ("config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json"):
        (out / name).unlink(missing_ok=True)
    for shard in out.glob("model-*-of-*.safetensors"):
        shard.unlink()


# ----------------------------------------------------------------------------------------------
# Reference (transformers, float32, eager)


def load_reference(model_dir: Path):
    """Load as TinySeek does: the checkpoint as stored, then everything computed in float32."""
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, attn_implementation="eager", experts_implementation="eager")
    return model.float().eval()


@torch.no_grad()
def forward_logits(model, ids: list[int]) -> torch.Tensor:
    return model(torch.tensor([ids], dtype=torch.long), use_cache=False).logits[0].float()


@torch.no_grad()
def greedy(model, prompt: list[int], steps: int):
    """Manual argmax loop with a full re-forward per step (no KV cache, EOS ignored).
    Returns the generated ids, the logits row each id was chosen from, and top1-top2 margins."""
    ids, rows, margins = list(prompt), [], []
    for _ in range(steps):
        row = forward_logits(model, ids)[-1]
        top2 = torch.topk(row, 2).values
        margins.append(float(top2[0] - top2[1]))
        ids.append(int(torch.argmax(row)))
        rows.append(row)
    return ids[len(prompt):], rows, margins


def _router_decisions(router, x: torch.Tensor, model_type: str):
    """Recompute one router's choice and its margins (same ops as HF's DeepseekV{2,3}TopkRouter).
    Returns (chosen expert ids [T, k], expert margin [T], group margin [T])."""
    t = x.shape[0]
    e, k = router.num_experts, router.top_k
    logits = F.linear(x.float(), router.weight.float())
    inf = torch.full((t,), math.inf)
    group_margin = inf
    if model_type == "deepseek_v3":
        choice = logits.sigmoid() + router.e_score_correction_bias
        fill = -math.inf
        g, tg = router.num_group, router.topk_group
        group_scores = choice.view(t, g, e // g).topk(2, dim=-1).values.sum(-1)
    else:
        choice = logits.softmax(dim=-1, dtype=torch.float32)
        fill = 0.0
        g, tg = (router.num_group, router.topk_group) if router.topk_method == "group_limited_greedy" else (1, 1)
        group_scores = choice.view(t, g, e // g).max(dim=-1).values
    if tg < g:
        s = group_scores.sort(dim=-1, descending=True).values
        group_margin = s[:, tg - 1] - s[:, tg]
    keep_groups = torch.zeros_like(group_scores).scatter_(1, group_scores.topk(tg, dim=-1).indices, 1.0)
    keep = keep_groups.bool().unsqueeze(-1).expand(t, g, e // g).reshape(t, e)
    masked = choice.masked_fill(~keep, fill)
    s = masked.sort(dim=-1, descending=True).values
    expert_margin = (s[:, k - 1] - s[:, k]) if k < e else inf
    expert_margin = torch.where(torch.isfinite(expert_margin), expert_margin, inf)
    return masked.topk(k, dim=-1).indices, expert_margin, group_margin


@torch.no_grad()
def routing_check(model, sequences: list[list[int]], prompt_lens: list[int]) -> dict:
    """Per MoE layer: distinct experts chosen over the prompt tokens, and the smallest expert and
    group margins over all tokens (prompts + greedy continuations). Also asserts that the
    recomputed choice equals the one transformers made."""
    model_type = model.config.model_type
    routers = {int(re.search(r"layers\.(\d+)\.", n).group(1)): m
               for n, m in model.named_modules() if type(m).__name__.endswith("TopkRouter")}
    stats = {i: {"distinct_experts": set(), "min_expert_margin": math.inf, "min_group_margin": math.inf}
             for i in sorted(routers)}
    for seq, plen in zip(sequences, prompt_lens):
        captured = {}
        hooks = [r.register_forward_hook(lambda mod, inp, out, i=i: captured.__setitem__(i, (inp[0], out[2])))
                 for i, r in routers.items()]
        try:
            forward_logits(model, seq)
        finally:
            for h in hooks:
                h.remove()
        for i, (x, hf_indices) in captured.items():
            x = x.reshape(-1, model.config.hidden_size)
            chosen, em, gm = _router_decisions(routers[i], x, model_type)
            if not torch.equal(chosen.sort(-1).values, hf_indices.sort(-1).values):
                raise RuntimeError(f"layer {i}: recomputed routing differs from transformers'")
            st = stats[i]
            st["distinct_experts"].update(chosen[:plen].flatten().tolist())
            st["min_expert_margin"] = min(st["min_expert_margin"], float(em.min()))
            st["min_group_margin"] = min(st["min_group_margin"], float(gm.min()))
    return {str(i): {"distinct_experts": len(st["distinct_experts"]),
                     "min_expert_margin": st["min_expert_margin"],
                     "min_group_margin": None if math.isinf(st["min_group_margin"]) else st["min_group_margin"]}
            for i, st in stats.items()}


def make_fixture(model, name: str, seed: int, checkpoint_dtype: str) -> tuple[dict, dict]:
    """Golden logits, greedy ids, routing sanity. Returns (fixture, diagnostics)."""
    vocab = model.config.vocab_size
    cases, sequences, prompt_lens, greedy_margins, all_logits = [], [], [], [], []
    for prompt in FIXTURE_PROMPTS:
        prompt = [t % vocab for t in prompt]
        logits = forward_logits(model, prompt)
        gen, rows, margins = greedy(model, prompt, GREEDY_STEPS)
        cases.append({"prompt": prompt, "logits": logits.tolist(), "greedy": gen,
                      "greedy_logits_last": rows[-1].tolist()})
        sequences.append(prompt + gen)
        prompt_lens.append(len(prompt))
        greedy_margins += margins
        all_logits.append(logits)
    routing = routing_check(model, sequences, prompt_lens)
    fixture = {
        "model": name,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "dtype_compute": "float32",
        "checkpoint_dtype": checkpoint_dtype,
        "attn_implementation": "eager",
        "experts_implementation": "eager",
        "seed": seed,
        "notes": ("logits[i] = float32 logits at prompt position i from one forward over the whole prompt. "
                  "greedy = 8 ids from a manual argmax loop (full re-forward per step, no KV cache, EOS "
                  "ignored). greedy_logits_last = the logits row greedy[7] was the argmax of, i.e. the last "
                  "position of prompt + greedy[0..6]. routing_sanity per MoE layer: distinct experts over "
                  "the prompt tokens, smallest k-th minus (k+1)-th choice score and group-cut margin over "
                  "prompt + greedy tokens."),
        "min_greedy_margin": min(greedy_margins),
        "routing_sanity": routing,
        "cases": cases,
    }
    cat = torch.cat(all_logits)
    diagnostics = {"logit_std": float(cat.std()), "logit_absmax": float(cat.abs().max())}
    return fixture, diagnostics


def fixture_json(fixture: dict) -> str:
    """JSON with each innermost number list on one line (readable diffs, small files). Floats are
    Python floats of float32 values, written by repr: exact when parsed back to Float."""
    text = json.dumps(fixture, indent=1)
    text = re.sub(r"\[([^\[\]{}\"]*)\]", lambda m: "[" + ",".join(s.strip() for s in m.group(1).split(",")) + "]"
                  if m.group(1).strip() else "[]", text)
    if json.loads(text) != json.loads(json.dumps(fixture)):
        raise RuntimeError("fixture JSON does not round-trip")
    return text + "\n"


# ----------------------------------------------------------------------------------------------
# Build one model


def build_model(name: str, model_type: str, fields: dict, dtype: str, seed: int, classic_rope: bool,
                out: Path, router_gain: float, bias_std: float, lm_head_gain: float):
    """Create, re-initialise, cast and save one checkpoint; return the reference model loaded back."""
    torch.manual_seed(seed)
    config = build_config(model_type, fields)
    model = MODEL_CLASSES[model_type][1](config).eval()
    gen = torch.Generator().manual_seed(seed)
    reinit_weights(model, gen, router_gain, bias_std, lm_head_gain)
    cast_for_storage(model, DTYPES[dtype])
    out.mkdir(parents=True, exist_ok=True)
    clear_checkpoint(out)
    model.save_pretrained(out, safe_serialization=True)
    reference = load_reference(out)
    if classic_rope:
        probe = [t % config.vocab_size for t in FIXTURE_PROMPTS[-1]]
        before = forward_logits(reference, probe)
        to_classic_rope(out / "config.json")
        reference = load_reference(out)
        after = forward_logits(reference, probe)
        if not torch.equal(before, after):
            raise RuntimeError(f"{name}: classic rope_scaling config changes transformers' logits "
                               f"(max diff {float((before - after).abs().max())})")
    return reference


def make_one(name: str, preset: dict, out: Path, golden: Path | None, args) -> dict:
    fields = apply_overrides(preset["config"], parse_set(args.set or []))
    model_type = fields.pop("model_type", preset["model_type"])
    validate(model_type, fields)
    dtype = args.dtype or preset["dtype"]
    classic = preset["classic_rope"] if args.classic_rope is None else args.classic_rope
    seed0 = preset["seed"] if args.seed is None else args.seed
    for seed in range(seed0, seed0 + args.max_tries):
        model = build_model(name, model_type, fields, dtype, seed, classic, out,
                            args.router_gain, args.bias_std, args.lm_head_gain)
        fixture, diag = make_fixture(model, name, seed, {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}[dtype])
        margins = [fixture["min_greedy_margin"]] + [
            m for layer in fixture["routing_sanity"].values()
            for m in (layer["min_expert_margin"], layer["min_group_margin"]) if m is not None]
        if min(margins) >= args.min_margin:
            break
        print(f"  {name}: seed {seed} rejected (smallest routing/greedy margin {min(margins):.3g} "
              f"< --min-margin {args.min_margin}); trying seed {seed + 1}", file=sys.stderr)
    else:
        raise SystemExit(f"{name}: no seed in [{seed0}, {seed0 + args.max_tries}) met --min-margin")
    if golden is not None:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(fixture_json(fixture))
    summary = {"name": name, "out": str(out), "seed": seed, "dtype": dtype, **diag,
               "files": {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()},
               "min_greedy_margin": fixture["min_greedy_margin"], "routing": fixture["routing_sanity"],
               "greedy": [c["greedy"] for c in fixture["cases"]]}
    print_summary(summary, golden)
    return summary


def print_summary(s: dict, golden: Path | None) -> None:
    sizes = ", ".join(f"{k} {v / 1024:.1f} KiB" for k, v in s["files"].items())
    print(f"{s['name']}: seed {s['seed']}, {s['dtype']} -> {s['out']}  [{sizes}]")
    print(f"  logits std {s['logit_std']:.3f}, max |logit| {s['logit_absmax']:.3f}, "
          f"min greedy margin {s['min_greedy_margin']:.4g}, greedy {s['greedy']}")
    for layer, r in s["routing"].items():
        gm = "n/a" if r["min_group_margin"] is None else f"{r['min_group_margin']:.4g}"
        print(f"  layer {layer}: {r['distinct_experts']} distinct experts over prompt tokens, "
              f"min expert margin {r['min_expert_margin']:.4g}, min group margin {gm}")
    if golden is not None:
        print(f"  golden: {golden} ({golden.stat().st_size / 1024:.1f} KiB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), help="start from this preset (default: build all shipped)")
    ap.add_argument("--out", type=Path, help="output folder (default Models/<preset>)")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a config field; JSON value (null, true, 2.5, {...}); dotted key for nested")
    ap.add_argument("--dtype", choices=sorted(DTYPES), help="storage dtype (compute is always float32)")
    ap.add_argument("--seed", type=int, help="first seed to try (default: the preset's)")
    ap.add_argument("--golden", type=Path, help="also write a golden fixture JSON here")
    ap.add_argument("--classic-rope", dest="classic_rope", action="store_true", default=None,
                    help="write rope_theta + rope_scaling {type: ...} instead of rope_parameters")
    ap.add_argument("--no-classic-rope", dest="classic_rope", action="store_false")
    ap.add_argument("--min-margin", type=float, default=1e-3,
                    help="smallest accepted routing/greedy decision margin on the fixture prompts")
    ap.add_argument("--max-tries", type=int, default=20, help="seeds to try before giving up")
    ap.add_argument("--router-gain", type=float, default=2.0, help="router weight std * sqrt(hidden)")
    ap.add_argument("--bias-std", type=float, default=0.1, help="std of e_score_correction_bias")
    ap.add_argument("--lm-head-gain", type=float, default=1.0, help="lm_head std * sqrt(hidden)")
    ap.add_argument("--list", action="store_true", help="print the presets and exit")
    args = ap.parse_args()

    if args.list:
        for name, p in PRESETS.items():
            print(f"{name}: {p['model_type']} {p['dtype']} seed {p['seed']} classic_rope {p['classic_rope']}")
            print("  " + json.dumps(p["config"], sort_keys=True))
        return
    if args.preset is None:
        if args.out or args.set or args.golden or args.dtype or args.seed is not None or args.classic_rope is not None:
            ap.error("--out/--set/--golden/--dtype/--seed/--classic-rope need --preset")
        for name, preset in PRESETS.items():
            make_one(name, preset, REPO_ROOT / "Models" / name, GOLDEN_DIR / f"{name}.json", args)
        return
    out = args.out or REPO_ROOT / "Models" / args.preset
    make_one(args.out.name if args.out else args.preset, PRESETS[args.preset], out, args.golden, args)


if __name__ == "__main__":
    main()
