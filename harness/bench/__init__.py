"""Benchmark commands that print figures: `hil bench fw` (flash, RAM, instructions and estimated
cycles per inference, per-kernel profile; the cycle model is cycles.py) and `hil bench link` (link
faults). The KD and quantization benches live in training/ and quant/."""
