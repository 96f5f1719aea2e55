#!/bin/sh
# One-shot provisioning for the compose demo fleet (docker-compose.yml, service `provision`):
# creates the `admin` operator (password from SOVD_HUB_PASSWORD) and registers
# FLEET_SIZE simulated vehicles with `sovd-hub vehicle add`, writing their VINs and tokens
# to $FLEET_FILE ({"vehicles": [{"vin": ..., "token": ...}]}) for `python -m bench.simulator`.
# Runs once: when the fleet file exists it does nothing (tokens are shown only when issued).
set -eu

FLEET_FILE=${FLEET_FILE:-/fleet/fleet.json}
FLEET_SIZE=${FLEET_SIZE:-20}

if [ -s "$FLEET_FILE" ]; then
    echo "provision: $FLEET_FILE exists; nothing to do"
    exit 0
fi

if ! sovd-hub user add admin --role admin; then
    echo "provision: could not add user admin (it may exist from an earlier run); continuing" >&2
fi

tmp="$FLEET_FILE.tmp"
printf '{"vehicles": [' >"$tmp"
i=1
while [ "$i" -le "$FLEET_SIZE" ]; do
    vin=$(printf '1SVDHB%011d' "$i")
    # `vehicle add` prints a line, then the token (shown only now) as its last line.
    if ! output=$(sovd-hub vehicle add "$vin" --make Simulated --model Compose --year 2026); then
        echo "provision: registering $vin failed; if the database holds vehicles from an" \
            "earlier run whose fleet file is gone, start over with \`docker compose down -v\`" >&2
        rm -f "$tmp"
        exit 1
    fi
    token=$(printf '%s\n' "$output" | tail -n 1)
    [ "$i" -gt 1 ] && printf ',' >>"$tmp"
    printf '\n {"vin": "%s", "token": "%s"}' "$vin" "$token" >>"$tmp"
    i=$((i + 1))
done
printf '\n]}\n' >>"$tmp"
mv "$tmp" "$FLEET_FILE"
echo "provision: $FLEET_SIZE vehicles written to $FLEET_FILE"
