#!/usr/bin/python3
"""Writes the variant fixtures under tests/data/variants/<name>/ with the reference libraries.

Each folder has exactly the format of the shared fixture folder of the same family (see the shared fixtures'
README.md): config.json / scheduler_config.json, the weights through the library's own save_pretrained,
inputs.safetensors, outputs.safetensors and meta.json with the same fields. The variants change sizes and options
that the shared fixtures leave at one value, so that the same parity test runs on both.

Reference: diffusers v0.29.2, huggingface_hub v0.24.7, transformers at d2c687b3f1859b5c61258af14abba5312c0e6201
(the v4.43 branch point), on Debian's torch 1.13.1 (CPU, float32). Sources as git archives under REF_SRC
(default /tmp/ref_src): diffusers-v0.29.2/src, huggingface_hub-v0.24.7/src,
transformers-d2c687b3f1859b5c61258af14abba5312c0e6201/src. The shims of shared/peers go first on sys.path.

Usage: /usr/bin/python3 tests/data/make_variants.py [name ...]   (all variants when no name is given)
Weights are random (N(0, 1/fan_in) matrices and kernels, 1 + 0.1 N norm scales, 0.1 N biases), fixed seeds.
"""
import copy
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHIMS = os.environ.get("A2A_PEER_SHIMS", os.path.join(ROOT, "..", "shared", "peers", "shims"))
SRC = os.environ.get("REF_SRC", "/tmp/ref_src")
TRANSFORMERS_COMMIT = "d2c687b3f1859b5c61258af14abba5312c0e6201"
sys.path[:0] = [SHIMS, f"{SHIMS}/dist/common", f"{SHIMS}/dist/hub-0.24.7", f"{SRC}/huggingface_hub-v0.24.7/src",
                f"{SRC}/diffusers-v0.29.2/src", f"{SRC}/transformers-{TRANSFORMERS_COMMIT}/src"]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

OUT = os.path.join(HERE, "variants")
TORCH = f"{torch.__version__} (Debian python3-torch 1.13.1, CPU)"
DIFFUSERS = {"version": "0.29.2", "git": "huggingface/diffusers tag v0.29.2", "name": "diffusers", "torch": TORCH}


def transformers_library():
    import transformers
    return {"version": transformers.__version__,
            "git": f"huggingface/transformers main @ {TRANSFORMERS_COMMIT} (the v4.43.0 release branch point)",
            "name": "transformers", "torch": TORCH}


