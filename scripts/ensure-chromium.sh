#!/usr/bin/env bash
# Best effort: the browser tests need Debian's chromium at /usr/bin/chromium.
# Without it they fail under CI (CI=true) and are skipped with a message elsewhere.
set -u
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing chromium for the browser tests (apt-get)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null \
    && exit 0
fi
echo "note: /usr/bin/chromium is missing; browser tests will be skipped (install Debian's 'chromium' package)."
