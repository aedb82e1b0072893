#!/usr/bin/env bash
# The CUDA checks of ragline in one command, on a machine with one NVIDIA GPU whose python3 already
# has a CUDA torch, peft, pyarrow, xxhash, filelock and pytest. Written for a GPU machine without
# network access: the Python packages it lacks travel as wheels in .whl/ (21 MiB; fetch them
# first, as below: two of them, antlr4-python3-runtime and rouge-score, exist on PyPI only as
# source, so pip builds their wheels here). Expected to take 3-4 minutes; not yet run on a GPU
# (none has been available). datasets 5.2 needs pyarrow >= 24: where the machine's is older, carry
# a pyarrow wheel too.
#
#   here, once:  echo /.whl/ >> .git/info/exclude
#                python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#                  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#                  --platform manylinux2014_x86_64 -d .whl \
#                  trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 annotated-types==0.8.0 \
#                  hydra-core==1.3.8 omegaconf==2.3.1 pydantic==2.14.4 pydantic-core==2.50.5 \
#                  typing-inspection==0.4.5 transformers==5.24.0 accelerate==1.16.0 \
#                  pytrec-eval-terrier==0.5.11 nltk==3.10.4 defusedxml==0.7.1
#                python3 -m pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3 rouge-score==0.1.2
#   there:       bash .ci/gpu.sh          (copy .whl/ along with the working tree)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [[ -d .whl ]]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 - <<'PY'
import torch, transformers, trl, peft
assert torch.cuda.is_available(), "torch sees no CUDA device"
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0),
      "bf16", torch.cuda.is_bf16_supported(), "| transformers", transformers.__version__,
      "trl", trl.__version__, "peft", peft.__version__)
import importlib.util as u
print("optional:", {m: u.find_spec(m) is not None for m in ("vllm", "faiss", "deepspeed")})
PY
out="${OUT:-/tmp/gpu-check}"; mkdir -p "$out"
# -m gpu replaces the addopts' "not gpu"; -p no:cacheprovider: no .pytest_cache in the tree
python3 -m pytest -q -ra -m gpu -p no:cacheprovider --timeout 300 \
  --junitxml "$out/gpu-junit.xml" \
  tests/test_gpu.py tests/test_gpu_executor.py \
  tests/stages/lib/train/test_sft.py::test_lora_sft_on_cuda_changes_weights \
  tests/test_dynamicrag_pipeline.py::test_dynamicrag_dag_on_one_gpu 2>&1 | tee "$out/gpu.log"
# A skip is not a pass: every CUDA test must have run (faiss-gpu is the one allowed skip).
python3 - "$out/gpu-junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
skipped = [c.get("name") for c in cases if c.find("skipped") is not None]
bad = [n for n in skipped if n != "test_faiss_gpu_when_available"]
print("skipped:", skipped)
sys.exit(f"gpu check: unexpected skips {bad}" if bad else 0)
PY
