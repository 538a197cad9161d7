"""Declarative configuration a team brings: the model descriptor and the boards file (TOML)."""

from harness.config.descriptor import (
    PACKAGED_DESCRIPTOR,
    DescriptorError,
    ModelDescriptor,
    VariantSpec,
    load_descriptor,
)

__all__ = ["PACKAGED_DESCRIPTOR", "DescriptorError", "ModelDescriptor", "VariantSpec", "load_descriptor"]
