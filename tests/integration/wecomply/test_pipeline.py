"""The pure parts of WeComply: extraction, chunking, terms, ranking and compliance rules.

No servers: these pin the behaviour the HTTP tests rely on, with exact values.
"""

from __future__ import annotations

import io
import itertools
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from core.kernel.errors import Problem
from core.tenancy.models import (
    Account,
    AccountContext,
    Membership,
    MembershipKind,
    Principal,
    Role,
    Scope,
    Solution,
)
from plugins.wecomply import compliance
from plugins.wecomply import extract as extract_module
from plugins.wecomply.chunking import chunk_text, sections
from plugins.wecomply.extract import extract
from plugins.wecomply.models import Policy
from plugins.wecomply.retrieval import rank
from plugins.wecomply.service import ModelOutputError, _parse_answer
from plugins.wecomply.text import stem, term_set, tokens
from tests.integration.wecomply.support import (
    DOCX,
    MARKDOWN,
    PDF,
    PNG,
    TEXT,
    docx_bytes,
    pdf_bytes,
)

# -- extraction -----------------------------------------------------------------------------


def test_extracts_text_markdown_pdf_and_docx() -> None:
    assert extract("\ufeffHello\r\nworld\x00!".encode(), TEXT).text == "Hello\nworld !"
    assert extract(b"# Title\n\n\n\n\nBody", MARKDOWN).text == "# Title\n\nBody"
    pdf = extract(pdf_bytes(["Travel policy", "Economy class only."], ["Second page."]), PDF)
    assert (pdf.extractor, pdf.pages) == ("pdf", 2)
    assert pdf.text == "Travel policy\nEconomy class only.\n\nSecond page."
    word = extract(docx_bytes([("h1", "Security"), ("p", "Lock your screen."),
                               ("h2", "Passwords"), ("p", "Rotate every 90 days.")],
                              table=[["Role", "Access"], ["Admin", "Full"]]), DOCX)
    assert word.text == ("# Security\n\nLock your screen.\n\n## Passwords\n\n"
                         "Rotate every 90 days.\n\nRole | Access\nAdmin | Full")


@pytest.mark.parametrize(("data", "content_type", "status", "slug"), [
    (b"\x89PNG\r\n\x1a\n....", PNG, 415, "unsupported-source-type"),
    (b"x", "application/zip", 415, "unsupported-source-type"),
    (b"  \n\n\t ", TEXT, 422, "empty-source"),
    (b"--- ... !!!", MARKDOWN, 422, "empty-source"),
    (b"\xff\xfe\x00bad", TEXT, 422, "unreadable-source"),
    (b"%PDF-1.4 garbage", PDF, 422, "unreadable-source"),
    (pdf_bytes([]), PDF, 422, "empty-source"),
    (b"PK\x03\x04 not a zip", DOCX, 422, "unreadable-source"),
])
def test_unusable_files_are_clear_problems(data: bytes, content_type: str, status: int,
                                           slug: str) -> None:
    with pytest.raises(Problem) as caught:
        extract(data, content_type)
    assert (caught.value.status, caught.value.type_slug) == (status, slug)
    assert caught.value.detail


def test_a_zip_that_is_not_word_and_a_zip_bomb_are_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.xml", b"<a/>")
    with pytest.raises(Problem) as caught:
        extract(buffer.getvalue(), DOCX)
    assert caught.value.type_slug == "unreadable-source"

    monkeypatch.setattr(extract_module, "MAX_DOCX_UNPACKED", 2 * 1024 * 1024)  # keep it quick
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * (3 * 1024 * 1024))
    assert len(bomb.getvalue()) < 20 * 1024
    with pytest.raises(Problem) as caught:
        extract(bomb.getvalue(), DOCX)
    assert caught.value.type_slug == "source-too-large"


# -- chunking -------------------------------------------------------------------------------


def test_headings_start_chunks_and_carry_their_path() -> None:
    text = "Preface.\n\n# Handbook\n\nIntro.\n\n## Remote work\n\nThree days.\n\n# Annex\n\nA."
    assert list(sections(text)) == [("", ["Preface."]), ("Handbook", ["Intro."]),
                                    ("Handbook › Remote work", ["Three days."]),
                                    ("Annex", ["A."])]
    chunks = chunk_text(text)
    assert [(c.ordinal, c.heading, c.text) for c in chunks] == [
        (0, "", "Preface."), (1, "Handbook", "Intro."),
        (2, "Handbook › Remote work", "Three days."), (3, "Annex", "A.")]


def test_long_sections_are_capped_and_overlap_by_whole_sentences() -> None:
    sentences = [f"Rule {i} applies to everyone." for i in range(60)]
    chunks = chunk_text("# Rules\n\n" + " ".join(sentences), max_chars=300, overlap=80)
    assert len(chunks) > 5
    assert all(len(c.text) <= 300 and c.heading == "Rules" for c in chunks)
    for before, after in itertools.pairwise(chunks):
        first = after.text.split(". ")[0] + "."
        assert first in before.text  # the next chunk starts inside the previous one
    joined = " ".join(c.text for c in chunks)
    assert all(s in joined for s in sentences)


def test_paragraphs_pack_and_giant_words_are_cut() -> None:
    paragraphs = ["Alpha paragraph." * 3, "Beta paragraph." * 3, "Gamma." * 2]
    chunks = chunk_text("\n\n".join(paragraphs), max_chars=100, overlap=0)
    assert [c.text for c in chunks] == ["\n\n".join(paragraphs[:2]), paragraphs[2]]
    giant = chunk_text("x" * 1000, max_chars=300, overlap=50)
    assert all(len(c.text) <= 300 for c in giant) and "".join(c.text for c in giant)


