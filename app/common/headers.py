"""Security headers on every response: a strict CSP with no inline script, no framing."""
from flask import Flask, request

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)

# The console's decoding worker compiles WebAssembly (libzstd, static/console/zstd.js), which
# needs 'wasm-unsafe-eval' (never 'unsafe-eval'). A dedicated worker runs under the policy of
# its own script's response, so only that response gets it; pages keep CSP.
WASM_SCRIPTS = frozenset({"console/worker.js"})
CSP_WASM = CSP.replace("script-src 'self';", "script-src 'self' 'wasm-unsafe-eval';")


def install_security_headers(app: Flask) -> None:
    @app.after_request
    def add_headers(response):
        wasm = request.endpoint == "static" and (request.view_args or {}).get("filename") in WASM_SCRIPTS
        response.headers.setdefault("Content-Security-Policy", CSP_WASM if wasm else CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if app.config["SESSION_COOKIE_SECURE"]:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
