#!/usr/bin/env bash
# Make sure Graphviz's `dot` is on PATH: install it with apt when we are root, else explain.
set -u
if command -v dot >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Graphviz 'dot' not found: installing it with apt-get" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null
  command -v dot >/dev/null 2>&1 && exit 0
fi
echo "WARNING: Graphviz 'dot' is not installed; conversion works, but graph rendering and" >&2
echo "SVG/PNG export will not. Install it with your package manager (e.g. apt-get install graphviz)." >&2
exit 0
