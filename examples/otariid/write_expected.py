"""Write an expected-outputs file (harness.reference.EXPECTED_ARRAYS) for the fixture windows, as a
team's own toolchain would: here the integer outputs of this folder's quantized student, computed
with the harness's integer reference.

    python examples/otariid/write_expected.py OUT.npz [--variant w8a16]

Then point the variant at it in a copy of otariid.toml: ``reference = "expected"``, ``file = "OUT.npz"``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from harness.config.descriptor import load_descriptor
from harness.data.fixtures import load_fixtures
from harness.quant.intref import model_forward_q
from harness.quant.model_io import load_quant, quant_model_hash

HERE = Path(__file__).resolve().parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="the .npz file to write")
    p.add_argument("--variant", default="w8a16", help="an integer variant of otariid.toml (default %(default)s)")
    args = p.parse_args()
    model = load_descriptor(HERE / "otariid.toml")
    fx = load_fixtures(model.fixtures_dir, model)
    m = load_quant(model.reference_path(args.variant))
    scores, classes = model_forward_q(m, fx.calibrated_x())
    ws = fx.windows
    np.savez(args.out, bout=ws.bout, start=ws.start, classes=classes.astype(np.int64),
             scores=np.asarray(scores, dtype=np.int64), out_frac=np.int64(m.f_out),
             model_hash=np.str_(quant_model_hash(m).hex()))
    print(f"wrote {args.out}: {len(ws)} windows, {args.variant}, model hash {quant_model_hash(m).hex()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
