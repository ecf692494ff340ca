#!/bin/sh
# Build libgreet (static and shared) into a package directory:
#   <out>/include/greet.h  <out>/lib/libgreet.a  <out>/lib/libgreet.so
# usage: build.sh <out-dir>   (CC defaults to cc)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh <out-dir>}
cc=${CC:-cc}
mkdir -p "$out/include" "$out/lib"
obj=$(mktemp -d)
trap 'rm -rf "$obj"' EXIT
"$cc" -O2 -fPIC -I"$here/include" -c "$here/greet.c" -o "$obj/greet.o"
ar rcs "$out/lib/libgreet.a" "$obj/greet.o"
"$cc" -shared -o "$out/lib/libgreet.so" "$obj/greet.o"
cp "$here/include/greet.h" "$out/include/"
