#!/usr/bin/env bash
# Builds the relay's Lambda deployment package: a zip holding one executable,
# `bootstrap`, built from cmd/relay-lambda for the provided.al2023 runtime on arm64
# (Graviton), statically linked (CGO off), as the Terraform module expects.
#
#   terraform/build-lambda.sh                  # writes terraform/build/relay-lambda.zip
#   terraform/build-lambda.sh /tmp/relay.zip   # or anywhere else
#   GOARCH=amd64 terraform/build-lambda.sh     # for an x86_64 function (also set
#                                              # architectures in main.tf)
#
# The zip is reproducible (fixed timestamps and modes, -trimpath, no VCS stamp):
# the same source gives the same source_code_hash, so `terraform plan` shows no
# change after a rebuild of unchanged code.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="${1:-$here/build/relay-lambda.zip}"
arch="${GOARCH:-arm64}"
python="${PYTHON:-python3}"

command -v go >/dev/null || { echo "build-lambda.sh: go is not on PATH" >&2; exit 1; }
command -v "$python" >/dev/null || { echo "build-lambda.sh: $python is not on PATH (needed to write the zip)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "build-lambda.sh: compiling bootstrap for linux/$arch (CGO off)..." >&2
(cd "$root" && CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build \
  -trimpath -buildvcs=false -tags lambda.norpc -ldflags "-s -w -buildid=" \
  -o "$work/bootstrap" ./cmd/relay-lambda)

mkdir -p "$(dirname "$out")"
# Write next to the target and rename, so a failed build never leaves a
# half-written zip for terraform to upload.
tmp="$(mktemp "$(dirname "$out")/.relay-lambda.XXXXXX")"
trap 'rm -rf "$work" "$tmp"' EXIT
"$python" - "$work/bootstrap" "$tmp" <<'PY'
import sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
info.create_system = 3                   # Unix, so the mode below is honoured
info.external_attr = (0o100755 << 16)    # regular file, rwxr-xr-x: Lambda executes it
info.compress_type = zipfile.ZIP_DEFLATED
with open(src, "rb") as f, zipfile.ZipFile(dst, "w") as z:
    z.writestr(info, f.read(), compresslevel=9)
PY
chmod 0644 "$tmp"
mv "$tmp" "$out"
trap 'rm -rf "$work"' EXIT

size=$(wc -c <"$out" | tr -d ' ')
hash=$("$python" -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha256(open(sys.argv[1],"rb").read()).digest()).decode())' "$out")
echo "build-lambda.sh: wrote $out ($size bytes, source_code_hash $hash)" >&2
