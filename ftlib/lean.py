"""Three training speed levers TRL 1.16 leaves on the table when there is no GPU (benchmarks/sft_speed.py).

1. **Packed attention per example.** With `padding_free=True` TRL concatenates a batch into one row
   and passes `cu_seq_lens_q` (where each example starts). Flash-attention uses it; plain SDPA
   instead gets a block-diagonal (T x T) mask and computes attention over the whole row, T^2 work
   of which only the diagonal blocks count. `varlen_sdpa` runs SDPA causally on each example's own
   slice: same numbers, a fraction of the attention work. Registered as attention implementation
   `"sdpa_varlen"`; without `cu_seq_lens_q` (generation, padded batches) it is plain SDPA.
2. **A loss on the completion positions only.** TRL's fused LM head scores every position on
   non-Triton devices, prompt included, recomputes the (positions x 49k vocabulary) projection in the
   backward pass and computes entropy and top-1 accuracy on every step. `LeanLossMixin.compute_loss`
   asks the model for the logits of the positions that have a label (`logits_to_keep`), takes the
   cross-entropy and logs token accuracy from the same logits: the same loss value, less work.

3. **Compiled decoder layers.** `compile_layers` compiles every decoder layer in place with
   inductor (regional compilation: the layers share one compiled code, so it builds once): the norms,
   rotary embedding, SiLU gate and residual adds fuse into a few kernels instead of dozens of ops.

1 and 2 are checked against TRL's own path, 3 against the eager layers, in tests/test_lean.py (same loss and
gradients).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

VARLEN = "sdpa_varlen"


def varlen_sdpa(module, query, key, value, attention_mask, cu_seq_lens_q=None, dropout=0.0,
                scaling=None, **kwargs):
    """Attention of a padding-free row, example by example ([1, heads, T, dim] in, [1, T, heads, dim] out)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if cu_seq_lens_q is None or query.shape[0] != 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    if key.shape[1] != query.shape[1]:  # grouped-query attention: repeat the key/value heads
        repeats = query.shape[1] // key.shape[1]
        key, value = key.repeat_interleave(repeats, 1), value.repeat_interleave(repeats, 1)
    bounds = cu_seq_lens_q.tolist()
    p = dropout if module.training else 0.0
    parts = [F.scaled_dot_product_attention(query[:, :, s:e], key[:, :, s:e], value[:, :, s:e],
                                            is_causal=True, dropout_p=p, scale=scaling)
             for s, e in zip(bounds[:-1], bounds[1:])]
    return torch.cat(parts, dim=2).transpose(1, 2).contiguous(), None


def register() -> str:
    """Make `"sdpa_varlen"` a transformers attention implementation (its masks are SDPA's); idempotent."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(VARLEN, varlen_sdpa)
    AttentionMaskInterface.register(VARLEN, sdpa_mask)
    return VARLEN


def use_varlen(model) -> bool:
    """Switch a model from SDPA to per-example packed attention; False (unchanged) for other kernels."""
    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    model.set_attn_implementation(register())
    return True


def restore_sdpa(model) -> None:
    """Back to plain SDPA (before saving, so a checkpoint never names the custom kernel)."""
    model = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft
    if getattr(model.config, "_attn_implementation", None) == VARLEN:
        model.set_attn_implementation("sdpa")


def decoder_layers(model) -> torch.nn.ModuleList | None:
    """The model's stack of decoder layers (the first ModuleList of 2+ modules of one class), or None."""
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > 1 and len({type(m) for m in module}) == 1:
            return module
    return None


@functools.cache
def can_compile() -> bool:
    """Whether inductor's CPU backend can build here: it needs a C++ compiler (g++ or $CXX)."""
    try:
        from torch._inductor import cpp_builder  # the search torch.compile itself makes

        return bool(cpp_builder.get_cpp_compiler())
    except Exception:  # InvalidCxxCompiler, or a torch without inductor: run eagerly
        return False


def compile_layers(model) -> bool:
    """Compile each decoder layer in place (`nn.Module.compile`: checkpoints keep their names); False
    (unchanged) when the model has no stack of identical layers."""
    layers = decoder_layers(model)
    if layers is None:
        return False
    for layer in layers:
        # dynamic: a padding-free row's length changes every step; one compiled code serves them all
        layer.compile(dynamic=True)
    return True


class LeanLossMixin:
    """compute_loss for an SFTTrainer subclass: logits of labelled positions only, no entropy.

    Falls back to TRL's own loss for everything this does not cover (other loss types, label
    smoothing, MoE auxiliary loss, a custom loss function, callers that want the outputs).
    """

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if (return_outputs or self.aux_loss_enabled or self.compute_loss_func is not None
                or self.label_smoother is not None or self.args.loss_type != "nll"):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        mode = "train" if self.model.training else "eval"
        labels = inputs["labels"][:, 1:]  # position i predicts token i + 1
        keep = (labels != -100).any(dim=0).nonzero().squeeze(1)
        model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
        logits = model(**model_inputs, use_cache=False, logits_to_keep=keep).logits
        target = labels[:, keep]
        loss = F.cross_entropy(logits.flatten(0, 1).float(), target.flatten(), ignore_index=-100,
                               reduction="sum")
        valid = target != -100
        n_tokens = valid.sum() if num_items_in_batch is None else num_items_in_batch
        loss = loss / torch.as_tensor(n_tokens).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())  # as TRL: DDP averages
        with torch.no_grad():
            correct = ((logits.argmax(-1) == target) & valid).sum()
            n_valid = self.accelerator.gather_for_metrics(valid.sum()).sum()
            n_correct = self.accelerator.gather_for_metrics(correct).sum()
            self._metrics[mode]["mean_token_accuracy"].append((n_correct / n_valid.clamp(min=1)).item())
        if mode == "train":
            n_in = (inputs["attention_mask"].sum() if "attention_mask" in inputs
                    else torch.tensor(inputs["position_ids"].size(1), device=inputs["position_ids"].device))
            self._total_train_tokens += self.accelerator.gather_for_metrics(n_in).sum().item() // self._tp_size
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        return loss


@functools.cache
def trainer_class(lean_loss: bool):
    """SFTTrainer, or its subclass with the lean loss."""
    from trl import SFTTrainer

    if not lean_loss:
        return SFTTrainer
    return type("LeanSFTTrainer", (LeanLossMixin, SFTTrainer), {"__doc__": LeanLossMixin.__doc__})
