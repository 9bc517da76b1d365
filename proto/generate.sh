#!/usr/bin/env bash
# Regenerates the _pb packages from proto/rotary/*.proto.
#
# The .proto files sit under proto/rotary/ so that their descriptor names ("rotary/client.proto")
# cannot collide in protobuf's global pool with the SDKs' own generated modules ("client.proto").
# tests/unit/protocol/test_generated.py checks that the committed modules match this script's output.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python}
gen() {  # gen <proto name> <output package dir> [grpc]
  local name=$1 out=$2 grpc=${3:-}
  local tmp; tmp=$(mktemp -d)
  local args=(-I "$root/proto" --python_out="$tmp" --pyi_out="$tmp")
  [ -n "$grpc" ] && args+=(--grpc_python_out="$tmp")
  "$py" -m grpc_tools.protoc "${args[@]}" "$root/proto/rotary/$name.proto"
  mkdir -p "$out"
  cp "$tmp"/rotary/"$name"_pb2*.py* "$out"/
  if [ -n "$grpc" ]; then  # the stub imports its messages as "rotary.<name>_pb2": point it at $out
    local package=${out#"$root/src/"}
    sed -i "s/^from rotary import ${name}_pb2 /from ${package//\//.} import ${name}_pb2 /" \
      "$out/${name}_pb2_grpc.py"
  fi
  touch "$out/__init__.py"
  rm -rf "$tmp"
}
gen client "$root/src/rotary/protocol/_pb"
gen control "$root/src/rotary/protocol/_pb"
gen unistream "$root/src/rotary/protocol/_pb"
gen api "$root/src/rotary/server/api/_pb" grpc
gen proxy "$root/src/rotary/server/proxy/_pb" grpc
