#!/usr/bin/env bash
# System packages the project needs beyond pip: Graphviz's `dot`, and the X11 / OpenGL libraries
# Qt's xcb platform plugin loads. Installed with apt when we are root; otherwise explained.
set -u
need=()
command -v dot >/dev/null 2>&1 || need+=(graphviz)
if command -v ldconfig >/dev/null 2>&1; then
  for lib in libxcb-cursor.so.0:libxcb-cursor0 libxkbcommon-x11.so.0:libxkbcommon-x11-0 \
             libEGL.so.1:libegl1 libGL.so.1:libgl1 libfontconfig.so.1:libfontconfig1 \
             libdbus-1.so.3:libdbus-1-3 libxcb-icccm.so.4:libxcb-icccm4 \
             libxcb-keysyms.so.1:libxcb-keysyms1 libxcb-image.so.0:libxcb-image0 \
             libxcb-render-util.so.0:libxcb-render-util0 libxcb-shape.so.0:libxcb-shape0 \
             libxcb-xinerama.so.0:libxcb-xinerama0 libxcb-randr.so.0:libxcb-randr0; do
    ldconfig -p | grep -q "${lib%%:*}" || need+=("${lib##*:}")
  done
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages with apt-get: ${need[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  command -v dot >/dev/null 2>&1 && exit 0
fi
if ! command -v dot >/dev/null 2>&1; then
  echo "WARNING: Graphviz 'dot' is not installed; conversion works, but the graph view and" >&2
  echo "SVG/PNG export do not. Install it with your package manager (apt-get install graphviz)." >&2
else
  echo "WARNING: missing system libraries for the Qt window: ${need[*]} (apt-get install them)." >&2
fi
exit 0
