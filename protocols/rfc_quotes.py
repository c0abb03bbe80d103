"""Verbatim RFC sentences the adversarial catalogue rests on, one constant per requirement.

How this works: a case quotes the sentence its ``allowed`` reactions come from, so a reader
of a finding can check the verdict against the text without looking anything up. A quote is
the RFC's wording, shortened only with "..."; where a grammar rule is the requirement, the
ABNF is quoted instead. The section each belongs to is given beside the case (``rfc``),
since one sentence is sometimes cited by several sections' cases.
"""

from __future__ import annotations

Q_CL_INVALID = (
    "If a message is received without Transfer-Encoding and with an invalid Content-Length "
    "header field, then the message framing is invalid and the recipient MUST treat it as an "
    "unrecoverable error ... the server MUST respond with a 400 (Bad Request) status code and "
    "then close the connection."
)
Q_CL_LIST = (
    "... unless the field value can be successfully parsed as a comma-separated list ..., all "
    "values in the list are valid, and all values in the list are the same (in which case, the "
    "message is processed with that single value used as the Content-Length field value)."
)
Q_CL_BIG = (
    "a recipient MUST anticipate potentially large decimal numerals and prevent parsing errors "
    "due to integer conversion overflows or precision loss due to integer conversion"
)
Q_CL_TE = (
    "A server MAY reject a request that contains both Content-Length and Transfer-Encoding or "
    "process such a request in accordance with the Transfer-Encoding alone. Regardless, the "
    "server MUST close the connection after responding to such a request to avoid the "
    "potential attacks."
)
Q_TE_NOT_FINAL = (
    "If a Transfer-Encoding header field is present in a request and the chunked transfer "
    "coding is not the final encoding, the message body length cannot be determined reliably; "
    "the server MUST respond with the 400 (Bad Request) status code and then close the "
    "connection."
)
Q_TE_UNKNOWN = (
    "A server that receives a request message with a transfer coding it does not understand "
    "SHOULD respond with 501 (Not Implemented)."
)
Q_TE_TWICE = (
    "A sender MUST NOT apply the chunked transfer coding more than once to a message body "
    "(i.e., chunking an already chunked message is not allowed)."
)
Q_TE_HTTP10 = (
    "A server or client that receives an HTTP/1.0 message containing a Transfer-Encoding "
    "header field MUST treat the message as if the framing is faulty, even if a Content-Length "
    "is present, and close the connection after processing the message."
)
Q_GRAMMAR = (
    "When a server listening only for HTTP request messages ... receives a sequence of octets "
    "that does not match the HTTP-message grammar aside from the robustness exceptions listed "
    "above, the server SHOULD respond with a 400 (Bad Request) response and close the "
    "connection."
)
Q_WS_COLON = (
    "A server MUST reject, with a response status code of 400 (Bad Request), any received "
    "request message that contains whitespace between a header field name and colon."
)
Q_WS_LINE = (
    "A recipient that receives whitespace between the start-line and the first header field "
    "MUST either reject the message as invalid or consume each whitespace-preceded line "
    "without further processing of it"
)
Q_OBS_FOLD = (
    "A server that receives an obs-fold in a request message that is not within a "
    '"message/http" container MUST either reject the message by sending a 400 (Bad Request) '
    "... or replace each received obs-fold with one or more SP octets prior to interpreting "
    "the field value or forwarding the message downstream."
)
Q_BARE_CR = (
    "A recipient of such a bare CR MUST consider that element to be invalid or replace each "
    "bare CR with SP before processing the element or forwarding the message."
)
Q_NUL = (
    "a recipient of CR, LF, or NUL within a field value MUST either reject the message or "
    "replace each of those characters with SP before further processing or forwarding of that "
    "message."
)
Q_CTL = (
    "Field values containing other CTL characters are also invalid; however, recipients MAY "
    "retain such characters for the sake of robustness when they appear within a safe context"
)
Q_BARE_LF = (
    "Although the line terminator for the start-line and fields is the sequence CRLF, a "
    "recipient MAY recognize a single LF as a line terminator and ignore any preceding CR."
)
Q_FIELD_LIMIT = (
    "A server that receives a request header field line, field value, or set of fields larger "
    "than it wishes to process MUST respond with an appropriate 4xx (Client Error) status code."
)
Q_HOST = (
    "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request "
    "message that lacks a Host header field and to any request message that contains more "
    "than one Host header field line or a Host header field with an invalid field value."
)
Q_TARGET = (
    "Recipients of an invalid request-line SHOULD respond with either a 400 (Bad Request) "
    "error or a 301 (Moved Permanently) redirect with the request-target properly encoded."
)
Q_TARGET_LONG = (
    "A server that receives a request-target longer than any URI it wishes to parse MUST "
    "respond with a 414 (URI Too Long) status code"
)
Q_WS_SPLIT = (
    "recipients MAY instead parse on whitespace-delimited word boundaries and, aside from the "
    "CRLF terminator, treat any form of whitespace as the SP separator while ignoring "
    "preceding or trailing whitespace"
)
Q_VERSION = "HTTP-version is case-sensitive. HTTP-version = HTTP-name \"/\" DIGIT \".\" DIGIT"
Q_VERSION_MAJOR = (
    "A server can send a 505 (HTTP Version Not Supported) response if it wishes, for any "
    "reason, to refuse service of the client's major protocol version."
)
Q_VERSION_MINOR = (
    "A recipient that receives a message with a major version number that it implements and "
    "a minor version number higher than what it implements SHOULD process the message as if "
    "it were in the highest minor version within that major version to which the recipient is "
    "conformant."
)
Q_ASTERISK = (
    'The "asterisk-form" of request-target is only used for a server-wide OPTIONS request'
)
Q_CHUNK_GRAMMAR = (
    "chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; chunk-size = 1*HEXDIG"
)
Q_CHUNK_BIG = (
    "recipients MUST anticipate potentially large hexadecimal numerals and prevent parsing "
    "errors due to integer conversion overflows or precision loss due to integer "
    "representation."
)
Q_CHUNK_EXT = (
    'chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ); '
    "chunk-ext-val = token / quoted-string"
)
Q_INCOMPLETE = (
    "A server that receives an incomplete request message, usually due to a canceled request "
    "or a triggered timeout exception, MAY send an error response prior to closing the "
    "connection."
)
Q_GET_BODY = (
    "content received in a GET request has no generally defined semantics, cannot alter the "
    "meaning or target of the request, and might lead some implementations to reject the "
    "request and close the connection because of its potential as a request smuggling attack"
)
#: Definitional, not a keyword: a parser that frames a GET body otherwise is not HTTP/1.1.
Q_CL_FRAMING = (
    "The presence of a message body in a request is signaled by a Content-Length or "
    "Transfer-Encoding header field. Request message framing is independent of method "
    "semantics."
)
Q_LEADING_CRLF = (
    "In the interest of robustness, a server that is expecting to receive and parse a "
    "request-line SHOULD ignore at least one empty line (CRLF) received prior to the "
    "request-line."
)
Q_H2_PREFACE = (
    "The client connection preface is selected so that a large proportion of HTTP/1.1 or "
    "HTTP/1.0 servers and intermediaries do not attempt to process further frames."
)
Q_TIMEOUT = (
    "The 408 (Request Timeout) status code indicates that the server did not receive a "
    "complete request message within the time that it was prepared to wait."
)

