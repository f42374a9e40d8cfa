#!/bin/sh
# Builds bench/gpu/pack/ (git-ignored, ~30 MB): train-throughput.ts as one self-contained ES module with
# TensorFlow.js inside, Dawn's linux-x64 binary, libvulkan.so.1 and torch_models.py — what a machine without npm
# or internet (the device tool's) needs besides Node ≥ 20 and its GPU driver. Run it there with
#   bench/gpu/pack/run.sh [train-throughput options]
# (the device tool: carry bench/gpu/pack). Needs this checkout's node_modules (npm ci) and libvulkan1 here.
set -eu
cd "$(dirname "$0")/../.."
out=bench/gpu/pack
rm -rf "$out"
mkdir -p "$out/node_modules/webgpu/dist/linux-x64" "$out/node_modules/@tensorflow/tfjs-backend-webgpu"
# createRequire: bundled CommonJS modules call require() for Node built-ins.
npx esbuild bench/gpu/train-throughput.ts --bundle --platform=node --format=esm --target=node20 --log-level=warning \
  --outfile="$out/train-throughput.mjs" --external:webgpu --external:sharp --external:onnxruntime-node \
  --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
  --banner:js="import { createRequire as __softsegCreateRequire } from 'node:module'; const require = __softsegCreateRequire(import.meta.url);"
cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$out/node_modules/webgpu/"
cp node_modules/webgpu/dist/linux-x64/dawn.node "$out/node_modules/webgpu/dist/linux-x64/"
# Only found (never loaded) by the backend's installed-package check: the bundle has the code.
cp node_modules/@tensorflow/tfjs-backend-webgpu/package.json "$out/node_modules/@tensorflow/tfjs-backend-webgpu/"
cp bench/torch_models.py "$out/"
LDCONFIG=$(command -v ldconfig || echo /sbin/ldconfig)
libvulkan=$($LDCONFIG -p | sed -n 's/.*libvulkan\.so\.1 .*=> //p' | head -n 1)
[ -n "$libvulkan" ] || { echo "libvulkan.so.1 not found here: run scripts/install-system-deps.sh" >&2; exit 1; }
cp -L "$libvulkan" "$out/libvulkan.so.1"
cat > "$out/run.sh" <<'RUN'
#!/bin/sh
# The webgpu training-throughput bench on this machine's GPU (built by bench/gpu/pack.sh). Needs Node >= 20 and
# the GPU driver's Vulkan driver (NVIDIA: libGLX_nvidia.so.0 and its ICD file, present when the container has
# the "graphics" driver capability).
set -eu
cd "$(dirname "$0")"
LDCONFIG=$(command -v ldconfig || echo /sbin/ldconfig)
# The system's Vulkan loader when there is one, else the packed copy.
if ! $LDCONFIG -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
  export LD_LIBRARY_PATH="$PWD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "using the packed libvulkan.so.1" >&2
fi
# No NVIDIA ICD file but the driver's Vulkan library is there (containers without the graphics capability
# sometimes mount it anyway): describe it to the loader ourselves.
if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1; then
  lib=$($LDCONFIG -p 2>/dev/null | sed -n 's/.*libGLX_nvidia\.so\.0 .*=> //p' | head -n 1)
  if [ -n "$lib" ]; then
    printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$lib" > "${TMPDIR:-/tmp}/softseg_nvidia_icd.json"
    export VK_ICD_FILENAMES="${TMPDIR:-/tmp}/softseg_nvidia_icd.json"
    echo "no NVIDIA Vulkan ICD file: using $lib" >&2
  else
    echo "no NVIDIA Vulkan ICD file and no libGLX_nvidia.so.0: the driver's Vulkan part is not in this container (enable the graphics capability)" >&2
  fi
fi
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || true
node --version >&2
exec node train-throughput.mjs "$@"
RUN
chmod +x "$out/run.sh"
du -sh "$out"
