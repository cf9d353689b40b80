#!/usr/bin/env bash
# The C++ compiler for mmcv's build where torch's headers need a newer C++
# standard than mmcv 2.1.0's setup.py asks for (torch >= 2.14: C++20; mmcv
# passes -std=c++17 after torch's own flag, so it wins): every -std= option
# becomes -std=$MMCV_CXX_STD, and the rest goes to $MMCV_REAL_CXX unchanged.
# Set by tools/misc/install_env.sh as CXX for that build only.
set -euo pipefail
args=()
for arg in "$@"; do
    case $arg in
        -std=*) args+=("-std=$MMCV_CXX_STD") ;;
        *) args+=("$arg") ;;
    esac
done
exec "${MMCV_REAL_CXX:-c++}" "${args[@]}"
