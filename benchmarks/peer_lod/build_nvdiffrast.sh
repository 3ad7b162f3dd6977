#!/usr/bin/env bash
# Builds nvdiffrast's CUDA extension in place in .nvdiffrast/ (a git-ignored copy of
# NVlabs/nvdiffrast's source, which its licence does not let us ship: fetch it and carry
# it to the CUDA machine), for this GPU only (TORCH_CUDA_ARCH_LIST), unless it is built.
# Then `export PYTHONPATH=$PWD/.nvdiffrast:$PYTHONPATH` makes `import nvdiffrast.torch` work.
set -eu
cd "$(dirname "$0")/../../.nvdiffrast"
if ! ls _nvdiffrast_c*.so >/dev/null 2>&1; then
  arch=$(python3 -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')
  TORCH_CUDA_ARCH_LIST=$arch MAX_JOBS=${MAX_JOBS:-16} python3 setup.py build_ext --inplace && strip --strip-debug _nvdiffrast_c*.so
fi
# Its __init__ reads its version from the installed package's metadata: a built-in-place
# copy on PYTHONPATH carries that metadata itself.
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' pyproject.toml | head -1)
mkdir -p "nvdiffrast-${version:-0}.dist-info"
printf 'Metadata-Version: 2.1\nName: nvdiffrast\nVersion: %s\n' "${version:-0}" > "nvdiffrast-${version:-0}.dist-info/METADATA"
ls -la _nvdiffrast_c*.so
