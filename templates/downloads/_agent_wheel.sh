{#- The agent wheel the Portal serves, downloaded and checked against its SHA-256 before
    anything is installed (a bad download changes nothing). Shared by the Host agent's installer
    (downloads/install-linux.sh) and the OnDemand launcher (ondemand/launcher-linux.sh).
    Needs AGENT_WHEEL_URL, AGENT_WHEEL_FILE, AGENT_WHEEL_SHA256 and a fail function; sets
    AGENT_TARGET to the downloaded file. `python` runs the download (a shell word), `who` names
    the script in its messages. -#}
{% macro fetch_agent_wheel(python, who) -%}
  # Downloaded and checked before anything is installed: a bad download changes nothing.
  echo "Downloading the agent from $AGENT_WHEEL_URL"
  download_dir="$(mktemp -d)"
  trap 'rm -rf "$download_dir"' EXIT
  AGENT_TARGET="$download_dir/$AGENT_WHEEL_FILE"
  # Python (checked above) rather than curl or wget, which a minimal system may lack.
  {{ python }} - "$AGENT_WHEEL_URL" "$AGENT_TARGET" "$AGENT_WHEEL_SHA256" <<'PY' \
    || fail "the agent was not installed"
import hashlib, sys, urllib.request

url, path, expected = sys.argv[1:4]
digest = hashlib.sha256()
try:
    with urllib.request.urlopen(url, timeout=120) as answer, open(path, "wb") as out:
        for block in iter(lambda: answer.read(1 << 16), b""):
            digest.update(block)
            out.write(block)
except OSError as exc:
    sys.exit(f"{{ who }}: could not download {url}: {exc}")
if digest.hexdigest() != expected:
    sys.exit(f"{{ who }}: the download from {url} has SHA-256 "
             f"{digest.hexdigest()}, not the expected {expected}")
PY
{%- endmacro %}
