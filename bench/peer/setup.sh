#!/usr/bin/env bash
# The NNgen environment for bench/peer/run_nngen.py: .venv-nngen/ beside .venv/, with NNgen and
# the versions it was measured with. Separate from the product's environment: NNgen pulls in
# onnx and its own code generators, which the compiler does not need.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m venv .venv-nngen
.venv-nngen/bin/pip install --quiet "nngen==1.3.4" "veriloggen==2.3.0" "pyverilog==1.3.0" \
    "numpy==2.4.6" "jinja2>=3,<4" "ply==3.11"
.venv-nngen/bin/python -c "import nngen; print('NNgen', nngen.__version__, 'ready in .venv-nngen/')"
