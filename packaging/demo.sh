#!/usr/bin/env bash
# The main job, end to end on loopback: a hub, two site nodes, a day offline,
# reconciliation, and the checks an inspector would run. Called by
# 'packaging/dev.sh demo' with the build directory; leaves its data in
# ${IRT_DEMO_DIR:-/tmp/irt-demo} for a look afterwards.
set -euo pipefail
build=${1:?usage: demo.sh BUILD_DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
hub_bin="$build/hub/irt-hub"
node_bin="$build/node/irt-node"
work=${IRT_DEMO_DIR:-/tmp/irt-demo}
port=${IRT_DEMO_PORT:-18443}
export IRT_PASSPHRASE="demo passphrase for the site tablets"

step() { printf '\n== %s\n' "$*"; }
hub() { "$hub_bin" "$1" --data "$work/hub" "${@:2}"; }
add_user() { echo "$4" | "$hub_bin" user add --data "$work/hub" --name "$1" --role "$2" --sites "$3"; }

rm -rf "$work"
mkdir -p "$work"
hub_pid=""
cleanup() { [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null || true; }
trap cleanup EXIT

start_hub() {
  "$hub_bin" serve --data "$work/hub" --listen "127.0.0.1:$port" --http >>"$work/hub.log" 2>&1 &
  hub_pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/sync/v1/checkpoint" >/dev/null && return 0
    sleep 0.1
  done
  echo "the hub did not start; see $work/hub.log" >&2
  exit 1
}
stop_hub() { kill "$hub_pid"; wait "$hub_pid" 2>/dev/null || true; hub_pid=""; }

step "The study: check it, and see what amendment 2 changes"
"$hub_bin" check-study "$here/packaging/examples/study-blocks.json"
"$hub_bin" diff-study "$here/packaging/examples/study-blocks.json" "$here/packaging/examples/study-blocks-v2.json"

step "Set up the hub: keys, TLS identity, database, study"
hub init --study "$here/packaging/examples/study-blocks.json"
add_user ana.coordinator coordinator 101 coordinator-101-pass
add_user ben.coordinator coordinator 102 coordinator-102-pass
add_user chen.pharmacist pharmacist 101 pharmacist-101-pass
fingerprint=$(hub fingerprint)
echo "hub certificate fingerprint: $fingerprint"
start_hub

step "Enroll a node at site 101 and one at site 102 (one-time tokens)"
for site in 101 102; do
  token=$(hub invite --site "$site" 2>/dev/null)
  "$node_bin" enroll --data "$work/node-$site" --hub "http://127.0.0.1:$port" --token "$token" \
    --hub-fingerprint "$fingerprint" --kdf-cost interactive
done

step "The network goes down; both sites keep working"
stop_hub
echo "coordinator-101-pass" | "$node_bin" note --data "$work/node-101" --user ana.coordinator \
  --text "Fridge 2 temperature log checked, 4.1 C"
echo "coordinator-102-pass" | "$node_bin" note --data "$work/node-102" --user ben.coordinator \
  --text "Courier delayed by snow; next delivery Thursday"
set +e
"$node_bin" sync --data "$work/node-101"
rc=$?
set -e
echo "(irt-node sync exit code while offline: $rc; nothing is lost)"

step "The network is back: reconcile"
start_hub
"$node_bin" sync --data "$work/node-101"
"$node_bin" sync --data "$work/node-102"

step "What an inspector checks"
"$node_bin" verify --data "$work/node-101"
"$node_bin" verify --data "$work/node-102"
hub verify
hub nodes
echo "signed tree head:"
curl -sf "http://127.0.0.1:$port/sync/v1/checkpoint"

step "Site 101's tablet: receive the initial shipment, screen and randomize a participant"
api_port=$((port + 1))
"$node_bin" serve --data "$work/node-101" --listen "127.0.0.1:$api_port" --sync-interval 5 >>"$work/node-101.log" 2>&1 &
node_pid=$!
trap 'cleanup; kill $node_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s "http://127.0.0.1:$api_port/" >/dev/null && break; sleep 0.1; done
api() {  # api TOKEN METHOD PATH [JSON]
  curl -s -X "$2" -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
    ${4:+--data "$4"} "http://127.0.0.1:$api_port/api/v1$3"
}
login() { curl -s -X POST "http://127.0.0.1:$api_port/api/v1/login" --data "{\"user\":\"$1\",\"password\":\"$2\"}" | jq -r .token; }
pharmacist=$(login chen.pharmacist pharmacist-101-pass)
shipment=$(api "$pharmacist" GET /shipments | jq -c '.shipments[0]')
shipment_id=$(jq -r .shipment <<<"$shipment")
kits=$(jq -c '{kits: [.kits[] | {kit: .kit, condition: "received"}]}' <<<"$shipment")
echo "pharmacist receives shipment $shipment_id kit by kit:"
api "$pharmacist" POST "/shipments/$shipment_id/receive" "$kits" | jq -c '.. | .kits_by_status? // empty'
coordinator=$(login ana.coordinator coordinator-101-pass)
participant=$(api "$coordinator" POST /participants \
  '{"factors":{"diabetes":"no"},"eligibility":["yes","yes","yes","yes","yes"]}' | jq -r .participant.participant)
echo "coordinator screened participant $participant; randomizing with an e-signature:"
api "$coordinator" POST "/participants/$participant/randomize" '{"signature_password":"coordinator-101-pass"}' \
  | tee "$work/randomized-coordinator.json" | jq -c '{randomization_number, kits: [.kits[] | {kit: .kit, label: .label}]}'
if grep -qiE '"arm"|Velcardin|Placebo' "$work/randomized-coordinator.json"; then
  echo "the blinded coordinator's answer revealed the allocation" >&2
  exit 1
fi
echo "(the coordinator's answer carries no arm; the unblinded pharmacist sees it:)"
api "$pharmacist" GET "/participants/$participant" | jq -c '{participant, randomization_number, arm}'
kill "$node_pid"; wait "$node_pid" 2>/dev/null || true
"$node_bin" sync --data "$work/node-101"
"$node_bin" verify --data "$work/node-101"
hub verify
hub alerts

step "Done: data in $work (hub log: $work/hub.log)"
