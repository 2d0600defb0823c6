# tap.sh: TAP helpers shared by the shell test runners (sourced, not run).
# Sets up a scratch directory $tmp, removed on exit, and:
#   point OK|1|FAIL|0 desc [cmd]  one TAP point; a failure prints the command
#                                 to re-run (cmd, else $cmd) and the end of
#                                 $tmp/out and $tmp/err
#   t EXPR...                     prints 1 if the test(1) expression holds
#   finish                        prints the plan and sets the exit status
n=0
fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

point() {
    n=$((n + 1))
    case $1 in
    1 | OK) echo "ok $n - $2" ;;
    *)
        fails=$((fails + 1))
        echo "not ok $n - $2"
        rerun=${3:-${cmd:-}}
        [ -n "$rerun" ] && echo "# re-run: $rerun"
        for f in "$tmp/out" "$tmp/err"; do
            [ -s "$f" ] && sed 's/^/#   /' "$f"
        done | tail -15
        ;;
    esac
}

t() { [ "$@" ] && echo 1 || echo 0; }

finish() {
    echo "1..$n"
    [ "$fails" -eq 0 ]
}
