#!/usr/bin/env bash
# Rebuild every model artefact from the shared recordings, in order: train (teacher + KD student),
# quantize (every variant), export the C sources, regenerate the kernel test vectors, and print the
# quantization table. Deterministic for fixed seeds; needs ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
hil=.venv/bin/hil
$hil train --update-packaged
$hil quantize --update-packaged
$hil export --update-packaged
$hil gen vectors
$hil bench quant --out fixtures/models/quant_bench.json
