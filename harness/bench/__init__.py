"""Benchmark commands that print figures: `hil bench fw` (flash, RAM, instructions per inference,
per-kernel profile) and `hil bench link` (link faults). The KD and quantization benches live in
training/ and quant/."""
