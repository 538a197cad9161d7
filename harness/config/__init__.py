"""What is under test, as data a team brings: the model descriptor, the boards file (TOML) and the
acceptance thresholds; validated, every error naming file, key and problem."""

from harness.config.descriptor import (
    PACKAGED_DESCRIPTOR,
    DescriptorError,
    ModelDescriptor,
    VariantSpec,
    load_descriptor,
)

__all__ = ["PACKAGED_DESCRIPTOR", "DescriptorError", "ModelDescriptor", "VariantSpec", "load_descriptor"]
