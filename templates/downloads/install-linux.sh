#!/usr/bin/env bash
# Tessera agent installer for Linux (systemd).
#   Deployment package: {{ package_comment }}
#   Account: {{ company_comment }}
#
# Run it as root:  sudo bash tessera-agent-install-linux.sh
#
# It downloads the agent from the Portal (a wheel, checked against the SHA-256 below), installs
# it into a Python virtual environment in /opt/tessera-agent (its dependencies come from this
# machine's pip index), writes the Portal address and this package's enrolment key to
# /etc/tessera/agent.conf (readable by root only), and enables the tessera-agent systemd
# service, which enrols this device on its first start. Running it again updates the agent and
# the configuration.
#
# Environment (optional):
#   TESSERA_AGENT_PIP_SPEC  what pip installs instead of the Portal's wheel (a file, URL or name)
#   TESSERA_INSTALL_ROOT    install under this directory instead of / (for packaging and tests)
{% from "downloads/_agent_wheel.sh" import fetch_agent_wheel -%}
set -euo pipefail

PORTAL_URL={{ portal_url }}
ENROLLMENT_KEY={{ enrollment_key }}
# The agent this Portal serves, and the SHA-256 the download must have.
AGENT_WHEEL_URL={{ agent_wheel_url }}
AGENT_WHEEL_FILE={{ agent_wheel_file }}
AGENT_WHEEL_SHA256={{ agent_wheel_sha256 }}
# Set only when the Portal's administrator chose another pip requirement for the agent.
DEFAULT_PIP_SPEC={{ agent_pip_spec }}
AGENT_PIP_SPEC="${TESSERA_AGENT_PIP_SPEC:-$DEFAULT_PIP_SPEC}"
ROOT="${TESSERA_INSTALL_ROOT:-}"
PREFIX="$ROOT/opt/tessera-agent"
CONF_DIR="$ROOT/etc/tessera"
CONF_FILE="$CONF_DIR/agent.conf"
UNIT_DIR="$ROOT/etc/systemd/system"
UNIT_FILE="$UNIT_DIR/tessera-agent.service"

fail() {
  echo "Tessera agent installer: $*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || fail "run this installer as root, e.g. sudo bash $0"
command -v python3 >/dev/null 2>&1 || fail "python3 (3.11 or later) is required"
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || fail "Python 3.11 or later is required"
command -v systemctl >/dev/null 2>&1 || fail "systemd (systemctl) is required"

if [ -n "$AGENT_PIP_SPEC" ]; then
  AGENT_TARGET="$AGENT_PIP_SPEC"
else
  {{ fetch_agent_wheel('python3', 'Tessera agent installer') }}
fi

# What the agent uses from the desktop when it is there: Tk for the confirm-access prompt and
# xclip for the clipboard. Not under TESSERA_INSTALL_ROOT (packaging): the target system's job.
if [ -z "$ROOT" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "Installing python3-tk and xclip"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-tk xclip >/dev/null \
      || echo "Tessera agent installer: could not install python3-tk and xclip; without them the confirm-access prompt cannot be shown (sessions that need it are refused) and there is no clipboard" >&2
  else
    echo "Tessera agent installer: install Tk for Python 3 and xclip with your package manager: the confirm-access prompt and the clipboard need them" >&2
  fi
fi

echo "Installing the Tessera agent into $PREFIX"
python3 -m venv "$PREFIX" \
  || fail "could not create a virtual environment (install your distribution's python3-venv package)"
"$PREFIX/bin/pip" install --quiet --upgrade pip || fail "could not update pip"
# The agent's dependencies come from this machine's configured pip index.
"$PREFIX/bin/pip" install --quiet --upgrade "$AGENT_TARGET" \
  || fail "could not install the agent ($AGENT_TARGET)"

echo "Writing $CONF_FILE"
mkdir -p "$CONF_DIR"
chmod 700 "$CONF_DIR"
# The enrolment key is a credential: the file is created private, then moved into place.
conf_tmp="$(umask 077 && mktemp "$CONF_DIR/agent.conf.XXXXXX")"
printf '[agent]\nportal_url = %s\nenrollment_key = %s\n' "$PORTAL_URL" "$ENROLLMENT_KEY" >"$conf_tmp"
chmod 600 "$conf_tmp"
mv -f "$conf_tmp" "$CONF_FILE"

echo "Installing the tessera-agent service"
mkdir -p "$UNIT_DIR"
cat >"$UNIT_FILE" <<'UNIT'
[Unit]
Description=Tessera remote support agent
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart=/opt/tessera-agent/bin/tessera-agent --config /etc/tessera/agent.conf
Restart=always
RestartSec=5
# The agent exits 2 for an unusable configuration or enrolment key and 3 when the device was
# revoked: restarting would not help.
RestartPreventExitStatus=2 3

[Install]
WantedBy=multi-user.target
UNIT
chmod 644 "$UNIT_FILE"

if [ -z "$ROOT" ]; then
  systemctl daemon-reload
  systemctl enable tessera-agent.service
  # restart, not start: a re-install picks up the new agent and configuration.
  systemctl restart tessera-agent.service
  echo "The Tessera agent is installed and running; this device enrols with $PORTAL_URL."
else
  echo "Installed under $ROOT; enable tessera-agent.service there to start the agent."
fi
