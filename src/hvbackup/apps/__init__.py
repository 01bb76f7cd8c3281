"""Applications built on the engine: the lab demo (demo.py) and this machine's speed per step of
a backup (benchmark.py). They use the engine as any caller would; nothing below imports them."""
