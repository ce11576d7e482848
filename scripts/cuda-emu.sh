#!/bin/sh
# Runs a command against the emulated GPU (emu/, no NVIDIA driver or toolkit needed), e.g.
#   scripts/cuda-emu.sh cargo test --features cuda --test cuda_parity
# Builds the emulator, then runs the command with its stand-in libcuda, libcublas and libcudnn first
# on LD_LIBRARY_PATH and NVCC set to its nvcc stand-in (unless NVCC is set). MMARD_EMU_SEED picks
# the block and warp order.
set -e
manifest="$(cd "$(dirname "$0")/.." && pwd)/Cargo.toml"
cargo build -q --release -p mmard-emu --manifest-path "$manifest"
target=$(cargo metadata --format-version 1 --no-deps --manifest-path "$manifest" |
    sed 's/.*"target_directory":"\([^"]*\)".*/\1/')
exec "$target/release/mmard-emu" "$@"