def randomize(model, seed):
    """N(0, 1/fan_in) for matrices and kernels, 1 + 0.1 N for norm scales, 0.1 N for biases."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))


def to64(value):
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.double()
    return value


def tolerance(ref, ref64):
    m = float(ref.abs().max())
    return {"max_abs_ref": m, "fp32_vs_fp64_max_abs_diff": float((ref.double() - ref64).abs().max()),
            "suggested_atol": 1e-5 * max(1.0, m), "suggested_rtol": 1e-4}


def spec(tensors):
    out = {}
    for k, v in tensors.items():
        out[k] = {"dtype": {torch.float32: "float32", torch.int64: "int64"}[v.dtype], "shape": list(v.shape)}
    return out


def fresh(name):
    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    return folder


def write(folder, name, cls, load, library, model, inputs, outputs, calls, tol, notes, extra=None, extra_after=None):
    save_file({k: v.contiguous() for k, v in inputs.items()}, os.path.join(folder, "inputs.safetensors"),
              metadata={"format": "pt"})
    save_file({k: v.contiguous() for k, v in outputs.items()}, os.path.join(folder, "outputs.safetensors"),
              metadata={"format": "pt"})
    meta = {"fixture": name, "set": "variant", "library": library, "class": cls, "load": load,
            "files": sorted(os.listdir(folder)) + ["meta.json"]}
    meta["files"].sort()
    if model is not None:
        meta["num_parameters"] = sum(p.numel() for p in model.parameters())
        meta["state_dict_keys"] = len(model.state_dict())
        meta["dtype"] = "float32"
        meta["device"] = "cpu"
    meta.update(extra or {})
    meta["calls"] = calls
    meta["inputs"] = spec(inputs)
    meta["outputs"] = spec(outputs)
    meta["tolerance"] = tol
    meta["notes"] = notes
    meta.update(extra_after or {})
    with open(os.path.join(folder, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


# ---------------------------------------------------------------------------------------------------------------
def speecht5_hifigan_3up():
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig
    name = "speecht5_hifigan_3up"
    config = SpeechT5HifiGanConfig(model_in_dim=12, upsample_initial_channel=16, upsample_rates=[2, 3, 2],
                                   upsample_kernel_sizes=[4, 7, 4], resblock_kernel_sizes=[3, 5, 7],
                                   resblock_dilation_sizes=[[1, 2], [2, 6], [1, 3, 9]], leaky_relu_slope=0.2,
                                   normalize_before=True, sampling_rate=8000)
    torch.manual_seed(0)
    model = SpeechT5HifiGan(config).eval()
    randomize(model, 101)
    g = torch.Generator().manual_seed(102)
    with torch.no_grad():
        model.mean.copy_(0.5 * torch.randn(config.model_in_dim, generator=g))
        model.scale.copy_(0.5 + torch.rand(config.model_in_dim, generator=g))
    spectrogram = torch.randn(2, 9, config.model_in_dim, generator=g)
    folder = fresh(name)
    model.save_pretrained(folder, safe_serialization=True)
    with torch.no_grad():
        waveform = model(spectrogram)
        waveform64 = copy.deepcopy(model).double()(spectrogram.double())
    calls = [{"method": "forward", "args": {"spectrogram": "spectrogram"}, "kwargs": {},
              "outputs": {"waveform": "returned waveform [batch, T * prod(upsample_rates)]"}}]
    notes = ["spectrogram layout is [batch, frames, model_in_dim] (mel bins last), as AudioLDM passes it.",
             "No weight norm in the module (the state dict holds plain conv weights).",
             "Variant: three upsampling stages (one of odd rate 3), three residual kernels whose dilation lists "
             "differ in length and values, leaky_relu_slope 0.2, normalize_before with non-trivial mean/scale "
             "buffers stored in the weights file."]
    write(folder, name, "transformers.SpeechT5HifiGan", "SpeechT5HifiGan.from_pretrained(<this directory>)",
          transformers_library(), model, {"spectrogram": spectrogram}, {"waveform": waveform}, calls,
          {"waveform": tolerance(waveform, waveform64)}, notes)


# ---------------------------------------------------------------------------------------------------------------
def scheduler_euler_karras_leading():
    from diffusers import EulerDiscreteScheduler
    name = "scheduler_euler_karras_leading"
    steps = 9
    folder = fresh(name)
    EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                           use_karras_sigmas=True, timestep_spacing="leading",
                           steps_offset=1).save_pretrained(folder)
    scheduler = EulerDiscreteScheduler.from_pretrained(folder)
    scheduler.set_timesteps(steps)
    g = torch.Generator().manual_seed(2024)
    shape = (2, 3, 5, 4)
    inputs = {"initial_noise": torch.randn(shape, generator=g)}
    for i in range(len(scheduler.timesteps)):
        inputs[f"model_output_{i}"] = torch.randn(shape, generator=g)
    outputs = {"timesteps": scheduler.timesteps.clone(), "sigmas": scheduler.sigmas.clone(),
               "alphas_cumprod": scheduler.alphas_cumprod.clone()}
    seed = 777123
    gen = torch.Generator("cpu").manual_seed(seed)
    twin = torch.Generator("cpu").manual_seed(seed)
    sample = inputs["initial_noise"] * scheduler.init_noise_sigma
    outputs["sample_0"] = sample
    for i, t in enumerate(scheduler.timesteps):
        outputs[f"scaled_model_input_{i}"] = scheduler.scale_model_input(sample, t)
        # step() draws one noise tensor (unused with s_churn = 0); the twin generator records it.
        outputs[f"noise_{i}"] = torch.randn(shape, generator=twin, dtype=torch.float32)
        res = scheduler.step(inputs[f"model_output_{i}"], t, sample, generator=gen)
        sample = res.prev_sample
        outputs[f"prev_sample_{i}"] = sample
        outputs[f"pred_original_sample_{i}"] = res.pred_original_sample
    assert torch.equal(torch.randn(3, generator=gen), torch.randn(3, generator=twin))
    n = len(scheduler.timesteps)
    extra = {"num_inference_steps": steps, "num_steps_in_trajectory": n,
             "set_timesteps_call": f"scheduler.set_timesteps({steps})",
             "init_noise_sigma": float(scheduler.init_noise_sigma),
             "timesteps_list": [float(t) for t in scheduler.timesteps], "step_kwargs": {},
             "step_generator_seed": seed, "noise_drawn_at_steps": list(range(n)),
             "trajectory": {"sample_0": "initial_noise * init_noise_sigma",
                            "for i, t in enumerate(timesteps)": [
                                "scaled_model_input_i = scheduler.scale_model_input(sample, t)",
                                "res = scheduler.step(model_output_i, t, sample, generator=gen)",
                                "sample = prev_sample_i = res.prev_sample",
                                "pred_original_sample_i = res.pred_original_sample (when the scheduler returns it)"]}}
    tol = {"timesteps": "exact (int64) / 1e-4 abs (float32)", "sigmas": "rtol 1e-5",
           "samples": "atol 1e-5 * max(1, max|ref|)"}
    notes = ["model_output_i are fixed N(0,1) tensors standing in for the denoiser output at step i.",
             "The step generator is torch.Generator('cpu').manual_seed(step_generator_seed), created once and "
             "shared by all steps.",
             "step() draws a noise tensor from the generator but does not use it (s_churn = 0); recorded as "
             "noise_<i> only for completeness.",
             "Variant: Karras sigmas with leading spacing and steps_offset 1; the timesteps are fractional "
             "(_sigma_to_t interpolates the float32 log-sigma table) and are float32."]
    write(folder, name, "diffusers.EulerDiscreteScheduler",
          "EulerDiscreteScheduler.from_pretrained(<this directory>)  (reads scheduler_config.json)", DIFFUSERS,
          None, inputs, outputs, None, tol, notes, extra=extra)
    # Schedulers' meta.json has no calls list.
    path = os.path.join(folder, "meta.json")
    meta = json.load(open(path))
    meta.pop("calls")
    with open(path, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


# ---------------------------------------------------------------------------------------------------------------
def unet2d_condition_3level():
    from diffusers import UNet2DConditionModel
    name = "unet2d_condition_3level"
    torch.manual_seed(0)
    model = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(4, 8, 8), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=[1, 2, 4],
        cross_attention_dim=12, norm_num_groups=2).eval()
    randomize(model, 301)
    g = torch.Generator().manual_seed(302)
    inputs = {"sample": torch.randn(2, 4, 8, 12, generator=g), "timestep": torch.tensor(417, dtype=torch.int64),
              "encoder_hidden_states": torch.randn(2, 5, 12, generator=g)}
    folder = fresh(name)
    model.save_pretrained(folder)
    with torch.no_grad():
        out = model(inputs["sample"], inputs["timestep"], inputs["encoder_hidden_states"], return_dict=True).sample
        out64 = copy.deepcopy(model).double()(inputs["sample"].double(), inputs["timestep"],
                                               inputs["encoder_hidden_states"].double()).sample
    calls = [{"method": "forward",
              "args": {"sample": "sample", "timestep": "timestep", "encoder_hidden_states": "encoder_hidden_states"},
              "kwargs": {"return_dict": True}, "outputs": {"sample": "out.sample"}}]
    notes = ["timestep is a 0-d int64 tensor (as the pipelines pass scheduler.timesteps[i]); it is broadcast to the "
             "batch.",
             "Variant: three levels (two cross-attention levels), attention_head_dim a list of 3 (the head count per "
             "block in diffusers' naming), cross_attention_dim 12, non-square 8x12 latent."]
    write(folder, name, "diffusers.UNet2DConditionModel", "UNet2DConditionModel.from_pretrained(<this directory>)",
          DIFFUSERS, model, inputs, {"sample": out}, calls, {"sample": tolerance(out, out64)}, notes)


# ---------------------------------------------------------------------------------------------------------------
def llama_causal_lm_b2():
    from transformers import LlamaConfig, LlamaForCausalLM
    name = "llama_causal_lm_b2"
    max_new = 12
    for attempt in range(50):
        config = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=48,
                             rope_theta=500.0, rms_norm_eps=1e-5, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                             attn_implementation="eager")
        torch.manual_seed(attempt)
        model = LlamaForCausalLM(config).eval()
        randomize(model, 400 + attempt)
        g = torch.Generator().manual_seed(500 + attempt)
        input_ids = torch.randint(3, config.vocab_size, (2, 7), generator=g)
        with torch.no_grad():
            gen = model.generate(input_ids, max_new_tokens=max_new, do_sample=False, num_beams=1, eos_token_id=None,
                                 pad_token_id=0, attention_mask=torch.ones_like(input_ids), output_scores=True,
                                 return_dict_in_generate=True)
        margin = min(float((s.topk(2, dim=-1).values[:, 0] - s.topk(2, dim=-1).values[:, 1]).min())
                     for s in gen.scores)
        if margin >= 1e-3:
            break
    else:
        raise RuntimeError("no seed gives a greedy margin of 1e-3")
    generated = gen.sequences
    with torch.no_grad():
        # The cached generate equals a no-cache loop that re-runs the whole sequence each step.
        seq = input_ids
        for _ in range(max_new):
            seq = torch.cat([seq, model(seq).logits[:, -1].argmax(-1, keepdim=True)], 1)
        assert torch.equal(seq, generated)
        logits = model(input_ids, return_dict=True).logits
        logits64 = copy.deepcopy(model).double()(input_ids).logits
    folder = fresh(name)
    model.save_pretrained(folder, safe_serialization=True)
    calls = [{"method": "forward", "args": {"input_ids": "input_ids"}, "kwargs": {"return_dict": True},
              "outputs": {"logits": "out.logits (all positions)"}},
             {"method": "generate", "args": {"input_ids": "input_ids"},
              "kwargs": {"max_new_tokens": max_new, "do_sample": False, "num_beams": 1, "eos_token_id": None,
                         "pad_token_id": 0, "attention_mask": "ones_like(input_ids)"},
              "outputs": {"generated_ids": f"returned sequences: prompt followed by {max_new} greedy tokens"}}]
    notes = ["Greedy decoding: at each step the argmax of the last-position logits is appended; no eos stopping "
             "(eos_token_id=None), no repetition penalty or other logits processors.",
             f"Smallest top-1 minus top-2 logit gap over all generated tokens: {margin:.5f} (so an implementation "
             "within tolerance reproduces the ids exactly).",
             "generate() uses a KV cache; it was verified to equal a no-cache loop that re-runs the full sequence "
             "each step.",
             "Variant: grouped-query attention (4 query heads, 2 key/value heads), rope_theta 500, rms_norm_eps 1e-5, "
             "two prompts."]
    write(folder, name, "transformers.LlamaForCausalLM", "LlamaForCausalLM.from_pretrained(<this directory>)",
          transformers_library(), model, {"input_ids": input_ids},
          {"logits": logits, "generated_ids": generated}, calls,
          {"logits": tolerance(logits, logits64), "generated_ids": {"exact": True}}, notes,
          extra_after={"greedy_min_logit_margin": margin, "attn_implementation": "eager"})


# ---------------------------------------------------------------------------------------------------------------
def clip_text_model_v2():
    from transformers import CLIPTextConfig, CLIPTextModel
    name = "clip_text_model_v2"
    config = CLIPTextConfig(vocab_size=300, hidden_size=24, intermediate_size=40, num_hidden_layers=3,
                            num_attention_heads=3, max_position_embeddings=20, hidden_act="gelu", projection_dim=8,
                            bos_token_id=296, eos_token_id=297, pad_token_id=1)
    torch.manual_seed(0)
    model = CLIPTextModel(config).eval()
    randomize(model, 601)
    g = torch.Generator().manual_seed(602)
    length = 11
    rows = []
    # Words use ids above eos too (298, 299), so the legacy argmax rule would pick another position.
    for words in (4, 8):
        body = torch.randint(3, config.vocab_size, (words,), generator=g)
        body[body == config.eos_token_id] = 299
        body[body == config.bos_token_id] = 298
        body[0] = 299
        row = [config.bos_token_id] + body.tolist() + [config.eos_token_id]
        rows.append(row + [config.eos_token_id] * (length - len(row)))
    input_ids = torch.tensor(rows, dtype=torch.int64)
    with torch.no_grad():
        out = model(input_ids, output_hidden_states=True, return_dict=True)
        # transformers builds the causal mask with torch.full(finfo(dtype).min) in the default dtype.
        torch.set_default_dtype(torch.float64)
        out64 = copy.deepcopy(model).double()(input_ids, output_hidden_states=True, return_dict=True)
        torch.set_default_dtype(torch.float32)
    folder = fresh(name)
    model.save_pretrained(folder, safe_serialization=True)
    outputs = {"last_hidden_state": out.last_hidden_state, "pooler_output": out.pooler_output}
    refs64 = {"last_hidden_state": out64.last_hidden_state, "pooler_output": out64.pooler_output}
    fields = {"last_hidden_state": "out.last_hidden_state (after final_layer_norm)",
              "pooler_output": "out.pooler_output (final-layer-normed state at the eos position)"}
    for i, h in enumerate(out.hidden_states):
        outputs[f"hidden_states_{i}"] = h
        refs64[f"hidden_states_{i}"] = out64.hidden_states[i]
        fields[f"hidden_states_{i}"] = ("out.hidden_states[0] (embeddings; no final_layer_norm)" if i == 0 else
                                        f"out.hidden_states[{i}] (after layer {i}; no final_layer_norm)")
    calls = [{"method": "forward", "args": {"input_ids": "input_ids"},
              "kwargs": {"output_hidden_states": True, "return_dict": True}, "outputs": fields}]
    notes = ["No attention_mask is passed (as in Stable Diffusion pipelines): only the causal mask applies.",
             f"Token ids are synthetic (tiny vocab); bos={config.bos_token_id}, eos={config.eos_token_id}, rows "
             f"padded after eos with pad id {config.eos_token_id}. config.eos_token_id != 2 selects the new pooling "
             "path: pooled index = first position equal to eos_token_id. The rows hold ids above eos, so the legacy "
             "argmax rule would pool another position.",
             "Variant: gelu (erf) activation, 3 layers of width 24 with 3 heads, max_position_embeddings 20, "
             "sequences shorter than that, eos at different positions per row."]
    write(folder, name, "transformers.CLIPTextModel", "CLIPTextModel.from_pretrained(<this directory>)",
          transformers_library(), model, {"input_ids": input_ids}, outputs, calls,
          {k: tolerance(v, refs64[k]) for k, v in outputs.items()}, notes)


VARIANTS = {f.__name__: f for f in [speecht5_hifigan_3up, scheduler_euler_karras_leading, unet2d_condition_3level,
                                     llama_causal_lm_b2, clip_text_model_v2]}

if __name__ == "__main__":
    torch.set_grad_enabled(False)
    for variant in sys.argv[1:] or VARIANTS:
        VARIANTS[variant]()
        folder = os.path.join(OUT, variant)
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        print(f"{variant}: {size} bytes")
