#!/bin/sh
# Stands in for a real build (npm run build, collectstatic, ...).
set -eu
mkdir -p "$1"
echo "built at image build time" > "$1/build.txt"
