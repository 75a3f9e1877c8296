"""A Hugging Face ``transformers`` speech encoder (wav2vec 2.0, HuBERT, w2v-BERT 2.0) as a semiasr
encoder: inputs (B, S) waveforms or (B, T, F) features with lengths (B,) -> EncoderOutput(frames
(B, T', D), lengths (B,), hidden = [L tensors (B, T', D)], one per transformer layer).

    enc = HFEncoder.from_pretrained("facebook/wav2vec2-base")     # from the local HF cache only
    out = enc(waveforms, num_samples)

Use it as the frozen encoder of adapters and HFF: its blocks are ``HFEncoder.layers_pattern``
(``model.encoder.layers.*``). Needs the optional ``transformers`` package (the ``hf`` extra);
loading reads only local files unless ``local_files_only=False`` is passed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from semiasr.errors import CheckpointError, SemiasrError
from semiasr.nn import EncoderOutput

__all__ = ["HFEncoder"]


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise SemiasrError(
            "HFEncoder needs the optional package 'transformers' (pip install 'semiasr[hf]')"
        ) from e
    return transformers


class HFEncoder(nn.Module):
    """Wrap a ``transformers`` speech model (anything with ``output_hidden_states``)."""

    layers_pattern = "model.encoder.layers.*"

    def __init__(self, model: nn.Module, layerdrop: float = 0.0):
        super().__init__()
        self.model = model
        # LayerDrop skips whole layers in training mode; a skipped layer never runs the forward
        # hooks that feature fusion and per-layer adapters rely on (fusion would see fewer than
        # L layer outputs and stop). Off by default; the model's own value is replaced.
        config = getattr(model, "config", None)
        if config is not None and hasattr(config, "layerdrop"):
            config.layerdrop = float(layerdrop)
        for module in model.modules():  # some encoders copy it at construction (w2v-BERT)
            if isinstance(getattr(module, "layerdrop", None), float):
                module.layerdrop = float(layerdrop)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path, *, local_files_only: bool = True, **kwargs: Any
    ) -> HFEncoder:
        """Load with ``AutoModel.from_pretrained`` (a hub name or a local folder); ``layerdrop``
        (keyword, default 0.0) replaces the model's LayerDrop, see ``__init__``."""
        transformers = _transformers()
        layerdrop = float(kwargs.pop("layerdrop", 0.0))
        try:
            model = transformers.AutoModel.from_pretrained(
                str(name_or_path), local_files_only=local_files_only, **kwargs
            )
        except OSError as e:
            raise CheckpointError(f"{name_or_path}: cannot load a transformers model ({e})") from e
        return cls(model, layerdrop=layerdrop)

    @property
    def layers(self) -> nn.ModuleList:
        return self.model.encoder.layers

    @property
    def output_dim(self) -> int:
        return int(self.model.config.hidden_size)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Frames after the model's own subsampling for ``lengths`` input samples or frames."""
        fn = getattr(self.model, "_get_feat_extract_output_lengths", None)
        return (fn(lengths) if fn is not None else lengths).to(torch.long)

    def forward(self, inputs: Tensor, lengths: Tensor, return_hidden: bool = True) -> EncoderOutput:
        mask = torch.arange(inputs.shape[1], device=inputs.device)[None, :] < lengths[:, None]
        kwargs: dict[str, Any] = {self.model.main_input_name: inputs}
        if getattr(self.model.config, "feat_extract_norm", "layer") != "group":
            kwargs["attention_mask"] = mask.long()  # group-norm wav2vec 2.0 wants zero padding only
        out = self.model(**kwargs, output_hidden_states=True, return_dict=True)
        out_lengths = self.output_lengths(lengths)
        frames = out.last_hidden_state
        keep = torch.arange(frames.shape[1], device=frames.device)[None, :] < out_lengths[:, None]
        frames = frames.masked_fill(~keep[..., None], 0.0)
        hidden = list(out.hidden_states[1:]) if return_hidden else None
        return EncoderOutput(frames, out_lengths, hidden)
