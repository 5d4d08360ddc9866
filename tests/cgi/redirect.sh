#!/bin/sh
# tests/cgi/redirect.sh — a client redirect response (RFC 3875 §6.2.3): only an absolute Location, which the server
# must answer with 302 and that Location.
printf 'Location: http://example.test/elsewhere?from=redirect.sh\r\n\r\n'
