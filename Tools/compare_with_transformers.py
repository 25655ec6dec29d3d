#!/usr/bin/env python3
"""Parity harness: run one model folder through HF transformers and through TinySeek, compare.

    python Tools/compare_with_transformers.py Models/deepseek-v3-tiny
    python Tools/compare_with_transformers.py DIR --tokens 1,2,3 --attention absorbed
    python Tools/compare_with_transformers.py DIR --tinyseek .build/release/tinyseek
    python Tools/compare_with_transformers.py DIR --tinyseek-output saved.json   # a saved CLI output
    python Tools/compare_with_transformers.py DIR --self-test                    # test this harness

Reference: transformers in float32 with eager attention and eager experts (a BF16/F16 checkpoint is
loaded as stored and cast to float32, as TinySeek converts half weights to F32). Per-layer outputs are
captured with forward hooks on model.model.layers[i], i.e. the residual stream after layer i, before
the final norm.

TinySeek: `tinyseek logits --model DIR --tokens 1,2,3 --attention X --hidden-states`, which prints
one JSON object {"tokens": [...], "logits": [[vocab] per position],
"hidden_states": [[[hidden] per position] per decoder layer]}. Without --tinyseek the binary is
built with `swift build -c release --product tinyseek` from the repo root and run from there.

Prints the max |logit difference| per position and overall, PASS/FAIL against --tolerance, and on
failure the first decoder layer whose output differs by more than the tolerance.
Exit status: 0 pass, 1 fail (including a TinySeek crash or malformed output), 2 usage/tool error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TOKENS = [5, 66, 129, 200, 1, 9, 88, 143, 31, 240, 77, 12]  # taken modulo vocab_size


class HarnessError(Exception):
    """TinySeek failed or printed malformed output: counts as FAIL (exit 1)."""


class ToolError(Exception):
    """The TinySeek binary could not be built or started: exit 2."""


# ----------------------------------------------------------------------------------------------
# Reference side


def load_reference(model_dir: Path):
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, attn_implementation="eager", experts_implementation="eager")
    return model.float().eval()


@torch.no_grad()
def reference_forward(model, tokens: list[int]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits [T, vocab] and, per decoder layer, its output [T, hidden] (float32)."""
    layers = model.model.layers
    captured: list[torch.Tensor | None] = [None] * len(layers)

    def hook(i):
        def fn(_module, _inputs, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            captured[i] = out.detach()[0].float().clone()
        return fn

    handles = [layer.register_forward_hook(hook(i)) for i, layer in enumerate(layers)]
    try:
        logits = model(torch.tensor([tokens], dtype=torch.long), use_cache=False).logits[0].float()
    finally:
        for h in handles:
            h.remove()
    if any(c is None for c in captured):
        raise HarnessError("a decoder layer hook did not fire")
    return logits.numpy(), [c.numpy() for c in captured]


# ----------------------------------------------------------------------------------------------
# TinySeek side


def tinyseek_command(binary: str | None) -> list[str]:
    if binary is not None:
        return [binary]
    build = ["swift", "build", "-c", "release", "--product", "tinyseek"]
    print("$ " + " ".join(build), file=sys.stderr)
    if subprocess.run(build, cwd=REPO_ROOT, stdout=sys.stderr).returncode != 0:
        raise ToolError("swift build failed")
    bin_dir = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=REPO_ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
    return [str(Path(bin_dir) / "tinyseek")]


def parse_cli_output(stdout: str) -> dict:
    """The JSON object TinySeek printed; tolerates log lines before it."""
    try:
        return json.loads(stdout)
    except json.JSONDecodeError:
        pass
    lines = stdout.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].lstrip().startswith("{"):
            try:
                return json.loads("\n".join(lines[i:]))
            except json.JSONDecodeError:
                continue
    raise HarnessError(f"TinySeek did not print a JSON object; stdout began with {stdout[:200]!r}")


def run_tinyseek(command: list[str], model_dir: Path, tokens: list[int], attention: str) -> dict:
    argv = command + ["logits", "--model", str(model_dir.resolve()), "--tokens", ",".join(map(str, tokens)),
                      "--attention", attention, "--hidden-states"]
    print("$ " + " ".join(argv), file=sys.stderr)
    try:
        proc = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True)
    except OSError as e:
        raise ToolError(f"cannot run {argv[0]}: {e}") from None
    if proc.stderr:
        sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise HarnessError(f"tinyseek exited with status {proc.returncode}")
    return parse_cli_output(proc.stdout)


# ----------------------------------------------------------------------------------------------
# Comparison


