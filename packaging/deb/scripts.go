package main

// The maintainer scripts. They must work where systemd is not running (a
// container, a chroot, CI): every systemctl call is guarded, and nothing
// starts the service: the admin edits /etc/csta-bridge/config.yaml, then
// runs systemctl enable --now csta-bridge.

const postinst = `#!/bin/sh
set -e
if [ "$1" = configure ]; then
	if command -v systemd-sysusers >/dev/null 2>&1; then
		systemd-sysusers /usr/lib/sysusers.d/csta-bridge.conf
	elif ! getent passwd csta-bridge >/dev/null; then
		adduser --system --group --home /var/lib/csta-bridge --no-create-home --shell /usr/sbin/nologin csta-bridge
	fi
	if command -v systemd-tmpfiles >/dev/null 2>&1; then
		systemd-tmpfiles --create /usr/lib/tmpfiles.d/csta-bridge.conf
	else
		install -d -m 0750 -o csta-bridge -g csta-bridge /var/lib/csta-bridge
	fi
	# The config holds PBX and phone passwords: readable by the service only.
	chgrp csta-bridge /etc/csta-bridge /etc/csta-bridge/config.yaml
	chmod 0750 /etc/csta-bridge
	chmod 0640 /etc/csta-bridge/config.yaml
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		# An upgrade restarts a running bridge on the new binary; an
		# unconfigured one is never started.
		if [ -n "$2" ]; then
			systemctl try-restart csta-bridge.service >/dev/null || true
		fi
	fi
fi
exit 0
`

const prerm = `#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl stop csta-bridge.service >/dev/null 2>&1 || true
fi
exit 0
`

const postrm = `#!/bin/sh
set -e
if [ "$1" = remove ] || [ "$1" = purge ]; then
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
	fi
fi
if [ "$1" = purge ]; then
	if command -v systemctl >/dev/null 2>&1; then
		systemctl --no-reload disable csta-bridge.service >/dev/null 2>&1 || true
	fi
	# Stored settings and what dpkg leaves of /etc/csta-bridge (secrets,
	# certificates the admin added). The system user stays, as Debian does.
	rm -rf /var/lib/csta-bridge /etc/csta-bridge
fi
exit 0
`
