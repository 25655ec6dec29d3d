#!/usr/bin/env python3
"""Writes the safetensors fixtures that Tests/TensorTests/SafetensorsTests.swift reads.

Run from the repository root (versions pinned in Tools/requirements.txt):

    /work/venv/bin/python Tools/make_safetensors_fixtures.py

Outputs, in Tests/TensorTests/Fixtures/safetensors/ (a few KB in all):

  mixed.safetensors        F32, F16 and BF16 tensors of several shapes (a 0-d scalar, one
                           element, [3, 5], [2, 3, 4], an empty [0, 3], and for F16/BF16 a row
                           of edge values: signed zero, max, smallest normal and subnormal),
                           one I32 tensor (a dtype the reader lists but cannot load as F32) and
                           __metadata__, written by the reference `safetensors` library.
  mixed.expected.json      per F32/F16/BF16 tensor: dtype, shape and the row-major values as
                           torch computes them in float32 (exact: every float32 is a double,
                           and Python's json writes doubles round-trippably).
  sharded/                 a two-shard checkpoint, split and indexed by huggingface_hub's
                           split_torch_state_dict_into_shards exactly as save_pretrained does
                           (model-0000N-of-00002.safetensors + model.safetensors.index.json).
  sharded.expected.json    the same expectations for the sharded tensors, plus total_size.

Values come from a seeded torch.Generator, so a rerun rewrites identical bytes.
"""

import json
from pathlib import Path

import torch
from huggingface_hub import split_torch_state_dict_into_shards
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent.parent / "Tests" / "TensorTests" / "Fixtures" / "safetensors"
# One key only: the library stores __metadata__ in a hash map, so two keys would come out in a
# random order and the fixture bytes would change on every run.
METADATA = {"format": "pt"}


def random_tensors(prefix: str, dtype: torch.dtype, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """randn values rounded to `dtype`, in the shapes the reader must handle."""
    shapes = {"scalar": [], "one": [1], "matrix": [3, 5], "cube": [2, 3, 4], "empty": [0, 3]}
    return {
        f"{prefix}.{name}": torch.randn(shape, generator=generator, dtype=torch.float32).to(dtype)
        for name, shape in shapes.items()
    }


def edge_values(dtype: torch.dtype) -> torch.Tensor:
    """Values that exercise every branch of a 16-bit -> 32-bit conversion (no inf/NaN: JSON
    cannot carry them)."""
    info = torch.finfo(dtype)
    smallest_subnormal = info.smallest_normal * info.eps  # 2^-24 for F16, 2^-133 for BF16
    values = [0.0, -0.0, 1.0, -2.5, info.max, info.smallest_normal, smallest_subnormal, 1.0 / 3.0]
    return torch.tensor(values, dtype=torch.float64).to(dtype)


def expectations(tensors: dict[str, torch.Tensor]) -> dict:
    dtype_names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
    return {
        name: {
            "dtype": dtype_names[t.dtype],
            "shape": list(t.shape),
            "values": t.to(torch.float32).flatten().tolist(),
        }
        for name, t in sorted(tensors.items())
        if t.dtype in dtype_names
    }


def write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")


def make_mixed(generator: torch.Generator) -> None:
    tensors: dict[str, torch.Tensor] = {}
    tensors |= random_tensors("f32", torch.float32, generator)
    tensors |= random_tensors("f16", torch.float16, generator)
    tensors |= random_tensors("bf16", torch.bfloat16, generator)
    tensors["f16.edges"] = edge_values(torch.float16)
    tensors["bf16.edges"] = edge_values(torch.bfloat16)
    tensors["i32.ids"] = torch.tensor([3, 1, 4, 1], dtype=torch.int32)
    save_file(tensors, OUT / "mixed.safetensors", metadata=METADATA)
    write_json(OUT / "mixed.expected.json", {"metadata": METADATA, "tensors": expectations(tensors)})


def make_sharded(generator: torch.Generator) -> None:
    """A tiny HF-named state dict split into exactly two shards by size, like save_pretrained."""
    state_dict = {
        "model.embed_tokens.weight": torch.randn(4, 3, generator=generator),
        "model.layers.0.input_layernorm.weight": torch.randn(3, generator=generator),
        "model.layers.0.mlp.down_proj.weight": torch.randn(3, 2, generator=generator).to(torch.bfloat16),
        "lm_head.weight": torch.randn(4, 3, generator=generator).to(torch.float16),
    }
    total = sum(t.numel() * t.element_size() for t in state_dict.values())
    split = split_torch_state_dict_into_shards(state_dict, max_shard_size=total // 2 + 8)
    assert split.is_sharded and len(split.filename_to_tensors) == 2, split.filename_to_tensors

    folder = OUT / "sharded"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.safetensors"):
        stale.unlink()
    for filename, names in split.filename_to_tensors.items():
        save_file({name: state_dict[name] for name in names}, folder / filename, metadata=METADATA)
    index = {"metadata": split.metadata, "weight_map": split.tensor_to_filename}
    write_json(folder / "model.safetensors.index.json", index)
    write_json(
        OUT / "sharded.expected.json",
        {"total_size": split.metadata["total_size"], "tensors": expectations(state_dict)},
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(20250715)
    make_mixed(generator)
    make_sharded(generator)
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(OUT)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
