#!/usr/bin/env bash
# Every GPU figure in one run, as one markdown table (docs/gpu.md says how to read it).
#   benchmarks/gpu.sh                 # on a GPU machine: writes docs/gpu-results.md too
#   benchmarks/gpu.sh --quick         # reduced, on the CPU: proves the script runs
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || python=python3
out=docs/gpu-results.md
case " $* " in *" --quick "*) out=gpu-bench-quick.md ;; esac
exec "$python" -m server.cli bench gpu --out "$out" "$@"
