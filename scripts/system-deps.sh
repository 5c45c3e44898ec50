#!/usr/bin/env bash
# Installs the Debian packages the project needs, only when missing (Debian 12 and 13).
#   scripts/system-deps.sh            GeoDjango libraries (GDAL, SpatiaLite) + python3-venv
#   scripts/system-deps.sh --browser  ... plus Debian's chromium for the browser tests
#   scripts/system-deps.sh --postgis  ... plus PostGIS for the running PostgreSQL major version
set -euo pipefail

want=()
missing() { ! dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

apt_updated=0
apt_update() {
  if [ "$apt_updated" = 0 ]; then run apt-get update -qq; apt_updated=1; fi
}
run() {
  if [ "$(id -u)" = 0 ]; then "$@"; else echo "(using sudo) $*" >&2; sudo "$@"; fi
}

# The libgdalNN that Debian's gdal-bin depends on: libgdal32 on Debian 12, libgdal36 on 13.
gdal_pkg() {
  local pkg
  pkg=$(apt-cache depends gdal-bin 2>/dev/null | grep -o 'libgdal[0-9]\+' | head -n1 || true)
  if [ -z "$pkg" ]; then apt_update; pkg=$(apt-cache depends gdal-bin | grep -o 'libgdal[0-9]\+' | head -n1); fi
  echo "$pkg"
}

if ! ls /usr/lib/*/libgdal.so.* >/dev/null 2>&1; then want+=("$(gdal_pkg)"); fi
missing libsqlite3-mod-spatialite && want+=(libsqlite3-mod-spatialite)
missing python3-venv && want+=(python3-venv)

for arg in "$@"; do
  case "$arg" in
    --browser)
      [ -x /usr/bin/chromium ] || want+=(chromium)
      missing fonts-noto-cjk && want+=(fonts-noto-cjk)
      missing fonts-noto-color-emoji && want+=(fonts-noto-color-emoji) ;;
    --postgis)
      major=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -n1)
      if [ -n "$major" ] && missing "postgresql-$major-postgis-3"; then want+=("postgresql-$major-postgis-3"); fi ;;
  esac
done

if [ "${#want[@]}" -gt 0 ]; then
  echo "Installing system packages: ${want[*]}" >&2
  apt_update
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi
