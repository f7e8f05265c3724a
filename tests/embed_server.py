"""A real OpenAI-compatible /v1/embeddings server over the packaged MiniLM, for tests."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(embedder, model_name: str = "minilm-test") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            return

        def do_POST(self):
            if self.path.rstrip("/") != "/v1/embeddings":
                self.send_error(404)
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if body.get("model") != model_name:
                self._json(404, {"error": {"message": f"model {body.get('model')!r} not found"}})
                return
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            vectors = embedder.embed(inputs)
            self._json(200, {"object": "list", "model": model_name,
                             "data": [{"object": "embedding", "index": i, "embedding": v.tolist()}
                                      for i, v in reversed(list(enumerate(vectors)))],
                             "usage": {"prompt_tokens": 0, "total_tokens": 0}})

        def _json(self, code, payload):
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
