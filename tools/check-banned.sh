#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Lint: fail, listing file:line, when C sources under src/ call a banned
# function, call exit() outside a main.c, or contain a // comment (house
# style 3.8 and 3.10). Comments, string and character literals are skipped,
# so "http://" in a string or "strcpy" in a comment is not a finding.
#
# usage: tools/check-banned.sh [DIR...]      (default: src/ of this repository)
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
if [ "$#" -eq 0 ]; then
    set -- "$here/src"
fi

# One list, so the ctest, `make lint` and CI agree on what is banned.
BANNED='sprintf vsprintf strcpy strcat strtok atoi gets system popen signal rand strerror dup'
export BANNED

find "$@" -type f \( -name '*.c' -o -name '*.h' \) -print | LC_ALL=C sort | perl -e '
use strict;
use warnings;

my @banned = split " ", $ENV{BANNED};
my $re = join "|", map { quotemeta } @banned;
$re = qr/(?<![A-Za-z0-9_.>])($re)\s*\(/;
my $found = 0;

# Blank out comments and literals (keeping newlines, so line numbers hold),
# and remember where // comments start.
sub scrub {
    my ($src, $slashes) = @_;
    my $out = "";
    my $n = length $src;
    my $line = 1;
    my $i = 0;
    while ($i < $n) {
        my $c = substr($src, $i, 1);
        my $d = $i + 1 < $n ? substr($src, $i + 1, 1) : "";
        if ($c eq "/" && $d eq "*") {
            my $end = index($src, "*/", $i + 2);
            $end = $n - 2 if $end < 0;
            my $body = substr($src, $i, $end + 2 - $i);
            my $nl = ($body =~ tr/\n//);
            $line += $nl;
            $out .= "  " . ("\n" x $nl);
            $i = $end + 2;
        } elsif ($c eq "/" && $d eq "/") {
            push @$slashes, $line;
            my $end = index($src, "\n", $i);
            $end = $n if $end < 0;
            $i = $end;
        } elsif ($c eq "\"" || $c eq "\x27") {
            my $j = $i + 1;
            while ($j < $n) {
                my $e = substr($src, $j, 1);
                last if $e eq $c || $e eq "\n";
                $j += $e eq "\\" ? 2 : 1;
            }
            $out .= $c . $c;
            $i = $j + 1;
        } else {
            $line++ if $c eq "\n";
            $out .= $c;
            $i++;
        }
    }
    return $out;
}

while (my $file = <STDIN>) {
    chomp $file;
    open(my $fh, "<", $file) or die "check-banned: $file: $!\n";
    local $/;
    my $src = <$fh>;
    close $fh;
    my @slashes;
    my $code = scrub($src, \@slashes);
    for my $l (@slashes) {
        print "$file:$l: // comment (use /* */)\n";
        $found++;
    }
    my $ln = 0;
    for my $text (split /\n/, $code, -1) {
        $ln++;
        next if $text =~ /^\s*#\s*(include|pragma)/;
        while ($text =~ /$re/g) {
            print "$file:$ln: banned function $1()\n";
            $found++;
        }
        if ($file !~ m{(^|/)main\.c$} && $text =~ /(?<![A-Za-z0-9_.>])exit\s*\(/) {
            print "$file:$ln: exit() outside main.c (return an error instead)\n";
            $found++;
        }
    }
}
if ($found) {
    print STDERR "check-banned: $found finding(s)\n";
    exit 1;
}
'
