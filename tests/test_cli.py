"""`python -m ingest` as a user runs it: exit codes, --json report, delete, list, check."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT, write_docs


def cli(*args):
    return subprocess.run([sys.executable, "-m", "ingest", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True)


def test_json_report_and_exit_status(tmp_path):
    docs = write_docs(tmp_path / "docs", 2)
    (tmp_path / "docs" / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<")
    (tmp_path / "docs" / "slides.key").write_bytes(b"PK\x03\x04rest")  # Keynote: not supported
    data = tmp_path / "data"
    out = cli(tmp_path / "docs", "--data-dir", data, "--json")
    assert out.returncode == 1, "a failed file makes the exit status non-zero"
    report = json.loads(out.stdout)
    by_name = {f["path"].rsplit("/", 1)[-1]: f for f in report["files"]}
    assert by_name["broken.pdf"]["status"] == "error" and by_name["broken.pdf"]["reason"] == "malformed"
    assert by_name["slides.key"]["reason"] == "unsupported_type"
    ok = by_name[docs[0].name]
    assert ok["status"] == "indexed" and ok["doc_id"] and ok["chunks"] >= 1 and ok["pages"] == 1
    assert report["index_version"] == 1 and report["summary"] == {"indexed": 2, "error": 2}
    assert "ingest" in out.stderr  # the progress bar goes to stderr

    again = cli(*docs, "--data-dir", data, "--json", "--quiet")
    assert again.returncode == 0
    assert {f["status"] for f in json.loads(again.stdout)["files"]} == {"unchanged"}

    listed = cli("--list", "--data-dir", data, "--json")
    assert len(json.loads(listed.stdout)["documents"]) == 2
    deleted = cli("--delete", docs[0], "--data-dir", data, "--json")
    assert deleted.returncode == 0 and json.loads(deleted.stdout)["index_version"] == 2
    check = cli("--check", "--data-dir", data, "--json")
    assert check.returncode == 0 and json.loads(check.stdout)["ok"] is True
    missing = cli("--delete", "nothing.md", "--data-dir", data)
    assert missing.returncode == 2 and "no indexed document" in missing.stderr


def test_if_empty_and_usage_errors(tmp_path):
    docs = write_docs(tmp_path / "docs", 1)
    data = tmp_path / "data"
    assert cli(docs[0], "--data-dir", data, "--quiet").returncode == 0
    other = write_docs(tmp_path / "other", 1, prefix="other")
    skipped = cli(other[0], "--data-dir", data, "--if-empty")
    assert skipped.returncode == 0 and "not empty" in skipped.stdout
    assert cli("--data-dir", data).returncode == 2  # nothing to do is a usage error
    missing = cli(tmp_path / "nope.md", "--data-dir", data, "--json", "--quiet")
    assert missing.returncode == 1 and "no such file" in json.loads(missing.stdout)["files"][0]["message"]
