"""FANet in PyTorch, faithful to the authors' released code (host side)."""

from fanet.model.attention import FastAttention, FastAttentionModule, SelfAttention
from fanet.model.checkpoint import (
    infer_arch,
    infer_num_classes,
    load_checkpoint,
    load_imagenet_backbone,
    model_from_checkpoint,
    read_state_dict,
)
from fanet.model.fanet import FANet
from fanet.model.fuse import fuse_bn
from fanet.model.macs import PAPER_TABLE_I, attention_macs, count_macs, count_parameters
from fanet.model.registry import create_model, list_models, random_model

__all__ = [
    "FANet",
    "FastAttention",
    "FastAttentionModule",
    "PAPER_TABLE_I",
    "SelfAttention",
    "attention_macs",
    "count_macs",
    "count_parameters",
    "create_model",
    "fuse_bn",
    "infer_arch",
    "infer_num_classes",
    "list_models",
    "load_checkpoint",
    "load_imagenet_backbone",
    "model_from_checkpoint",
    "random_model",
    "read_state_dict",
]