# -- added with the grown catalogue ---------------------------------------------------------

Q_HOST_GRAMMAR = (
    Q_HOST + ' Host = uri-host [ ":" port ] (RFC 9110 §7.2); reg-name = *( unreserved / '
    "pct-encoded / sub-delims ) (RFC 3986 §3.2.2); port = *DIGIT (RFC 3986 §3.2.3)"
)
Q_HOST_EMPTY = (
    "If the authority component is missing or undefined for the target URI, then a client "
    "MUST send a Host header field with an empty field value."
)
Q_USERINFO = (
    'Before making use of an "http" or "https" URI reference received from an untrusted '
    "source, a recipient SHOULD parse for userinfo and treat its presence as an error; it is "
    "likely being used to obscure the authority for the sake of phishing attacks."
)
Q_ABSOLUTE_FORM = (
    "A server MUST accept the absolute-form in requests even though most HTTP/1.1 clients "
    "will only send the absolute-form to a proxy."
)
Q_ABSOLUTE_HOST = (
    "When an origin server receives a request with an absolute-form of request-target, the "
    "origin server MUST ignore the received Host header field (if any) and instead use the "
    "host information of the request-target."
)
Q_TE_CODING_CASE = (
    "A recipient MUST be able to parse the chunked transfer coding (Section 7.1) because it "
    "plays a crucial role in framing messages when the content size is not known in advance. "
    "... All transfer-coding names are case-insensitive"
)
Q_LIST_EMPTY = (
    "A recipient MUST parse and ignore a reasonable number of empty list elements: enough to "
    "handle common mistakes by senders that merge values, but not so much that they could be "
    "used as a denial-of-service mechanism."
)
Q_FIELD_NAME_TOKEN = (
    "field-name = token ... Field names are case-insensitive"
)
Q_IGNORE_UNKNOWN = "Other recipients SHOULD ignore unrecognized header and trailer fields."
Q_OWS_VALUE = (
    "A field value does not include leading or trailing whitespace. When a specific version "
    "of HTTP allows such whitespace to appear in a message, a field parsing implementation "
    "MUST exclude such whitespace prior to evaluating the field value."
)
Q_CHUNKED_PARSE = (
    "A recipient MUST be able to parse and decode the chunked transfer coding."
)
Q_CHUNK_EXT_IGNORE = "A recipient MUST ignore unrecognized chunk extensions."
Q_CHUNK_EXT_LIMIT = (
    "A server ought to limit the total length of chunk extensions received in a request to "
    "an amount reasonable for the services provided, in the same way that it applies length "
    "limitations and timeouts for other parts of a message, and generate an appropriate 4xx "
    "(Client Error) response if that amount is exceeded."
)
Q_TRAILER_MERGE = (
    "A recipient MUST NOT merge a trailer field into a header section unless the recipient "
    "understands the corresponding header field definition and that definition explicitly "
    "permits and defines how trailer field values can be safely merged."
)
Q_TRAILER_NO_MERGE = (
    "A recipient MUST NOT merge a received trailer field into the header section unless its "
    "corresponding header field definition explicitly permits and instructs how the trailer "
    "field value can be safely merged."
)
Q_TRAILER_RETAIN = (
    "A recipient that removes the chunked coding from a message MAY selectively retain or "
    "discard the received trailer fields."
)
Q_CL_VALID = (
    "If a valid Content-Length header field is present without Transfer-Encoding, its "
    "decimal value defines the expected message body length in octets."
)
Q_CL_GRAMMAR = (
    "The Content-Length header field indicates the associated representation's data length "
    "as a decimal non-negative integer number of octets. ... Content-Length = 1*DIGIT"
)
Q_NO_1XX_HTTP10 = (
    "Since HTTP/1.0 did not define any 1xx status codes, a server MUST NOT send a 1xx "
    "response to an HTTP/1.0 client."
)
Q_EXPECT_HTTP10 = (
    "A server that receives a 100-continue expectation in an HTTP/1.0 request MUST ignore "
    "that expectation."
)
Q_EXPECT_UNKNOWN = (
    "A server that receives an Expect field value containing a member other than "
    "100-continue MAY respond with a 417 (Expectation Failed) status code to indicate that "
    "the unexpected expectation cannot be met."
)
Q_EXPECT_100 = (
    "An origin server MUST, upon receiving an HTTP/1.1 (or later) request that has a method, "
    "target URI, and complete header section that contains a 100-continue expectation and an "
    "indication that request content will follow, either send an immediate response with a "
    "final status code, if that status can be determined by examining just the method, "
    "target URI, and header fields, or send an immediate 100 (Continue) response to encourage "
    "the client to send the request content."
)
Q_EXPECT_OMIT = (
    "A server MAY omit sending a 100 (Continue) response if it has already received some or "
    "all of the content for the corresponding request, or if the framing indicates that there "
    "is no content."
)
Q_UPGRADE_HTTP10 = (
    "A server MUST ignore an Upgrade header field that is received in an HTTP/1.0 request."
)
Q_UPGRADE_IGNORE = (
    "A server MAY ignore a received Upgrade header field if it wishes to continue using the "
    "current protocol on that connection."
)
Q_WS_HANDSHAKE = (
    "If the server, while reading the handshake, finds that the client did not send a "
    "handshake that matches the description below ..., the server MUST stop processing the "
    "client's handshake and return an HTTP response with an appropriate error code (such as "
    "400 Bad Request). ... An HTTP/1.1 or higher GET request ... A |Connection| header field "
    'that includes the token "Upgrade"'
)
Q_REQUEST_LINE_8000 = (
    "It is RECOMMENDED that all HTTP senders and recipients support, at a minimum, "
    "request-line lengths of 8000 octets."
)
Q_METHOD_LONG = (
    "A server that receives a method longer than any that it implements SHOULD respond with "
    "a 501 (Not Implemented) status code."
)
Q_METHOD_UNKNOWN = (
    "An origin server that receives a request method that is unrecognized or not implemented "
    "SHOULD respond with the 501 (Not Implemented) status code. An origin server that receives "
    "a request method that is recognized and implemented, but not allowed for the target "
    "resource, SHOULD respond with the 405 (Method Not Allowed) status code."
)
Q_METHOD_CASE = (
    "The method token is case-sensitive because it might be used as a gateway to "
    "object-based systems with case-sensitive method names."
)
Q_GET_HEAD = (
    "All general-purpose servers MUST support the methods GET and HEAD. All other methods are "
    "OPTIONAL."
)
Q_OPTIONS_ASTERISK = (
    'An OPTIONS request with an asterisk ("*") as the request-target (Section 7.1) applies to '
    "the server in general rather than to a specific resource."
)
Q_AUTHORITY_FORM = (
    "The authority-form of request-target is only used for CONNECT requests"
)
Q_ORIGIN_FORM = 'origin-form = absolute-path [ "?" query ]'
Q_TRACE = (
    "The TRACE method requests a remote, application-level loop-back of the request message."
)
Q_PIPELINE = (
    "A server MAY process a sequence of pipelined requests in parallel if they all have safe "
    "methods, but it MUST send the corresponding responses in the same order that the "
    "requests were received."
)
Q_CLOSE_RECEIVED = (
    'A server that receives a "close" connection option MUST initiate closure of the '
    "connection (see below) after it sends the final response to the request that contained "
    'the "close" connection option. The server SHOULD send a "close" connection option in its '
    "final response on that connection. The server MUST NOT process any further requests "
    "received on that connection."
)
Q_HTTP10_CLOSE = (
    'If the received protocol is HTTP/1.0, the "keep-alive" connection option is present, '
    "either the recipient is not a proxy or the message is a response, and the recipient "
    'wishes to honor the HTTP/1.0 "keep-alive" mechanism, the connection will persist after '
    "the current response; otherwise, the connection will close after the current response."
)
Q_OBS_TEXT = (
    "field-vchar = VCHAR / obs-text ... a recipient SHOULD treat other allowed octets in "
    "field content (i.e., obs-text) as opaque data."
)
