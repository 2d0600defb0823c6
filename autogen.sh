#!/bin/sh
# Generates configure and Makefile.in; build-aux/ is generated, not committed.
set -e
cd "$(dirname "$0")"
autoreconf -fi
