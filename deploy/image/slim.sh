#!/bin/sh
# Slim a Debian root for a runtime image, in the layer that installed it: no package lists or
# caches, no documentation (copyright files stay), man pages, translations or log files, no
# Python parts a server never imports; dpkg keeps future installs just as slim (as Debian's own
# -slim images do). Run inside the root (chroot or a Dockerfile RUN). POSIX sh: dash runs it.
set -eu

cat >/etc/dpkg/dpkg.cfg.d/ocigate-slim <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
CFG
find /usr/share/doc -mindepth 1 -not -type d -not -name copyright -delete
find /usr/share/doc -mindepth 1 -type d -empty -delete
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/groff/* /usr/share/lintian/* /usr/share/locale/*

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/lib/dpkg/*-old
find /var/log -type f -delete

# the standard library's tests, docs for help() and the 2to3 converter
rm -rf /usr/lib/python3.*/test /usr/lib/python3.*/pydoc_data /usr/lib/python3.*/lib2to3
