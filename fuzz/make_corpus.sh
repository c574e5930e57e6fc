#!/usr/bin/env bash
# Builds the seed corpora of the three fuzz targets from the golden sample messages.
# Usage (from the repository root): fuzz/make_corpus.sh [SAMPLE_DIR]
# SAMPLE_DIR defaults to a fresh `p2psip wire sample --dir` output; if the directory
# is given and exists, its NAME.bin files are used as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
samples=${1:-}
if [[ -z "$samples" ]]; then
    samples=$(mktemp -d)
    cargo build -q -p p2psip
    ./target/debug/p2psip wire sample --dir "$samples" >/dev/null
fi
corpus=fuzz/corpus
mkdir -p "$corpus/message" "$corpus/forwarding_header" "$corpus/framing"
byte() { printf "\\x$(printf %02x "$1")"; }
seq=0
for f in "$samples"/*.bin; do
    name=$(basename "$f")
    cp "$f" "$corpus/message/$name"
    cp "$f" "$corpus/forwarding_header/$name"
    len=$(stat -c %s "$f")
    {
        byte 0x80 # data frame
        for s in 24 16 8 0; do byte $(((seq >> s) & 0xff)); done
        for s in 16 8 0; do byte $(((len >> s) & 0xff)); done
        cat "$f"
    } >"$corpus/framing/data_$name"
    seq=$((seq + 1))
done
# An ack frame: type 0x81, ack_sequence 5, received mask 0x0000000b.
printf '\x81\x00\x00\x00\x05\x00\x00\x00\x0b' >"$corpus/framing/ack.bin"
# The committed hand-picked seeds, if any are not in the samples.
for t in message forwarding_header framing; do
    [[ -d fuzz/seeds/$t ]] && cp -n fuzz/seeds/$t/* "$corpus/$t/" || true
done
echo "corpus: $(ls "$corpus/message" | wc -l) message, $(ls "$corpus/forwarding_header" | wc -l) forwarding_header, $(ls "$corpus/framing" | wc -l) framing"