def _as_array(value, name: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise HarnessError(f"TinySeek {name} is not a numeric array: {e}") from None
    if arr.shape != shape:
        raise HarnessError(f"TinySeek {name} has shape {arr.shape}, expected {shape}")
    return arr


def _max_abs_diff(ref: np.ndarray, got: np.ndarray, axis=None) -> np.ndarray:
    """max |ref - got|; a non-finite TinySeek value counts as an infinite difference."""
    diff = np.abs(ref.astype(np.float64) - got)
    diff = np.where(np.isfinite(got), diff, np.inf)
    return diff.max(axis=axis)


def compare(tokens: list[int], ref_logits: np.ndarray, ref_hidden: list[np.ndarray], out: dict,
            tolerance: float, verbose: bool = False, log=print) -> bool:
    """Print the comparison; return True on PASS. Raises HarnessError on malformed output."""
    if not isinstance(out, dict):
        raise HarnessError("TinySeek output is not a JSON object")
    if "tokens" in out and list(out["tokens"]) != list(tokens):
        raise HarnessError(f"TinySeek echoed tokens {out['tokens']}, expected {tokens}")
    if "logits" not in out:
        raise HarnessError("TinySeek output has no 'logits'")
    logits = _as_array(out["logits"], "logits", ref_logits.shape)

    per_pos = _max_abs_diff(ref_logits, logits, axis=1)
    log(f"{'pos':>4} {'token':>6} {'max|dlogit|':>12}  argmax ref/tinyseek")
    for t, tok in enumerate(tokens):
        a_ref, a_ts = int(ref_logits[t].argmax()), int(np.nan_to_num(logits[t], nan=-np.inf).argmax())
        flag = "" if a_ref == a_ts else "  <- argmax differs"
        log(f"{t:>4} {tok:>6} {per_pos[t]:>12.3e}  {a_ref}/{a_ts}{flag}")
    overall = float(per_pos.max())
    passed = overall <= tolerance

    hidden_ok = True
    first_bad = None
    if out.get("hidden_states") is not None:
        hs = out["hidden_states"]
        if len(hs) != len(ref_hidden):
            raise HarnessError(f"TinySeek printed {len(hs)} hidden states, expected {len(ref_hidden)} "
                               "(one per decoder layer, the layer's output before the final norm)")
        layer_diffs = [float(_max_abs_diff(r, _as_array(h, f"hidden_states[{i}]", r.shape)))
                       for i, (r, h) in enumerate(zip(ref_hidden, hs))]
        for i, d in enumerate(layer_diffs):
            if verbose:
                log(f"layer {i}: max |dhidden| = {d:.3e}")
            if d > tolerance and first_bad is None:
                first_bad = (i, d)
        hidden_ok = first_bad is None
    elif verbose:
        log("TinySeek printed no hidden_states: comparing logits only")

    passed = passed and hidden_ok
    log(f"overall max |dlogit| = {overall:.3e} (tolerance {tolerance:.1e}): {'PASS' if passed else 'FAIL'}")
    if first_bad is not None:
        log(f"first layer whose output differs by more than {tolerance:.1e}: layer {first_bad[0]} "
            f"(max |dhidden| = {first_bad[1]:.3e})")
    elif not passed and out.get("hidden_states") is not None:
        log("every decoder layer output is within tolerance: the difference is in the final norm or lm_head")
    return passed


# ----------------------------------------------------------------------------------------------
# Self-test: the transformers half and the comparison logic, with TinySeek faked by the reference


def self_test(model, model_dir: Path, tokens: list[int], tolerance: float) -> bool:
    ref_logits, ref_hidden = reference_forward(model, tokens)
    fake = {"tokens": tokens, "logits": ref_logits.tolist(), "hidden_states": [h.tolist() for h in ref_hidden]}
    results = []
    quiet = lambda *_a, **_k: None

    def check(name: str, ok: bool):
        results.append(ok)
        print(f"[{'ok' if ok else 'FAILED'}] {name}")

    # 1. The hooked output of the last layer is the pre-norm residual: norm + lm_head reproduce logits.
    with torch.no_grad():
        last = torch.from_numpy(ref_hidden[-1])
        relogits = model.lm_head(model.model.norm(last)).numpy()
    check("hidden_states[-1] -> final norm -> lm_head reproduces the logits exactly",
          np.array_equal(relogits, ref_logits))

    # 2. The hooks agree with transformers' own output_hidden_states for the inner layers.
    with torch.no_grad():
        hs = model(torch.tensor([tokens]), use_cache=False, output_hidden_states=True).hidden_states
    inner = all(np.array_equal(hs[i + 1][0].numpy(), ref_hidden[i]) for i in range(len(ref_hidden) - 1))
    check(f"hooks == output_hidden_states[1:{len(ref_hidden)}] (embeddings first)", inner)

    # 3. Identical output passes; the JSON round-trip (with build noise before it) is lossless.
    noisy = "Building for production...\nBuild complete!\n" + json.dumps(fake) + "\n"
    check("identical output -> PASS (through the CLI-output parser)",
          compare(tokens, ref_logits, ref_hidden, parse_cli_output(noisy), tolerance, log=quiet))

    # 4. A perturbation far below tolerance passes; one above it fails and is located.
    bad_layer = len(ref_hidden) // 2
    def perturbed(delta: float) -> dict:
        p = json.loads(json.dumps(fake))
        for i in range(bad_layer, len(ref_hidden)):
            p["hidden_states"][i][-1][0] += delta
        p["logits"][-1][3] += delta
        return p
    check("perturbation of tolerance/10 -> PASS",
          compare(tokens, ref_logits, ref_hidden, perturbed(tolerance / 10), tolerance, log=quiet))
    lines = []
    failed = not compare(tokens, ref_logits, ref_hidden, perturbed(tolerance * 10), tolerance, log=lines.append)
    check(f"perturbation of 10x tolerance from layer {bad_layer} -> FAIL naming layer {bad_layer}",
          failed and any(f"layer {bad_layer} " in line for line in lines))

    # 5. A NaN fails; missing hidden states compare logits only; a wrong layer count is an error.
    nan = json.loads(json.dumps(fake))
    nan["logits"][0][0] = float("nan")
    check("NaN logit -> FAIL", not compare(tokens, ref_logits, ref_hidden, nan, tolerance, log=quiet))
    no_hidden = {k: v for k, v in fake.items() if k != "hidden_states"}
    check("no hidden_states -> logits-only PASS",
          compare(tokens, ref_logits, ref_hidden, no_hidden, tolerance, log=quiet))
    try:
        compare(tokens, ref_logits, ref_hidden, {**fake, "hidden_states": fake["hidden_states"][:-1]},
                tolerance, log=quiet)
        check("wrong number of hidden states -> error", False)
    except HarnessError:
        check("wrong number of hidden states -> error", True)

    # 6. The subprocess path end to end, with a fake `tinyseek` that prints the reference JSON.
    with tempfile.TemporaryDirectory() as tmp:
        payload = Path(tmp) / "out.json"
        payload.write_text(json.dumps(fake))
        exe = Path(tmp) / "tinyseek"
        exe.write_text(
            f"#!{sys.executable}\n"
            "import sys\n"
            f"expected = ['logits', '--model', {str(model_dir.resolve())!r}, '--tokens', "
            f"{','.join(map(str, tokens))!r}, '--attention', 'absorbed', '--hidden-states']\n"
            "if sys.argv[1:] != expected:\n"
            "    sys.exit('unexpected arguments: %r' % (sys.argv[1:],))\n"
            "print('warming up', file=sys.stderr)\n"
            f"print(open({str(payload)!r}).read())\n")
        exe.chmod(0o755)
        got = run_tinyseek([str(exe)], model_dir, tokens, "absorbed")
        check("fake tinyseek binary via subprocess -> PASS",
              compare(tokens, ref_logits, ref_hidden, got, tolerance, log=quiet))

    ok = all(results)
    print(f"self-test: {sum(results)}/{len(results)} checks as expected -> {'PASS' if ok else 'FAIL'}")
    return ok


# ----------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", type=Path, help="model folder (config.json + *.safetensors)")
    ap.add_argument("--tokens", help="comma-separated token ids (default: a fixed 12-token prompt)")
    ap.add_argument("--attention", choices=["naive", "absorbed", "auto"], default="auto",
                    help="TinySeek MLA order, passed through to the CLI")
    ap.add_argument("--tinyseek", help="path to a built tinyseek binary (default: swift build -c release)")
    ap.add_argument("--tinyseek-output", type=Path, help="compare this saved `tinyseek logits` JSON instead")
    ap.add_argument("--tolerance", type=float, default=1e-4, help="max abs difference allowed (default 1e-4)")
    ap.add_argument("--verbose", action="store_true", help="print every layer's max difference")
    ap.add_argument("--self-test", action="store_true", help="test the harness with TinySeek faked by transformers")
    args = ap.parse_args()

    if not (args.model_dir / "config.json").is_file():
        print(f"error: {args.model_dir}/config.json not found", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    model = load_reference(args.model_dir)
    vocab = model.config.vocab_size
    try:
        tokens = ([int(t) for t in args.tokens.split(",") if t.strip()] if args.tokens
                  else [t % vocab for t in DEFAULT_TOKENS])
    except ValueError:
        print(f"error: --tokens must be comma-separated integers, got {args.tokens!r}", file=sys.stderr)
        return 2
    if not tokens or any(not 0 <= t < vocab for t in tokens):
        print(f"error: need at least one token, each in [0, {vocab})", file=sys.stderr)
        return 2

    if args.self_test:
        return 0 if self_test(model, args.model_dir, tokens, args.tolerance) else 1

    cfg = model.config
    print(f"model: {args.model_dir} ({cfg.model_type}, {cfg.num_hidden_layers} layers, vocab {vocab}); "
          f"tokens {tokens}; attention {args.attention}")
    ref_logits, ref_hidden = reference_forward(model, tokens)
    try:
        if args.tinyseek_output is not None:
            out = parse_cli_output(args.tinyseek_output.read_text())
        else:
            out = run_tinyseek(tinyseek_command(args.tinyseek), args.model_dir, tokens, args.attention)
        passed = compare(tokens, ref_logits, ref_hidden, out, args.tolerance, verbose=args.verbose)
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (HarnessError, OSError) as e:
        print(f"FAIL: {e}")
        return 1
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
