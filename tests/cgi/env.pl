#!/usr/bin/perl
# tests/cgi/env.pl — the CGI environment dumper of the e2e tests (Perl: %ENV is exactly the environment the
# process received, unlike a shell, which adds PWD and friends).
#
# Prints a text/plain document of lines:
#   env:NAME=value   one per environment variable, sorted ('\' and newlines escaped as \\ and \n)
#   argc:N           then argv:I=value for I = 0..N-1 (argv:0 is the script path)
#   fd:N             one per file descriptor open in this process
#   cwd:PATH         the working directory
# The request body, if any, is not read.
use strict;
use warnings;
use Cwd ();

sub esc { my $s = shift; $s =~ s/\\/\\\\/g; $s =~ s/\n/\\n/g; return $s; }

# Open fds: listing /proc/self/fd opens one more fd (the directory itself), closed again after the listing; an
# entry whose link no longer resolves afterwards was that one.
opendir(my $dh, "/proc/self/fd") or die "opendir /proc/self/fd: $!";
my @entries = grep { /^\d+$/ } readdir($dh);
closedir($dh);
my @fds = sort { $a <=> $b } grep { defined readlink("/proc/self/fd/$_") } @entries;

my @out;
push @out, "env:" . esc($_) . "=" . esc($ENV{$_}) for sort keys %ENV;
my @argv = ($0, @ARGV);
push @out, "argc:" . scalar(@argv);
push @out, "argv:$_=" . esc($argv[$_]) for 0 .. $#argv;
push @out, "fd:$_" for @fds;
push @out, "cwd:" . Cwd::getcwd();
my $body = join("\n", @out) . "\n";

binmode STDOUT;
print "Content-Type: text/plain; charset=utf-8\r\n";
print "Content-Length: " . length($body) . "\r\n";
print "\r\n";
print $body;
