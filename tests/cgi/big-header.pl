#!/usr/bin/perl
# tests/cgi/big-header.pl — a header block of QUERY_STRING filler fields of 65 bytes each (default 2000, about
# 128 KiB), written in one go, then a blank line and a body. 1010 fillers make a block just over spawnd's 64 KiB
# limit on a CGI response's header block. spawnd must refuse either (502).
use strict;
use warnings;
binmode STDOUT;
my $n = ($ENV{QUERY_STRING} // '') =~ /^(\d+)$/ ? $1 : 2000;
my $block = "Content-Type: text/plain\r\n";
$block .= sprintf("X-Filler-%04d: %s\r\n", $_, "f" x 48) for 1 .. $n;
print $block, "\r\n", "body after a huge header block\n";
