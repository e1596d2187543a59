# Sourced by the set-up scripts: debian_mirror prints the first mirror URI that serves the release's main suite
# ($codename), read from the machine's own deb822 or one-line apt sources, so no registry host is written here.

debian_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v suite="$codename" '
            /^URIs:/ { uri = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) found = 1 }
            /^$/ { if (found && uri != "") { print uri; exit } uri = ""; found = 0 }
            END { if (found && uri != "") print uri }' "$f"
    done | head -n 1
    if [ -f /etc/apt/sources.list ]; then
        awk -v suite="$codename" '$1 == "deb" && $3 == suite { print $2; exit }' /etc/apt/sources.list
    fi
}
