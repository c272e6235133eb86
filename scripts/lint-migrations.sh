#!/usr/bin/env bash
# Lints every migration with squawk (PostgreSQL migration linter), pinned,
# from PyPI into .local/venv (git-ignored). The rules left out everywhere,
# and why, are in .squawk.toml; the ones left out here are below.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
squawk_version=2.70.0
venv="$root/.local/venv"
squawk="$venv/bin/squawk"

if ! "$squawk" --version 2>/dev/null | grep -q "$squawk_version"; then
    command -v python3 >/dev/null || { echo "lint-migrations: python3 is missing: install it (apt-get install python3 python3-venv)." >&2; exit 1; }
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv" || { echo "lint-migrations: could not create a virtualenv: install python3-venv." >&2; exit 1; }
    "$venv/bin/pip" install --quiet "squawk-cli==$squawk_version"
fi

# A down.sql exists to remove what its up.sql created; it only runs when
# someone reverts on purpose (`conduit migrate revert`, `make redo`).
down_rules=ban-drop-table,ban-drop-function,ban-drop-column

# Applied migrations cannot be edited (their checksum is checked at boot),
# so an accepted finding in one is left out here, for that file alone.
declare -A file_rules=(
    # shard is CHECKed to 0..15: a bigint would only be wider.
    [migrations/003_article_count/up.sql]=prefer-bigint-over-smallint
    # The unique index must be built in the transaction of the check that
    # lists conflicting names, or a conflicting pair could slip in between
    # (and a failed CONCURRENTLY build leaves an invalid index behind). It
    # blocks writes to users (registrations, profile edits) only while it
    # builds: seconds even at a million accounts; reads go on.
    [migrations/005_username_unique_any_case/up.sql]=require-concurrent-index-creation
    # Reverting happens on purpose, off-peak; the drop is instant.
    [migrations/005_username_unique_any_case/down.sql]=require-concurrent-index-deletion
    # IF NOT EXISTS would let a rerun skip an INVALID index that a failed
    # concurrent build left behind; failing on it instead tells the
    # operator to drop it (DROP INDEX CONCURRENTLY) and migrate again.
    [migrations/009_article_tags_tag_created_at_index/up.sql]=prefer-robust-stmts
    # The indexes are on columns the same transaction adds, NULL in every
    # row, so each build is one scan with nothing to sort; the ALTER holds
    # the table's lock until commit anyway. Built concurrently, a later
    # migration would run while servers write keys without their indexes.
    [migrations/012_user_identity_keys/up.sql]=require-concurrent-index-creation
)

# A rule given with --exclude replaces the config's list instead of adding
# to it: repeat that list (its quoted rule names) whenever a file needs more.
everywhere=$(grep -oE '^\s*"[a-z-]+"' .squawk.toml | tr -d ' "' | paste -sd, -)

status=0
for dir in migrations/*/; do
    dir=${dir%/}
    in_transaction=(--assume-in-transaction)
    # diesel runs a migration in a transaction unless its metadata says not.
    if grep -Eqs '^\s*run_in_transaction\s*=\s*false' "$dir/metadata.toml"; then
        in_transaction=()
    fi
    for file in "$dir/up.sql" "$dir/down.sql"; do
        [ -f "$file" ] || continue
        excluded=$everywhere
        [ -n "${file_rules[$file]:-}" ] && excluded="$excluded,${file_rules[$file]}"
        [ "${file##*/}" = down.sql ] && excluded="$excluded,$down_rules"
        "$squawk" --config .squawk.toml "${in_transaction[@]}" --exclude="$excluded" \
            --reporter gcc "$file" || status=1
    done
done
[ "$status" = 0 ] && echo "squawk: migrations/ is clean"
exit "$status"
