"""The Streamlit pages, run headless with AppTest against a real ingested index (no LLM)."""
from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from ingest.pipeline import ingest_paths
from tests.conftest import ROOT, index_plants, write_docs


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / name), default_timeout=120)


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_LLM_BASE_URL", "")
    return tmp_path / "data"


@pytest.fixture
def indexed(app_env, tmp_path):
    return index_plants(tmp_path / "docs", app_env)


def test_status_page_shows_the_index(tmp_path, settings, embedder, monkeypatch):
    ingest_paths(write_docs(tmp_path / "docs", 2), settings, embedder=embedder)
    monkeypatch.setenv("RAG_DATA_DIR", str(settings.data_dir))
    monkeypatch.chdir(ROOT)
    at = page("pages/status.py").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Documents"] == "2" and metrics["Index version"] == "1"
    assert len(at.dataframe) >= 1


def test_status_page_on_an_empty_index(app_env):
    at = page("pages/status.py").run()
    assert not at.exception
    assert any("No documents are indexed yet" in i.value for i in at.info)


def test_app_opens_on_chat_with_sidebar_status_and_degraded_notices(indexed):
    at = page("app.py").run()
    assert not at.exception
    assert at.title[0].value == "Chat with your documents"
    side = {m.label: m.value for m in at.sidebar.metric}
    assert side["Docs"] == "2" and side["Version"] == "1"
    notes = " ".join(i.value for i in at.sidebar.info)
    assert "No LLM configured" in notes and "No L2 reranker" in notes


def test_sidebar_counts_fit_their_column():
    from rag.status import short_count

    assert [short_count(n) for n in (0, 950, 1000, 1160, 9_960, 34_567, 1_234_567)] == \
        ["0", "950", "1k", "1.2k", "10k", "35k", "1.2M"]


def test_chat_answers_cites_and_opens_the_source_panel(indexed):
    at = page("pages/chat.py").run()
    at.chat_input[0].set_value("How often does the office ficus need watering?").run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "every Tuesday" in text
    cite = next(b for b in at.button if b.label.startswith("[") and "plants.md" in b.label)
    assert "verified" in cite.label
    cite.click().run()
    assert any(s.value.replace("\\", "").endswith("plants.md") for s in at.subheader)
    assert any("orange-background" in m.value and "every Tuesday" in m.value for m in at.markdown)
    # History stays; a follow-up is answered in context.
    at.chat_input[0].set_value("And the snake plant?").run()
    assert len(at.chat_message) == 4


def test_document_text_is_rendered_as_text_not_markup():
    from pages.common import plain

    # Every markdown/HTML-active character is escaped, the colon too (no autolinks, no :emoji:).
    assert plain("[click](http://evil) <b>x</b> **y**") == r"\[click\]\(http\://evil\) \<b\>x\</b\> \*\*y\*\*"


def test_library_page_lists_documents_reads_chunks_and_ranks_stages(indexed):
    at = page("pages/library.py").run()
    assert not at.exception
    docs = at.dataframe[0].value
    assert set(docs["document"]) == {"user-guide.md", "plants.md"} and docs["chunks"].sum() > 0
    at.selectbox[0].select(next(o for o in at.selectbox[0].options if o.startswith("plants.md"))).run()
    assert any("page 1" in c.value for c in at.caption)
    at.text_input[0].input("ficus watering").run()
    ranks = at.dataframe[-1].value
    assert {"bm25", "dense", "fused", "final"} <= set(ranks.columns) and ranks.iloc[0]["source"] == "plants.md"


def test_uploads_are_reported_by_file_name_and_refused_ones_not_kept(indexed):
    from rag.config import Settings
    from rag.service import Service

    svc = Service(Settings.load(data_dir=indexed))
    result = svc.ingest_uploads([("notes.md", b"# Notes\n\nThe boiler is serviced every October."),
                                 ("broken.pdf", b"%PDF-1.4\nnot a pdf")])
    rows = {r["file"]: r for r in result["files"]}
    assert rows["notes.md"]["status"] == "indexed" and rows["broken.pdf"]["reason"] == "malformed"
    assert rows["broken.pdf"]["message"].startswith("broken.pdf: ") and str(indexed) not in rows["broken.pdf"]["message"]
    assert (indexed / "uploads" / "notes.md").exists() and not (indexed / "uploads" / "broken.pdf").exists()

    at = page("pages/library.py")
    at.session_state["last_upload"] = result["files"]
    at.run()
    table = at.dataframe[0].value
    assert list(table.columns) == ["file", "status", "pages", "chunks", "reason", "message"]
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()  # empty cells, not "None"
    assert not any(str(indexed) in o for o in at.multiselect[0].options)  # names, not server paths


def documents(at: AppTest):
    return next(d.value for d in at.dataframe if "document" in d.value.columns)


def test_library_delete_removes_a_document(indexed):
    at = page("pages/library.py")
    at.session_state["last_upload"] = [{"file": "plants.md", "status": "indexed", "reason": None, "message": None,
                                        "pages": 1, "chunks": 1}]
    at.run()
    at.multiselect[0].select(next(o for o in at.multiselect[0].options if o.startswith("plants.md"))).run()
    next(b for b in at.button if b.label == "Delete").click().run()
    assert not at.exception
    # It asks first, and nothing is gone yet.
    assert any("will be removed from the index" in m.value for m in at.markdown)
    assert set(documents(at)["document"]) == {"user-guide.md", "plants.md"}
    [b for b in at.button if b.label == "Delete"][-1].click().run()
    assert not at.exception
    assert set(documents(at)["document"]) == {"user-guide.md"}
    assert any("Deleted 1 document(s): plants.md" in s.value for s in at.success)
    assert len(at.dataframe) == 1, "the upload table no longer lists the deleted file"
    assert {m.label: m.value for m in at.sidebar.metric}["Docs"] == "1"