# -- terms and ranking -------------------------------------------------------------------------


def test_terms_fold_case_accents_stop_words_and_suffixes() -> None:
    assert tokens("How many days can I work REMOTELY?") == ["day", "work", "remot"]
    assert tokens("Résumé policies; passwords required") == ["resum", "policy", "password",
                                                             "requir"]
    assert stem("working") == stem("worked") == stem("works") == "work"
    assert term_set("a b 7 data data Data") == ["7", "data"]


def test_rank_prefers_coverage_and_drops_common_word_matches() -> None:
    chunks = {
        "remote": tokens("Staff may work remotely up to three days per week (policy)."),
        "password": tokens("Passwords must be rotated every 90 days under this policy."),
        "policy": tokens("This policy applies to all staff."),
    }
    df = {"day": 2, "work": 1, "remot": 1, "policy": 3, "parking": 0, "visitor": 0}
    hits = rank(tokens("How many days can I work remotely?"), list(chunks.items()), df=df,
                n_docs=3)
    assert hits[0].key == "remote" and hits[0].coverage == 1.0
    nothing = rank(tokens("What is the parking policy for visitors?"), list(chunks.items()),
                   df=df, n_docs=3)
    assert nothing == []


# -- the model's answer -------------------------------------------------------------------------


def test_model_answers_are_checked() -> None:
    assert _parse_answer({"found": True, "answer": " Yes [1]. ", "citations": [1, "[2]", 9, 1]},
                         2) == (True, "Yes [1].", [1, 2])
    assert _parse_answer({"found": False, "answer": "", "citations": []}, 2) == (False, "", [])
    for bad in ([1, 2], {"answer": "x"}, {"found": "yes", "answer": "x", "citations": []},
                {"found": True, "answer": "x", "citations": [7]},
                {"found": True, "answer": " ", "citations": [1]}):
        with pytest.raises(ModelOutputError):
            _parse_answer(bad, 2)


# -- compliance rules ---------------------------------------------------------------------------

SOL, ACC, GRP = "s" * 24, "a" * 24, "g" * 24


def _m(kind: MembershipKind, role: Role, group: str | None = None) -> Membership:
    return Membership(kind=kind, role=role, solution_id=SOL, account_id=ACC, group_id=group)


def _policy(scope: Scope, due: datetime | None = None, group: str | None = None) -> Policy:
    return Policy(id=scope.value, solution_id=SOL, account_id=ACC, owner_id="admin",
                  scope=scope, group_id=group, title="P", current_version=2,
                  current_due_at=due)


def test_audience_status_and_overdue() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    members = [
        compliance.Member("admin", None, (_m(MembershipKind.ACCOUNT, Role.ACCOUNT_ADMIN),)),
        compliance.Member("member", None, (_m(MembershipKind.ACCOUNT, Role.MEMBER),)),
        compliance.Member("viewer", None, (_m(MembershipKind.ACCOUNT, Role.VIEWER),
                                           _m(MembershipKind.GROUP, Role.MEMBER, GRP))),
        compliance.Member("grp", None, (_m(MembershipKind.ACCOUNT, Role.MEMBER),
                                        _m(MembershipKind.GROUP, Role.MEMBER, GRP))),
    ]
    account = _policy(Scope.ACCOUNT, due=now - timedelta(days=1))
    group = _policy(Scope.GROUP, due=now + timedelta(days=1), group=GRP)
    items = compliance.obligations([account, group], members,
                                   {"account": {"admin"}, "group": set()}, now=now)
    owed = {(o.user_id, o.policy_id): (o.acknowledged, o.overdue) for o in items}
    assert owed == {("admin", "account"): (True, False), ("member", "account"): (False, True),
                    ("grp", "account"): (False, True), ("grp", "group"): (False, False)}
    assert compliance.summary(items) == {
        "obligations": 4, "acknowledged": 1, "pending": 3, "overdue": 2,
        "share_acknowledged": 0.25, "members": 3, "policies": 2}
    in_group = compliance.for_group(items, members, GRP)
    assert {(o.user_id, o.policy_id) for o in in_group} == {("grp", "account"),
                                                             ("grp", "group")}
    assert compliance.summary([])["share_acknowledged"] is None


def test_who_may_oversee() -> None:
    ctx = AccountContext(principal=Principal(uid="x"), solution=Solution(id=SOL, slug="s",
                         name="S"), account=Account(id=ACC, solution_id=SOL, slug="a", name="A"))

    def p(*ms: Membership) -> Principal:
        return Principal(uid="u", memberships=ms)

    admin = p(_m(MembershipKind.ACCOUNT, Role.ACCOUNT_ADMIN))
    gadmin = p(_m(MembershipKind.ACCOUNT, Role.MEMBER), _m(MembershipKind.GROUP,
                                                          Role.GROUP_ADMIN, GRP))
    viewer_gadmin = p(_m(MembershipKind.ACCOUNT, Role.VIEWER),
                      _m(MembershipKind.GROUP, Role.GROUP_ADMIN, GRP))
    assert compliance.may_oversee(admin, ctx) and compliance.may_oversee(admin, ctx, GRP)
    assert compliance.may_oversee(gadmin, ctx, GRP) and not compliance.may_oversee(gadmin, ctx)
    assert not compliance.may_oversee(gadmin, ctx, "other")
    assert not compliance.may_oversee(viewer_gadmin, ctx, GRP)
