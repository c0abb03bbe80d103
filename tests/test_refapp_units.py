"""refapp pieces without sockets: spec and model files, lenient parsers, limiter, validation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, TextMessage

from refapp import items
from refapp.app import ROUTES, Router
from refapp.items import InvalidItem, validate_item
from refapp.lenient import HeadRewriter, rewrite_head
from refapp.sessions import TokenBucket, session_token
from refapp.testing import frame
from refapp.wsframes import FrameScanner

REFAPP = Path(__file__).resolve().parent.parent / "refapp"
SPEC = yaml.safe_load((REFAPP / "openapi.yaml").read_text())
MODEL = yaml.safe_load((REFAPP / "markov.yaml").read_text())
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def shape(template: str) -> str:
    """A path template with its placeholder names erased: /items/{x} -> /items/{}."""
    return re.sub(r"\{[^}]*\}", "{}", template)


def spec_routes() -> set[tuple[str, str]]:
    return {
        (method.upper(), shape(path))
        for path, ops in SPEC["paths"].items()
        for method in ops
        if method in HTTP_METHODS
    }


# -- openapi.yaml and markov.yaml ------------------------------------------------------------


def test_spec_documents_exactly_the_implemented_routes() -> None:
    implemented = {(m.decode(), shape(r.template)) for r in ROUTES for m in r.methods}
    assert spec_routes() == implemented


def test_spec_item_schema_matches_validation() -> None:
    schema = SPEC["components"]["schemas"]["ItemInput"]
    props = schema["properties"]
    assert set(schema["required"]) == {"name", "quantity"}
    assert schema["additionalProperties"] is False
    assert (props["name"]["minLength"], props["name"]["maxLength"]) == (1, items.NAME_MAX)
    assert (props["quantity"]["minimum"], props["quantity"]["maximum"]) == (
        0,
        items.QUANTITY_MAX,
    )
    assert props["tags"]["maxItems"] == items.TAGS_MAX
    assert props["tags"]["items"]["maxLength"] == items.TAG_MAX
    params = SPEC["paths"]["/items/{id}"]["parameters"]
    assert params == [{"$ref": "#/components/parameters/ItemId"}]


def test_markov_model_uses_only_spec_routes() -> None:
    assert MODEL["version"] == 1 and MODEL["start"] in MODEL["states"]
    routes = spec_routes()
    method, path = MODEL["login"]["request"].split()
    assert (method, shape(path)) in routes
    for name, state in MODEL["states"].items():
        method, path = state["request"].split()
        assert (method, shape(path)) in routes, name
        assert set(state.get("next", {})) <= set(MODEL["states"]), name
        assert 429 not in state.get("expect", [])
    create = MODEL["states"]["create_item"]
    assert create["capture"] == {"item_id": "id"} and create["write"] == "item"
    assert MODEL["states"]["update_item"]["write"] == "item"
    assert MODEL["states"]["read_item"]["read"] == "item"
    assert MODEL["states"]["delete_item"]["forget"] == ["item_id"]


# -- routing, validation, sessions -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "template", "params"),
    [
        ("/items", "/items", {}),
        ("/items/ab12", "/items/{id}", {"id": "ab12"}),
        ("/items/", None, None),
        ("/items/a/b", None, None),
        ("/items/a/", None, None),
        ("/nope", None, None),
    ],
)
def test_router(path: str, template: str | None, params: dict | None) -> None:
    match = Router(ROUTES).match(path)
    if template is None:
        assert match is None
    else:
        assert match is not None and match.route.template == template and match.params == params


def test_validate_item_accepts_the_schema_bounds() -> None:
    body = validate_item({"name": "x" * 64, "quantity": 1_000_000, "tags": ["t" * 32] * 16})
    assert body.quantity == 1_000_000 and len(body.tags) == 16
    assert validate_item({"name": "x", "quantity": 0}).tags == ()
    with pytest.raises(InvalidItem, match="tags"):
        validate_item({"name": "x", "quantity": 0, "tags": ["t"] * 17})


def test_item_store_forgets_oldest_beyond_cap() -> None:
    store = items.ItemStore()
    body = validate_item({"name": "x", "quantity": 0})
    for n in range(items.MAX_ITEMS + 5):
        store.put(str(n), body)
    assert len(store) == items.MAX_ITEMS
    assert store.get("0") is None and store.get(str(items.MAX_ITEMS + 4)) is body


def test_token_bucket_burst_then_rate() -> None:
    bucket = TokenBucket(rate=4, now=0.0)
    assert [bucket.allow(0.0) for _ in range(5)] == [True] * 4 + [False]
    assert bucket.allow(0.25) and not bucket.allow(0.25)
    assert [bucket.allow(10.0) for _ in range(5)] == [True] * 4 + [False]  # burst capped


def test_session_token_from_cookie_header() -> None:
    assert session_token(b"a=1; session=tok; b=2") == "tok"
    assert session_token(b"sessionx=1") is None
    assert session_token(None) is None


# -- lenient front-ends (defect simulation) --------------------------------------------------

CONFLICT = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n"
CL_TE = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_rewrite_head_rules() -> None:
    first = rewrite_head(CONFLICT, first_length_wins=True, length_beats_chunked=False)
    assert first == b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
    listed = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\n"
    assert b"Content-Length: 3\r\n" in rewrite_head(
        listed, first_length_wins=True, length_beats_chunked=False
    )
    no_te = rewrite_head(CL_TE, first_length_wins=False, length_beats_chunked=True)
    assert no_te == b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
    assert rewrite_head(CL_TE, first_length_wins=True, length_beats_chunked=False) == CL_TE


@pytest.mark.parametrize("mode", ["whole", "bytewise", "trailing"])
def test_head_rewriter_three_ways(mode: str) -> None:
    rewriter = HeadRewriter(first_length_wins=True, length_beats_chunked=False, max_head=1024)
    data = CONFLICT + b"ab" + (b"GET / HTTP/1.1\r\n" if mode == "trailing" else b"")
    if mode == "bytewise":
        out = b"".join(rewriter.feed(data[i : i + 1]) for i in range(len(data)))
    else:
        out = rewriter.feed(data)
    assert out.startswith(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab")
    assert out.endswith(data[len(CONFLICT) + 2 :])


def test_head_rewriter_releases_what_cannot_be_a_request_at_once() -> None:
    rewriter = HeadRewriter(first_length_wins=True, length_beats_chunked=True, max_head=1024)
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"  # a TLS ClientHello start
    assert rewriter.feed(hello) == hello
    rewriter.start_cycle()
    assert rewriter.feed(b"\r\n") == b""  # leading empty lines may precede a request


def test_head_rewriter_releases_oversized_heads() -> None:
    rewriter = HeadRewriter(first_length_wins=True, length_beats_chunked=True, max_head=10)
    assert rewriter.feed(b"GET /") == b""
    assert rewriter.has_pending()
    assert rewriter.feed(b"aaaaaaaaaa") == b"GET /aaaaaaaaaa"


@pytest.mark.parametrize("mode", ["whole", "bytewise", "trailing"])
def test_frame_scanner_masks_unmasked_frames(mode: str) -> None:
    frames = frame(0x1, b"a" * 300, masked=False) + frame(0x1, b"b", masked=True)
    if mode == "trailing":
        frames += frame(0x1, b"c" * 70000, masked=False)[:10]
    scanner = FrameScanner(mask_unmasked=True)
    if mode == "bytewise":
        data = b"".join(scanner.feed(frames[i : i + 1])[0] for i in range(len(frames)))
    else:
        data = scanner.feed(frames)[0]
    ws = Connection(ConnectionType.SERVER)
    ws.receive_data(data)
    events = list(ws.events())
    texts = [e.data for e in events if isinstance(e, TextMessage)]
    assert "".join(texts).startswith("a" * 300 + "b")
    assert not any(isinstance(e, CloseConnection) for e in events)


@pytest.mark.parametrize("mode", ["whole", "bytewise", "trailing"])
def test_frame_scanner_reports_declared_lengths(mode: str) -> None:
    data = frame(0x2, b"x" * 70000, fin=False) + frame(0x9, b"p") + frame(0x0, b"y" * 200)
    if mode == "trailing":
        data += frame(0x1, b"z" * 300)[:3]
    scanner = FrameScanner()
    heads = []
    out = b""
    for chunk in [data[i : i + 1] for i in range(len(data))] if mode == "bytewise" else [data]:
        passed, new = scanner.feed(chunk)
        out += passed
        heads += new
    assert out == data  # without masking, bytes pass unchanged and undelayed
    assert [(h.opcode, h.length, h.fin, h.is_data) for h in heads] == [
        (0x2, 70000, False, True),
        (0x9, 1, True, False),
        (0x0, 200, True, True),
    ]
