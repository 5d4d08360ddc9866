#!/bin/sh
# tests/cgi/bad-redirect.sh — a local-redirect response whose Location is not a valid local path-query
# (RFC 3875 §6.2.2), chosen by the query string: "fragment", "space" or "authority" ("//host/x").
case $QUERY_STRING in
  fragment) location='/redirected.txt#top' ;;
  space) location='/redirected .txt' ;;
  *) location='//example.test/redirected.txt' ;;
esac
printf 'Location: %s\r\n\r\n' "$location"
