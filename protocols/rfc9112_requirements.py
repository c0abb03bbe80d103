"""The requirements of RFC 9112 (HTTP/1.1), one row per sentence; see protocols.rfc_requirements.

Quotes are verbatim (shortened with "..."); ``match`` phrases are lower-case fragments of
the sentence that a catalogue entry quoting it contains.
"""

from __future__ import annotations

from protocols.rfc_requirements import RfcRequirement, req

R = "9112"

RFC9112: tuple[RfcRequirement, ...] = (
    # §2 message
    req(R, "2.1", "MUST", "recipient", "A recipient MUST parse an HTTP message as a sequence "
        "of octets in an encoding that is a superset of US-ASCII", "superset of us-ascii",
        slug="octets"),
    req(R, "2.1", "ABNF", "sender (response)", "HTTP-message = start-line CRLF *( field-line "
        "CRLF ) CRLF [ message-body ]", "http-message = start-line", slug="message-grammar"),
    req(R, "2.2", "MUST NOT", "sender (response)", "A sender MUST NOT generate a bare CR (a CR "
        "character not immediately followed by LF) within any protocol elements other than "
        "the content.", "must not generate a bare cr", slug="sender-bare-cr"),
    req(R, "2.2", "MUST", "recipient", "A recipient of such a bare CR MUST consider that "
        "element to be invalid or replace each bare CR with SP before processing the element",
        "recipient of such a bare cr", "bare cr with sp"),
    req(R, "2.2", "SHOULD", "server", "a server that is expecting to receive and parse a "
        "request-line SHOULD ignore at least one empty line (CRLF) received prior to the "
        "request-line", "ignore at least one empty line"),
    req(R, "2.2", "MUST NOT", "sender (response)", "A sender MUST NOT send whitespace "
        "between the start-line and the first header field.", "sender must not send "
        "whitespace between the start-line", slug="sender-ws-line"),
    req(R, "2.2", "MUST", "recipient", "A recipient that receives whitespace between the "
        "start-line and the first header field MUST either reject the message as invalid or "
        "consume each whitespace-preceded line without further processing of it",
        "whitespace-preceded line"),
    req(R, "2.2", "MAY", "recipient", "a recipient MAY recognize a single LF as a line "
        "terminator and ignore any preceding CR", "single lf as a line terminator"),
    req(R, "2.2", "SHOULD", "server", "When a server ... receives a sequence of octets that "
        "does not match the HTTP-message grammar aside from the robustness exceptions ..., "
        "the server SHOULD respond with a 400 (Bad Request) response and close the "
        "connection.", "does not match the http-message grammar"),
    # §2.3 version
    req(R, "2.3", "ABNF", "recipient", "HTTP-version is case-sensitive. HTTP-version = "
        'HTTP-name "/" DIGIT "." DIGIT', "http-version is case-sensitive",
        slug="version-grammar"),
    # §3 request line
    req(R, "3", "MAY", "recipient", "recipients MAY instead parse on whitespace-delimited word "
        "boundaries and ... treat any form of whitespace as the SP separator",
        "whitespace-delimited word boundaries"),
    req(R, "3", "SHOULD", "server", "A server that receives a method longer than any that it "
        "implements SHOULD respond with a 501 (Not Implemented) status code.",
        "method longer than any"),
    req(R, "3", "MUST", "server", "A server that receives a request-target longer than any URI "
        "it wishes to parse MUST respond with a 414 (URI Too Long) status code.",
        "request-target longer than any uri"),
    req(R, "3", "RECOMMENDED", "server", "It is RECOMMENDED that all HTTP senders and "
        "recipients support, at a minimum, request-line lengths of 8000 octets.",
        "request-line lengths of 8000 octets"),
    # §3.2 request target and Host
    req(R, "3.2", "SHOULD", "server", "Recipients of an invalid request-line SHOULD respond "
        "with either a 400 (Bad Request) error or a 301 (Moved Permanently) redirect with the "
        "request-target properly encoded.", "invalid request-line"),
    req(R, "3.2", "SHOULD NOT", "recipient", "A recipient SHOULD NOT attempt to autocorrect "
        "and then process the request without a redirect", "autocorrect"),
    req(R, "3.2", "MUST", "client", "A client MUST send a Host header field ... in all "
        "HTTP/1.1 request messages.", "client must send a host header field in all",
        slug="client-host"),
    req(R, "3.2", "MUST", "client", "If the authority component is missing or undefined for "
        "the target URI, then a client MUST send a Host header field with an empty field "
        "value.", "empty field value", slug="client-empty-host"),
    req(R, "3.2", "MUST", "server", "A server MUST respond with a 400 (Bad Request) status "
        "code to any HTTP/1.1 request message that lacks a Host header field and to any "
        "request message that contains more than one Host header field line or a Host "
        "header field with an invalid field value.", "lacks a host header field",
        slug="host-400"),
    req(R, "3.2.1", "ABNF", "recipient", 'origin-form = absolute-path [ "?" query ]',
        "origin-form = absolute-path", slug="origin-form"),
    req(R, "3.2.1", "MUST", "client", 'If the target URI\'s path component is empty, the '
        'client MUST send "/" as the path within the origin-form of request-target.',
        "client must send /", slug="client-slash"),
    req(R, "3.2.2", "MUST", "server", "A server MUST accept the absolute-form in requests even "
        "though most HTTP/1.1 clients will only send the absolute-form to a proxy.",
        "must accept the absolute-form"),
    req(R, "3.2.2", "MUST", "origin server", "When an origin server receives a request with "
        "an absolute-form of request-target, the origin server MUST ignore the received Host "
        "header field (if any) and instead use the host information of the request-target.",
        "must ignore the received host"),
    req(R, "3.2.3", "DEF", "recipient", "The authority-form of request-target is only used for "
        "CONNECT requests", "authority-form of request-target is only used",
        slug="authority-form-connect"),
    req(R, "3.2.3", "MUST", "client", "a client MUST send only the target URI's authority "
        "component (excluding any userinfo and its \"@\" delimiter) as the request-target",
        "client must send only the target uri's authority", slug="client-authority"),
    req(R, "3.2.4", "DEF", "recipient", 'The "asterisk-form" of request-target is only used '
        "for a server-wide OPTIONS request", "asterisk-form", slug="asterisk-options"),
    # §4 status line
    req(R, "4", "MUST", "sender (response)", "A server MUST send the space that separates the "
        "status-code from the reason-phrase even when the reason-phrase is absent",
        "space that separates the status-code"),
    req(R, "4", "SHOULD", "client", "A client SHOULD ignore the reason-phrase content because "
        "it is not a reliable channel for information", "ignore the reason-phrase"),
    # §5 fields
    req(R, "5.1", "MUST", "server", "A server MUST reject, with a response status code of 400 "
        "(Bad Request), any received request message that contains whitespace between a "
        "header field name and colon.", "whitespace between a header field name and colon",
        "no whitespace is allowed between the field name and colon"),
    req(R, "5.1", "MUST", "proxy", "A proxy MUST remove any such whitespace from a response "
        "message before forwarding the message downstream.", "proxy must remove"),
    req(R, "5.2", "MUST NOT", "sender (response)", "A sender MUST NOT generate a message that "
        "includes line folding ... unless the message is intended for packaging within the "
        '"message/http" media type.', "must not generate a message that includes line folding",
        slug="no-obs-fold"),
    req(R, "5.2", "MUST", "server", "A server that receives an obs-fold in a request message "
        "... MUST either reject the message by sending a 400 (Bad Request) ... or replace "
        "each received obs-fold with one or more SP octets", "receives an obs-fold in a "
        "request"),
    req(R, "5.2", "MUST", "user agent", "A user agent that receives an obs-fold in a response "
        "message ... MUST replace each received obs-fold with one or more SP octets",
        "obs-fold in a response"),
    # §6 body and framing
    req(R, "6", "DEF", "recipient", "The presence of a message body in a request is signaled "
        "by a Content-Length or Transfer-Encoding header field. Request message framing is "
        "independent of method semantics.", slug="framing-independent-of-method"),
    req(R, "6.1", "MUST", "recipient", "A recipient MUST be able to parse the chunked transfer "
        "coding ... because it plays a crucial role in framing messages",
        "must be able to parse the chunked transfer coding"),
    req(R, "6.1", "MUST NOT", "sender (response)", "A sender MUST NOT apply the chunked "
        "transfer coding more than once to a message body", "more than once"),
    req(R, "6.1", "MUST", "sender (response)", "If any transfer coding other than chunked is "
        "applied to a response's content, the sender MUST either apply chunked as the final "
        "transfer coding or terminate the message by closing the connection.",
        "applied to a response's content"),
    req(R, "6.1", "MUST NOT", "server", "A server MUST NOT send a Transfer-Encoding header "
        "field in any response with a status code of 1xx (Informational) or 204 (No "
        "Content).", "transfer-encoding header field in any response with a status code of "
        "1xx"),
    req(R, "6.1", "MUST NOT", "server", "A server MUST NOT send a response containing "
        "Transfer-Encoding unless the corresponding request indicates HTTP/1.1 (or later "
        "minor revisions).", "unless the corresponding request indicates http/1.1"),
    req(R, "6.1", "SHOULD", "server", "A server that receives a request message with a "
        "transfer coding it does not understand SHOULD respond with 501 (Not Implemented).",
        "transfer coding it does not understand"),
    req(R, "6.1", "MUST", "server", "A server MAY reject a request that contains both "
        "Content-Length and Transfer-Encoding or process such a request in accordance with "
        "the Transfer-Encoding alone. Regardless, the server MUST close the connection after "
        "responding to such a request", "both content-length and transfer-encoding"),
    req(R, "6.1", "MUST", "server", "A server or client that receives an HTTP/1.0 message "
        "containing a Transfer-Encoding header field MUST treat the message as if the framing "
        "is faulty, even if a Content-Length is present, and close the connection after "
        "processing the message.", "http/1.0 message containing a transfer-encoding"),
    req(R, "6.1", "MUST NOT", "client", "A client MUST NOT send a request containing "
        "Transfer-Encoding unless it knows the server will handle HTTP/1.1 requests",
        "client must not send a request containing transfer-encoding"),
    req(R, "6.2", "ABNF", "recipient", "Content-Length = 1*DIGIT (RFC 9110 §8.6); an invalid "
        "value is an unrecoverable framing error (§6.3 (5))", "content-length = 1*digit",
        slug="content-length-grammar"),
    req(R, "6.2", "MUST NOT", "sender (response)", "A sender MUST NOT send a Content-Length "
        "header field in any message that contains a Transfer-Encoding header field.",
        "in any message that contains a transfer-encoding"),
    req(R, "6.2", "SHOULD", "origin server", "in the absence of Transfer-Encoding, an origin "
        "server SHOULD send a Content-Length header field when the content size is known "
        "prior to sending the complete header section", "content size is known prior"),
    req(R, "6.2", "SHOULD", "user agent", "A user agent SHOULD send Content-Length in a "
        "request when the method defines a meaning for enclosed content and it is not sent "
        "with Transfer-Encoding.", "user agent should send content-length"),
    req(R, "6.3", "DEF", "sender (response)", "Any response to a HEAD request and any "
        "response with a 1xx (Informational), 204 (No Content), or 304 (Not Modified) status "
        "code is always terminated by the first empty line after the header fields",
        "always terminated by the first empty line", item="(1)"),
    req(R, "6.3", "MUST", "intermediary", "An intermediary that chooses to forward the message "
        "MUST first remove the received Content-Length field and process the "
        "Transfer-Encoding", "intermediary that chooses to forward", item="(3)"),
    req(R, "6.3", "MUST", "server", "If a Transfer-Encoding header field is present in a "
        "request and the chunked transfer coding is not the final encoding, the message body "
        "length cannot be determined reliably; the server MUST respond with the 400 (Bad "
        "Request) status code and then close the connection.", "not the final encoding",
        item="(4)"),
    req(R, "6.3", "MUST", "server", "If a message is received without Transfer-Encoding and "
        "with an invalid Content-Length header field, then the message framing is invalid "
        "... the server MUST respond with a 400 (Bad Request) status code and then close the "
        "connection.", "invalid content-length", "comma-separated list", item="(5)"),
    req(R, "6.3", "DEF", "recipient", "If a valid Content-Length header field is present "
        "without Transfer-Encoding, its decimal value defines the expected message body length "
        "in octets.", "defines the expected message body length", item="(6)"),
    req(R, "6.3", "MUST", "recipient", "If the sender closes the connection or the recipient "
        "times out before the indicated number of octets are received, the recipient MUST "
        "consider the message to be incomplete and close the connection.",
        "consider the message to be incomplete", item="(6)"),
    req(R, "6.3", "MAY", "server", "A server MAY reject a request that contains a message "
        "body but not a Content-Length by responding with 411 (Length Required).",
        "411 (length required)"),
    req(R, "6.3", "MUST", "user agent", "A user agent that sends a request that contains a "
        "message body MUST send either a valid Content-Length header field or use the chunked "
        "transfer coding.", "user agent that sends a request that contains a message body"),
    # §7 transfer codings
    req(R, "7", "DEF", "recipient", "All transfer-coding names are case-insensitive",
        "transfer-coding names are case-insensitive", slug="coding-case"),
    req(R, "7.1", "MUST", "recipient", "A recipient MUST be able to parse and decode the "
        "chunked transfer coding.", "parse and decode the chunked", "chunk-size = 1*hexdig",
        "chunk = chunk-size"),
    req(R, "7.1", "MUST", "recipient", "recipients MUST anticipate potentially large "
        "hexadecimal numerals and prevent parsing errors due to integer conversion overflows",
        "large hexadecimal numerals"),
    req(R, "7.1", "SHOULD", "recipient", "The chunked coding does not define any parameters. "
        "Their presence SHOULD be treated as an error.", "does not define any parameters"),
    req(R, "7.1.1", "MUST", "recipient", "A recipient MUST ignore unrecognized chunk "
        "extensions.", "ignore unrecognized chunk extensions", "chunk-ext =",
        "limit the total length of chunk extensions"),
    req(R, "7.1.2", "MAY", "recipient", "A recipient that removes the chunked coding from a "
        "message MAY selectively retain or discard the received trailer fields.",
        "selectively retain or discard"),
    req(R, "7.1.2", "MUST NOT", "recipient", "A recipient MUST NOT merge a received trailer "
        "field into the header section unless its corresponding header field definition "
        "explicitly permits", "merge a received trailer field"),
    req(R, "7.4", "MUST", "client", 'a sender of TE MUST also send a "TE" connection option '
        "within the Connection header field"),
    # §8 incomplete messages
    req(R, "8", "MAY", "server", "A server that receives an incomplete request message, "
        "usually due to a canceled request or a triggered timeout exception, MAY send an error "
        "response prior to closing the connection.", "incomplete request message"),
    # §9 connections
    req(R, "9.3", "MUST", "server", "A server MUST read the entire request message body or "
        "close the connection after sending its response", "read the entire request message "
        "body"),
    req(R, "9.3", "DEF", "server", 'If the received protocol is HTTP/1.0, the "keep-alive" '
        "connection option is present ... the connection will persist after the current "
        "response; otherwise, the connection will close after the current response.",
        "received protocol is http/1.0", slug="http10-close"),
    req(R, "9.3", "MUST", "server", 'A server that does not support persistent connections '
        'MUST send the "close" connection option in every response message that does not '
        "have a 1xx (Informational) status code.", "does not support persistent connections"),
    req(R, "9.3.2", "MUST", "server", "A server MAY process a sequence of pipelined requests in "
        "parallel if they all have safe methods, but it MUST send the corresponding responses "
        "in the same order that the requests were received.", "pipelined requests"),
    req(R, "9.3.2", "SHOULD", "client", "A client that pipelines requests SHOULD retry "
        "unanswered requests if the connection closes before it receives all of the "
        "corresponding responses.", "retry unanswered requests"),
    req(R, "9.5", "SHOULD", "server", "A client or server that wishes to time out SHOULD issue "
        "a graceful close on the connection.", "graceful close"),
    req(R, "9.5", "SHOULD", "server", "A server SHOULD sustain persistent connections, when "
        "possible", "sustain persistent connections"),
    req(R, "9.6", "MUST", "server", 'A server that receives a "close" connection option MUST '
        "initiate closure of the connection ... after it sends the final response ... The "
        "server MUST NOT process any further requests received on that connection.",
        'receives a close connection option'),
    req(R, "9.6", "SHOULD", "server", 'The server SHOULD send a "close" connection option in '
        "its final response on that connection.", "server should send a close connection "
        "option"),
    req(R, "9.6", "MUST", "server", 'A server that sends a "close" connection option MUST '
        "initiate closure of the connection ... after it sends the response containing the "
        '"close" connection option.', "server that sends a close connection option"),
    req(R, "9.6", "SHOULD", "sender (response)", 'A sender SHOULD send a Connection header '
        'field ... containing the "close" connection option when it intends to close a '
        "connection.", "when it intends to close a connection"),
    req(R, "9.6", "MUST NOT", "client", 'A client that sends a "close" connection option MUST '
        "NOT send further requests on that connection", "client that sends a close"),
)
