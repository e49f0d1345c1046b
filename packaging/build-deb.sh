#!/usr/bin/env bash
# Builds the Debian package from packaging/debian: copies the source tree (the files git
# knows, or everything but build output), puts debian/ at its top, and runs
# dpkg-buildpackage -b -us -uc. The .debs (uploadfs, python3-uploadfs) land in OUTDIR
# (default build/deb).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/build/deb}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=$work/uploadfs-0.1.0
mkdir -p "$src" "$out"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$top" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 cp --parents -t "$src")
else
	(cd "$top" && tar --exclude='./build*' --exclude=./debian -cf - .) | tar -C "$src" -xf -
fi
cp -r "$top/packaging/debian" "$src/debian"
(cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -b -us -uc)
rm -f "$out"/uploadfs_*.deb "$out"/python3-uploadfs_*.deb
mv "$work"/uploadfs_*.deb "$work"/python3-uploadfs_*.deb "$out/"
ls "$out"/uploadfs_*.deb "$out"/python3-uploadfs_*.deb
