#!/bin/sh
# Writes a placeholder source file for every target a Cargo.toml names, so that the container
# build can compile the dependencies from Cargo.toml and Cargo.lock alone, in a layer that the
# next build reuses until one of those two files changes.
#
# Usage: stub-targets.sh [Cargo.toml]   (files are written beside it; existing files are kept)
#
# Cargo refuses a manifest whose declared targets have no source file, so each [[bin]],
# [[bench]], [[test]] and [[example]] table gets one, at its `path` or at the default path of
# its kind; so do [lib] (src/lib.rs unless `path` says otherwise), the default binary
# (src/main.rs) and a `build = "..."` script. Targets Cargo would discover on its own
# (tests/*.rs, benches/*.rs) need no stub: where there is no file, there is no target. Adding a
# target to Cargo.toml therefore needs no change here. `.ci/run` checks that Cargo accepts the
# stubbed manifest, so a target written in a form this reader misses fails CI, not a release.
#
# POSIX sh and awk only: the build image has nothing else to run it with.
set -eu

manifest=${1:-Cargo.toml}
root=$(dirname "$manifest")

awk '
    # The first quoted string on a `key = "value"` line.
    function value(line) {
        sub(/^[^"]*"/, "", line)
        sub(/".*$/, "", line)
        return line
    }
    # Prints the path of the target table that just ended, if it was one.
    function flush() {
        if (kind == "") return
        if (path != "") print path
        else if (kind == "lib") print "src/lib.rs"
        else if (name != "") print dir[kind] "/" name ".rs"
        kind = ""; name = ""; path = ""
    }
    BEGIN {
        dir["bin"] = "src/bin"; dir["bench"] = "benches"
        dir["test"] = "tests"; dir["example"] = "examples"
        print "src/main.rs"
        print "src/lib.rs"
    }
    /^[ \t]*\[/ {
        flush()
        table = $0
        gsub(/[ \t]/, "", table)
        if (table ~ /^\[\[(bin|bench|test|example)\]\]/) {
            kind = table
            gsub(/[][]/, "", kind)
        } else if (table ~ /^\[lib\]/) {
            kind = "lib"
        }
        section = table
        next
    }
    kind != "" && /^[ \t]*name[ \t]*=/ { name = value($0) }
    kind != "" && /^[ \t]*path[ \t]*=/ { path = value($0) }
    section ~ /^\[package\]/ && /^[ \t]*build[ \t]*=[ \t]*"/ { print value($0) }
    END { flush() }
' "$manifest" | sort -u | while read -r target; do
    file="$root/$target"
    [ -e "$file" ] && continue
    mkdir -p "$(dirname "$file")"
    # `main` serves binaries, benches without a harness, examples and build scripts; a library
    # or a test with the harness ignores it.
    printf '#![allow(dead_code)]\nfn main() {}\n' >"$file"
done