def test_review_page_filters_exports_and_promotes_to_the_eval_set(indexed):
    from rag.config import Settings
    from rag.service import Service

    svc = Service(Settings.load(data_dir=indexed))
    a = svc.answerer.ask("How often does the office ficus need watering?")
    b = svc.answerer.ask("Who won the 2018 FIFA World Cup?")
    svc.feedback(a.id, rating=-1, comment="say the amount", correction="Every Tuesday, 400 millilitres.")
    at = page("pages/review.py").run()
    assert not at.exception
    assert "2 of 2" in at.caption[0].value
    rating = next(s for s in at.selectbox if s.label == "Rating")
    rating.select("thumbs down").run()
    assert "1 of 2" in at.caption[0].value
    abst = next(s for s in at.selectbox if s.label == "Abstained")
    rating = next(s for s in at.selectbox if s.label == "Rating")
    rating.select("any")
    abst.select("yes").run()
    assert at.dataframe[0].value["question"].tolist() == ["Who won the 2018 FIFA World Cup?"]
    abst = next(s for s in at.selectbox if s.label == "Abstained")
    abst.select("any").run()
    opener = next(s for s in at.selectbox if s.label == "Open an answer")
    opener.select(next(o for o in opener.options if "ficus" in o)).run()
    assert any("Citations" == s.value for s in at.subheader)
    next(btn for btn in at.button if btn.label == "Add to evaluation set").click().run()
    assert not at.exception and at.success
    case = json.loads((indexed / "eval" / "reviewed.jsonl").read_text().splitlines()[0])
    assert case["answer"] == "Every Tuesday, 400 millilitres." and case["source"] == "plants.md" and case["page"] == 1
    assert b.abstained


def test_service_refuses_hostile_upload_names_and_oversized_files(indexed):
    from rag.config import Settings
    from rag.service import Service, safe_filename

    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("..\\..\\boot.ini") == "boot.ini"
    svc = Service(Settings.load(data_dir=indexed, max_file_mb=0.001))
    out = svc.ingest_uploads([("../../../evil.md", b"# Evil\n\nA harmless note about tulips in spring."),
                              ("...", b"x"), ("big.md", b"x" * 5000), ("empty.md", b"")])
    by_file = {r["file"]: r for r in out["files"]}
    assert by_file["evil.md"]["status"] == "indexed"
    assert (indexed / "uploads" / "evil.md").exists() and not (indexed.parent / "evil.md").exists()
    assert by_file["big.md"]["reason"] == "too_large"
    assert by_file["empty.md"]["status"] == "error"
    assert any(r["reason"] == "bad_name" for r in out["files"])


def test_password_login_and_review_for_admins_only(indexed, monkeypatch):
    monkeypatch.setenv("RAG_APP_PASSWORD", "user-pw")
    monkeypatch.setenv("RAG_ADMIN_PASSWORD", "admin-pw")
    at = page("app.py").run()
    assert not at.exception and at.text_input[0].label == "Password" and not at.chat_input
    at.text_input[0].input("nope")
    at.button[0].click().run()
    assert any("Wrong password" in e.value for e in at.error)
    at.text_input[0].input("user-pw")
    at.button[0].click().run()
    assert at.session_state["role"] == "user" and at.title[0].value == "Chat with your documents"
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/review.py")  # not even registered for a user: Review is for admins only
    admin = page("app.py").run()
    admin.text_input[0].input("admin-pw")
    admin.button[0].click().run()
    assert admin.session_state["role"] == "admin"
    admin.switch_page("pages/review.py").run()
    assert admin.title[0].value == "Review answers"


def test_two_browser_sessions_never_see_each_others_chat(indexed):
    alice, bob = page("pages/chat.py").run(), page("pages/chat.py").run()
    alice.chat_input[0].set_value("How often does the office ficus need watering?").run()
    bob.run()
    assert len(alice.chat_message) == 2 and len(bob.chat_message) == 0
    assert alice.session_state["owner"] != bob.session_state["owner"]
    assert not [b for b in bob.sidebar.button if b.key and b.key.startswith("conv-")]


def test_a_conversation_survives_a_reload_and_can_be_renamed_and_deleted(indexed):
    first = page("pages/chat.py").run()
    first.chat_input[0].set_value("How often does the office ficus need watering?").run()
    me, cid = first.session_state["owner"], first.session_state["conversation"]

    # A reload: a new session of the same browser (same cookie), the URL naming the conversation.
    again = page("pages/chat.py")
    again.session_state["owner"] = me
    again.query_params["c"] = cid
    again.run()
    assert not again.exception and len(again.chat_message) == 2
    listed = [b for b in again.sidebar.button if b.key == f"conv-{cid}"]
    assert listed and listed[0].label == "How often does the office ficus need watering?"

    # Another browser cannot open it, even knowing its id.
    other = page("pages/chat.py")
    other.query_params["c"] = cid
    other.run()
    assert len(other.chat_message) == 0

    rename = next(t for t in again.text_input if t.label == "Name")
    rename.input("Ficus care")
    next(b for b in again.button if b.label == "Rename").click().run()
    assert [b.label for b in again.sidebar.button if b.key == f"conv-{cid}"] == ["Ficus care"]
    next(b for b in again.button if b.label == "Delete this conversation").click().run()
    assert not again.exception and len(again.chat_message) == 2, "asks first"
    next(b for b in again.button if b.label == "Delete").click().run()
    assert not [b for b in again.sidebar.button if b.key == f"conv-{cid}"] and len(again.chat_message) == 0
