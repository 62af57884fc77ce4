# shellcheck shell=bash
# Shared by scripts/serve, scripts/test and scripts/audit (sourced, not run): creates or refreshes
# the project's virtual environment from a hash-pinned lockfile, then installs the project itself.
#
# The environment lives in .venv (override with VENV_DIR). An install is skipped when the lockfile,
# pyproject.toml and the Python version are unchanged since the last successful one, so a second
# run starts at once and works offline.

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv_dir="${VENV_DIR:-$repo_root/.venv}"

# Prints the first Python 3.11+ interpreter found (PYTHON, then python3, python3.13 ... python).
find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11 python; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "error: Python 3.11 or newer is required; set PYTHON=/path/to/python3.11" >&2
    return 1
}

# Runs pip from the virtual environment with the machine's pip configuration files, local wheel
# folders, extra indexes and global constraints switched off: a hash-pinned install must resolve
# from the package index alone, the same way on every machine. PIP_INDEX_URL (a mirror) and
# PIP_CERT still apply.
venv_pip() {
    env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT -u PIP_NO_INDEX \
        PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 \
        "$venv_dir/bin/python" -m pip "$@"
}

# Creates .venv if needed and installs the given lockfile (relative to the repository root) plus
# the project in editable mode.
ensure_venv() {
    local lockfile="$repo_root/$1"
    local python stamp_file wanted_stamp
    if [ ! -f "$lockfile" ]; then
        echo "error: lockfile $1 is missing; run ./scripts/lock" >&2
        return 1
    fi

    # A venv whose interpreter is gone or older than 3.11 is rebuilt rather than patched.
    if [ -d "$venv_dir" ] && ! "$venv_dir/bin/python" \
        -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
        echo "==> $venv_dir has no usable Python 3.11+; recreating it" >&2
        rm -rf "$venv_dir"
    fi
    if [ ! -d "$venv_dir" ]; then
        python="$(find_python)"
        echo "==> creating $venv_dir with $("$python" --version 2>&1)" >&2
        "$python" -m venv "$venv_dir"
    fi
    # Environments made by other tools (uv venv) may come without pip.
    if ! "$venv_dir/bin/python" -m pip --version >/dev/null 2>&1; then
        "$venv_dir/bin/python" -m ensurepip --default-pip >/dev/null
    fi

    stamp_file="$venv_dir/.installed-$(basename "$lockfile" .txt)"
    wanted_stamp="$(cat "$lockfile" "$repo_root/requirements/pip.txt" \
        "$repo_root/requirements/build.txt" "$repo_root/pyproject.toml" \
        | sha256sum | cut -d' ' -f1) $("$venv_dir/bin/python" -VV | tr -s ' ' '_')"
    if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$wanted_stamp" ]; then
        return 0
    fi

    echo "==> installing $1 into $venv_dir" >&2
    rm -f "$stamp_file"
    # The interpreter's bundled pip may be old (Python 3.11 ships pip 23, which refuses some
    # hash-pinned lockfiles that name extras); a hash-pinned current pip is installed first.
    venv_pip install --quiet --require-hashes -r "$repo_root/requirements/pip.txt"
    # The build backend (hatchling) is pinned too, so the editable install needs no unpinned
    # download and no build isolation.
    venv_pip install --quiet --require-hashes -r "$repo_root/requirements/build.txt" -r "$lockfile"
    venv_pip install --quiet --no-deps --no-build-isolation -e "$repo_root"
    echo "$wanted_stamp" >"$stamp_file"
}
