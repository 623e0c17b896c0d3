"""minijepa: I-JEPA from scratch on Vision Transformers, readable like a textbook.

One module per idea of the paper:
    patches    patchify / unpatchify, patch embedding, 2-D sin-cos positions
    vit        attention, MLP, block, the ViT encoder and its presets
    masks      multi-block masks (and the ablation strategies), masking as index gathering
    predictor  the narrow ViT predictor with mask tokens
    ema        the EMA target encoder and its momentum schedule
    losses     the I-JEPA loss
    schedules  learning-rate and weight-decay schedules, AdamW parameter groups
    ijepa      the model and its objective for one batch
    data       the embedded procedural dataset, real datasets, photographs
"""

from .ema import ema_update, make_target_encoder, momentum_schedule
from .ijepa import IJEPA, IJEPAOutput
from .losses import ijepa_loss
from .masks import MaskBatch, gather_tokens
from .patches import PatchEmbed, patchify, sincos_2d, unpatchify
from .predictor import Predictor
from .schedules import cosine, param_groups, warmup_cosine
from .vit import VisionTransformer, ViTConfig, vit_base, vit_config, vit_huge, vit_large, vit_small, vit_tiny

__version__ = "0.1.0"
