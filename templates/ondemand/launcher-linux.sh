#!/usr/bin/env bash
# Tessera OnDemand for Linux: one remote support session with a technician of
#   {{ account_comment }}
#   Session key: {{ key_comment }} (valid until {{ expires_comment }}, for one connection)
#
# Run it as yourself, in a terminal of your desktop session:  bash {{ filename }}
#
# It downloads the Tessera OnDemand agent from the Portal (a wheel, checked against the SHA-256
# below), installs it into a Python virtual environment in ~/.cache/tessera-ondemand (or
# $XDG_CACHE_HOME/tessera-ondemand; its dependencies come from this machine's pip index),
# registers tessera-ondemand:// links with your desktop (so "Already installed? Open it" works
# next time), and starts the agent with this session's key. Nothing runs as root and nothing
# starts with your computer. The technician sees and controls nothing until you allow it in the
# agent's window; Ctrl+Shift+X or its Disconnect button ends the session at once.
#
# Environment (optional):
#   TESSERA_ONDEMAND_PYTHON     the Python (3.11 or later, with Tk) that makes the virtual
#                               environment, instead of python3
#   TESSERA_ONDEMAND_VENV_ARGS  more arguments for "python -m venv" (e.g. --system-site-packages)
#   TESSERA_ONDEMAND_PIP_ARGS   more arguments for "pip install" (e.g. "--no-index --no-deps" on a
#                               machine that provides the agent's dependencies some other way)
#   TESSERA_ONDEMAND_PIP_SPEC   what pip installs instead of the Portal's wheel (a file, URL or name)
#   TESSERA_ONDEMAND_NO_START   1: install and register only, do not start the agent
{% from "downloads/_agent_wheel.sh" import fetch_agent_wheel -%}
set -euo pipefail

PORTAL_URL={{ portal_url }}
SESSION_KEY={{ session_key }}
ACCOUNT_NAME={{ account_name }}
LOGO_URL={{ logo_url }}
# The agent this Portal serves, and the SHA-256 the download must have.
AGENT_WHEEL_URL={{ agent_wheel_url }}
AGENT_WHEEL_FILE={{ agent_wheel_file }}
AGENT_WHEEL_SHA256={{ agent_wheel_sha256 }}
# Set only when the Portal's administrator chose another pip requirement for the agent.
DEFAULT_PIP_SPEC={{ agent_pip_spec }}
AGENT_PIP_SPEC="${TESSERA_ONDEMAND_PIP_SPEC:-$DEFAULT_PIP_SPEC}"
PYTHON="${TESSERA_ONDEMAND_PYTHON:-python3}"
read -r -a VENV_ARGS <<<"${TESSERA_ONDEMAND_VENV_ARGS:-}"
read -r -a PIP_ARGS <<<"${TESSERA_ONDEMAND_PIP_ARGS:-}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/tessera-ondemand"
VENV="$CACHE/venv"
COMMAND="$VENV/bin/tessera-ondemand"
APPLICATIONS="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
DESKTOP_FILE="$APPLICATIONS/tessera-ondemand.desktop"

fail() {
  echo "Tessera OnDemand: $*" >&2
  exit 1
}

if [ "$(id -u)" -eq 0 ]; then
  echo "Tessera OnDemand: you are running this as root; it only needs your own user." >&2
fi
command -v "$PYTHON" >/dev/null 2>&1 || fail "python3 (3.11 or later) is required"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || fail "Python 3.11 or later is required"
# The agent asks you in a Tk window before the technician sees anything: no Tk, no session.
"$PYTHON" -c 'import tkinter' 2>/dev/null \
  || fail "Tk for Python is required: install it (Debian and Ubuntu: sudo apt install python3-tk; Fedora: sudo dnf install python3-tkinter) and run this again"
command -v xclip >/dev/null 2>&1 \
  || echo "Tessera OnDemand: without xclip (sudo apt install xclip) the clipboard is not shared with the technician" >&2

if [ -n "$AGENT_PIP_SPEC" ]; then
  AGENT_TARGET="$AGENT_PIP_SPEC"
else
  {{ fetch_agent_wheel('"$PYTHON"', 'Tessera OnDemand') }}
fi

echo "Installing the Tessera OnDemand agent into $VENV"
mkdir -p "$CACHE"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv ${VENV_ARGS[@]+"${VENV_ARGS[@]}"} "$VENV" \
    || fail "could not create a virtual environment (install your distribution's python3-venv package)"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade \
  ${PIP_ARGS[@]+"${PIP_ARGS[@]}"} "$AGENT_TARGET" \
  || fail "could not install the agent ($AGENT_TARGET)"

# The download is installed: remove it now (exec below skips the EXIT trap).
if [ -n "${download_dir:-}" ]; then
  rm -rf "$download_dir"
fi

[ -x "$COMMAND" ] || fail "the installed agent has no tessera-ondemand command ($COMMAND)"

# tessera-ondemand:// links open the agent: a desktop entry for the scheme, made the default
# handler where xdg-mime is there. A folder name the Exec line cannot quote simply is skipped.
case "$COMMAND" in
  *[\"\`\$\\%]* | *[[:space:]]*)
    echo "Tessera OnDemand: tessera-ondemand:// links were not registered (the folder $CACHE has characters a desktop entry cannot hold); the agent works without them" >&2 ;;
  *)
    mkdir -p "$APPLICATIONS"
    cat >"$DESKTOP_FILE" <<DESKTOP
[Desktop Entry]
Type=Application
Name=Tessera OnDemand
Comment=Remote support session with a technician
Exec=$COMMAND %u
Terminal=false
NoDisplay=true
MimeType=x-scheme-handler/tessera-ondemand;
DESKTOP
    if command -v xdg-mime >/dev/null 2>&1; then
      xdg-mime default tessera-ondemand.desktop x-scheme-handler/tessera-ondemand \
        || echo "Tessera OnDemand: xdg-mime could not register tessera-ondemand:// links" >&2
    fi
    if command -v update-desktop-database >/dev/null 2>&1; then
      update-desktop-database "$APPLICATIONS" >/dev/null 2>&1 || true
    fi ;;
esac

if [ "${TESSERA_ONDEMAND_NO_START:-}" = "1" ]; then
  echo "Installed. Start it with: $COMMAND --server $PORTAL_URL --key $SESSION_KEY"
  exit 0
fi
[ -n "${DISPLAY:-}" ] || fail "no desktop found (DISPLAY is not set): run this in a terminal of your desktop session"
echo "Starting Tessera OnDemand; session key $SESSION_KEY"
args=(--server "$PORTAL_URL" --key "$SESSION_KEY" --account-name "$ACCOUNT_NAME")
if [ -n "$LOGO_URL" ]; then
  args+=(--logo "$LOGO_URL")
fi
exec "$COMMAND" "${args[@]}"
