"""The message rules of RFC 9110 (HTTP semantics) a server's wire traffic can break; see
protocols.rfc_requirements. Semantics of caching, conditional requests, ranges and content
negotiation are out of scope: they are not message rules.
"""

from __future__ import annotations

from protocols.rfc_requirements import RfcRequirement, req

R = "9110"

RFC9110: tuple[RfcRequirement, ...] = (
    # §2 conformance and versions
    req(R, "2.2", "MUST NOT", "sender (response)", "A sender MUST NOT generate protocol "
        "elements that do not match the grammar defined by the corresponding ABNF rules.",
        "protocol elements that do not match the grammar"),
    req(R, "2.5", "SHOULD", "recipient", "A recipient that receives a message with a major "
        "version number that it implements and a minor version number higher than what it "
        "implements SHOULD process the message as if it were in the highest minor version",
        "minor version number higher"),
    req(R, "2.5", "MUST NOT", "sender (response)", "A server MUST NOT send a version to which "
        "it is not conformant.", "version to which it is not conformant"),
    req(R, "2.5", "DEF", "server", "A server can send a 505 (HTTP Version Not Supported) "
        "response if it wishes, for any reason, to refuse service of the client's major "
        "protocol version.", "505 (http version not supported)"),
    # §4 URIs
    req(R, "4.2.4", "SHOULD", "recipient", "a recipient SHOULD parse for userinfo and treat its "
        "presence as an error", "parse for userinfo"),
    # §5 fields
    req(R, "5.1", "ABNF", "recipient", "field-name = token ... Field names are "
        "case-insensitive", "field-name = token", "field names are case-insensitive"),
    req(R, "5.1", "SHOULD", "recipient", "Other recipients SHOULD ignore unrecognized header "
        "and trailer fields.", "ignore unrecognized header"),
    req(R, "5.3", "MUST NOT", "sender (response)", "A sender MUST NOT generate multiple field "
        "lines with the same name in a message ... unless that field's definition allows "
        "multiple field line values to be recombined as a comma-separated list",
        "multiple field lines with the same name"),
    req(R, "5.4", "MUST", "server", "A server that receives a request header field line, field "
        "value, or set of fields larger than it wishes to process MUST respond with an "
        "appropriate 4xx (Client Error) status code.", "larger than it wishes to process"),
    req(R, "5.5", "MUST", "recipient", "a field parsing implementation MUST exclude such "
        "whitespace prior to evaluating the field value", "exclude such whitespace"),
    req(R, "5.5", "MUST", "recipient", "a recipient of CR, LF, or NUL within a field value MUST "
        "either reject the message or replace each of those characters with SP",
        "cr, lf, or nul within a field value"),
    req(R, "5.5", "DEF", "sender (response)", "Field values containing CR, LF, or NUL "
        "characters are invalid and dangerous", "characters are invalid and dangerous",
        slug="sender-field-value"),
    req(R, "5.5", "MAY", "recipient", "Field values containing other CTL characters are also "
        "invalid; however, recipients MAY retain such characters for the sake of robustness",
        "other ctl characters"),
    req(R, "5.5", "SHOULD", "recipient", "a recipient SHOULD treat other allowed octets in "
        "field content (i.e., obs-text) as opaque data.", "obs-text"),
    req(R, "5.6.1.2", "MUST", "recipient", "A recipient MUST parse and ignore a reasonable "
        "number of empty list elements", "empty list elements"),
    # §6 message abstraction
    req(R, "6.5.1", "MUST NOT", "recipient", "A recipient MUST NOT merge a trailer field into "
        "a header section unless the recipient understands the corresponding header field "
        "definition and that definition explicitly permits ... merged.",
        "merge a trailer field into a header section"),
    req(R, "6.5.1", "MUST NOT", "sender (response)", "A sender MUST NOT generate a trailer "
        "field unless the sender knows the corresponding header field name's definition "
        "permits the field to be sent in trailers.", "must not generate a trailer field"),
    req(R, "6.6.1", "MUST", "origin server", "An origin server with a clock ... MUST generate a "
        "Date header field in all 2xx (Successful), 3xx (Redirection), and 4xx (Client Error) "
        "responses", "must generate a date header field"),
    # §7 routing
    req(R, "7.2", "MUST", "user agent", "A user agent MUST generate a Host header field in a "
        'request unless it sends that information as an ":authority" pseudo-header field.',
        "user agent must generate a host"),
    req(R, "7.6.1", "MUST", "proxy", "A proxy or gateway MUST parse a received Connection "
        "header field before a message is forwarded", "proxy or gateway must parse"),
    req(R, "7.8", "MUST", "server", "A server that sends a 101 (Switching Protocols) response "
        "MUST send an Upgrade header field to indicate the new protocol(s)",
        "101 (switching protocols) response must send an upgrade"),
    req(R, "7.8", "MUST NOT", "server", "A server MUST NOT switch to a protocol that was not "
        "indicated by the client in the corresponding request's Upgrade header field.",
        "switch to a protocol that was not indicated"),
    req(R, "7.8", "MUST", "server", "A server that sends a 426 (Upgrade Required) response "
        "MUST send an Upgrade header field to indicate the acceptable protocols.",
        "426 (upgrade required) response must send"),
    req(R, "7.8", "MUST", "server", "A server MUST ignore an Upgrade header field that is "
        "received in an HTTP/1.0 request.", "upgrade header field that is received in an "
        "http/1.0"),
    req(R, "7.8", "MAY", "server", "A server MAY ignore a received Upgrade header field if it "
        "wishes to continue using the current protocol on that connection.",
        "may ignore a received upgrade"),
    req(R, "7.8", "MUST", "sender (request)", "When Upgrade is sent, the sender MUST also send "
        'a Connection header field that contains an "upgrade" connection option',
        "when upgrade is sent"),
    # §8.6 Content-Length
    req(R, "8.6", "MUST", "recipient", "a recipient MUST anticipate potentially large decimal "
        "numerals and prevent parsing errors due to integer conversion overflows",
        "large decimal numerals"),
    req(R, "8.6", "MUST NOT", "server", "A server MUST NOT send a Content-Length header field "
        "in any response with a status code of 1xx (Informational) or 204 (No Content).",
        "content-length header field in any response with a status code of 1xx"),
    req(R, "8.6", "MUST NOT", "server", "A server MUST NOT send a Content-Length header field "
        "in any 2xx (Successful) response to a CONNECT request", "2xx (successful) response "
        "to a connect"),
    req(R, "8.6", "MUST NOT", "server", "A server MUST NOT send Content-Length in such a "
        "response [to HEAD] unless its field value equals the decimal number of octets that "
        "would have been sent in the content of a response if the same request had used the "
        "GET method.", "unless its field value equals the decimal number"),
    req(R, "8.6", "MAY", "recipient", 'a recipient of a Content-Length header field value '
        'consisting of the same decimal value repeated as a comma-separated list (e.g, '
        '"Content-Length: 42, 42") MAY either reject the message as invalid or replace that '
        "invalid field value with a single instance", "same decimal value repeated"),
    req(R, "8.3", "SHOULD", "sender (response)", "A sender that generates a message containing "
        "content SHOULD generate a Content-Type header field in that message",
        "content-type header field in that message"),
    # §9 methods
    req(R, "9.1", "MUST", "server", "All general-purpose servers MUST support the methods GET "
        "and HEAD.", "must support the methods get and head"),
    req(R, "9.1", "SHOULD", "origin server", "An origin server that receives a request method "
        "that is unrecognized or not implemented SHOULD respond with the 501 (Not "
        "Implemented) status code.", "unrecognized or not implemented"),
    req(R, "9.1", "DEF", "recipient", "The method token is case-sensitive", "method token is "
        "case-sensitive"),
    req(R, "9.3.1", "SHOULD NOT", "client", "A client SHOULD NOT generate content in a GET "
        "request unless it is made directly to an origin server that has previously indicated",
        "content received in a get request", "should not generate content in a get"),
    req(R, "9.3.2", "MUST NOT", "server", "The HEAD method is identical to GET except that the "
        "server MUST NOT send content in the response.", "must not send content in the "
        "response"),
    req(R, "9.3.2", "SHOULD", "server", "The server SHOULD send the same header fields in "
        "response to a HEAD request as it would have sent if the request method had been GET",
        "same header fields in response to a head"),
    req(R, "9.3.6", "MUST NOT", "server", "A server MUST NOT send any Transfer-Encoding or "
        "Content-Length header fields in a 2xx (Successful) response to CONNECT.",
        "transfer-encoding or content-length header fields in a 2xx"),
    req(R, "9.3.7", "MUST", "server", 'A server MUST generate a Content-Length field with a '
        'value of "0" if no content is to be sent in the response.', "value of 0"),
    req(R, "9.3.7", "SHOULD", "server", "A server generating a successful response to OPTIONS "
        "SHOULD send any header that might indicate optional features implemented by the "
        "server", "asterisk", "successful response to options"),
    req(R, "9.3.8", "DEF", "server", "The TRACE method requests a remote, application-level "
        "loop-back of the request message.", "application-level loop-back", slug="trace"),
    req(R, "9.3.8", "MUST NOT", "client", "A client MUST NOT send content in a TRACE request.",
        "must not send content in a trace", slug="client-trace-content"),
    # §10 request context
    req(R, "10.1.1", "MUST NOT", "client", "A client MUST NOT generate a 100-continue "
        "expectation in a request that does not include content.", "does not include "
        "content"),
    req(R, "10.1.1", "MUST", "server", "A server that receives a 100-continue expectation in "
        "an HTTP/1.0 request MUST ignore that expectation.", "100-continue expectation in an "
        "http/1.0"),
    req(R, "10.1.1", "MAY", "server", "A server that receives an Expect field value containing "
        "a member other than 100-continue MAY respond with a 417 (Expectation Failed)",
        "member other than 100-continue"),
    req(R, "10.1.1", "MUST", "origin server", "An origin server MUST, upon receiving an "
        "HTTP/1.1 (or later) request that has ... a 100-continue expectation ..., either send "
        "an immediate response with a final status code ... or send an immediate 100 "
        "(Continue) response", "either send an immediate response"),
    req(R, "10.1.1", "MAY", "server", "A server MAY omit sending a 100 (Continue) response if "
        "it has already received some or all of the content", "may omit sending a 100"),
    req(R, "10.1.1", "MUST", "server", "A server that sends a 100 (Continue) response MUST "
        "ultimately send a final status code, once it receives and processes the request "
        "content", "ultimately send a final status code"),
    # §11 authentication, §15 status codes
    req(R, "11.6.1", "MUST", "server", "A server generating a 401 (Unauthorized) response MUST "
        "send a WWW-Authenticate header field containing at least one challenge.",
        "containing at least one challenge"),
    req(R, "15.2", "MUST NOT", "server", "Since HTTP/1.0 did not define any 1xx status codes, a "
        "server MUST NOT send a 1xx response to an HTTP/1.0 client.", "1xx response to an "
        "http/1.0 client"),
    req(R, "15.2.2", "MUST", "server", "The server MUST generate an Upgrade header field in "
        "the response that indicates which protocol(s) will be in effect after this response.",
        "which protocol(s) will be in effect"),
    req(R, "15.3.5", "DEF", "server", "A 204 response is terminated by the end of the "
        "header section; it cannot contain content or trailers.", "204 response is "
        "terminated"),
    req(R, "15.4.5", "DEF", "server", "A 304 response is terminated by the end of the "
        "header section; it cannot contain content or trailers.", "304 response is "
        "terminated"),
    req(R, "15.5.2", "MUST", "server", "The server generating a 401 response MUST send a "
        "WWW-Authenticate header field ... containing at least one challenge applicable to the "
        "target resource.", "401 response must send"),
    req(R, "15.5.6", "MUST", "origin server", "The origin server MUST generate an Allow header "
        "field in a 405 response containing a list of the target resource's currently "
        "supported methods.", "allow header field in a 405"),
    req(R, "15.5.9", "DEF", "server", "The 408 (Request Timeout) status code indicates that "
        "the server did not receive a complete request message within the time that it was "
        "prepared to wait.", "408 (request timeout)"),
    req(R, "15.5.22", "MUST", "server", "The server MUST send an Upgrade header field in a 426 "
        "response to indicate the required protocol(s)", "upgrade header field in a 426"),
)
