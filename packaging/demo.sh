#!/usr/bin/env bash
# The main job, end to end on loopback: a hub and two site tablets; the network
# goes down and both sites keep screening, randomizing and dispensing; the
# network comes back, everything reconciles, and an inspector checks it; back
# online, site 101 randomizes down to its trigger and the hub resupplies it.
# Called by 'packaging/dev.sh demo [--no-wait]' with the build directory.
# It ends by printing the hub dashboard's URL: the hub (its dashboard at /)
# and site 101's tablet keep running for a look in a browser until Ctrl-C;
# --no-wait stops them and exits instead (CTest runs that). Every check is an assertion: any failed step exits non-zero.
# Data stays in ${IRT_DEMO_DIR:-/tmp/irt-demo}; the ports are the first free
# ones from ${IRT_DEMO_PORT:-18443} on ('random': from a random port below
# Linux's ephemeral range, so that demos run side by side rarely meet).
set -euo pipefail
usage="usage: demo.sh BUILD_DIR [--no-wait]"
build=${1:?$usage}
wait_at_end=1
case "${2:-}" in
  "") ;;
  --no-wait) wait_at_end=0 ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")/.." && pwd)
hub_bin="$build/hub/irt-hub"
node_bin="$build/node/irt-node"
work=${IRT_DEMO_DIR:-/tmp/irt-demo}
export IRT_PASSPHRASE="demo passphrase for the site tablets"
export IRT_HUB_PASSPHRASE="demo passphrase for the hub's keys"  # every irt-hub command of the demo unlocks with it
started=$SECONDS

step() { printf '\n== %s\n' "$*"; }
fail() { echo "demo: FAILED: $*" >&2; exit 1; }
show() { printf '%s ' "$1"; jq -c "$3" <<<"$2"; }  # LABEL JSON FILTER: one line; a bad answer fails the demo
for tool in curl jq sqlite3; do
  command -v "$tool" >/dev/null || fail "$tool is missing; 'packaging/dev.sh deps' installs it"
done
for bin in "$hub_bin" "$node_bin"; do
  [ -x "$bin" ] || fail "$bin is missing; run 'packaging/dev.sh build'"
done

# A previous demo's directory is replaced; anything else is left alone.
if [ -e "$work" ] && [ ! -d "$work/hub" ] && [ -n "$(ls -A "$work" 2>/dev/null)" ]; then
  fail "$work exists and is not a demo directory; set IRT_DEMO_DIR to another place"
fi
rm -rf "$work"
mkdir -p "$work"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port_from() { local p=$1; while port_in_use "$p"; do p=$((p + 1)); done; echo "$p"; }
base_port=${IRT_DEMO_PORT:-18443}
[ "$base_port" != random ] || base_port=$((20000 + RANDOM % 12000))
hub_port=$(free_port_from "$base_port")
tablet_port[101]=$(free_port_from $((hub_port + 1)))
tablet_port[102]=$(free_port_from $((tablet_port[101] + 1)))
hub_url="http://127.0.0.1:$hub_port"

# ---- processes: the hub and the tablets, stopped on every exit
hub_pid=""
declare -A tablet_pid=()
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
cleanup() {
  for site in "${!tablet_pid[@]}"; do stop "${tablet_pid[$site]}"; done
  [ -z "$hub_pid" ] || stop "$hub_pid"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_http() {  # URL PID LOG: until URL answers, or fail if PID died
  for _ in $(seq 300); do
    curl -s -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || fail "the process behind $1 exited; see $3"
    sleep 0.1
  done
  fail "$1 did not answer within 30 s; see $3"
}
hub() { "$hub_bin" "$1" --data "$work/hub" "${@:2}"; }
admin=ada.admin admin_pass=admin-pass-1234  # the hub's first user (role admin), who adds the others
add_user() { printf '%s\n%s\n' "$admin_pass" "$4" | "$hub_bin" user add --data "$work/hub" --user "$admin" --name "$1" --role "$2" --sites "$3"; }
as_admin() { echo "$admin_pass" | hub "$@"; }  # a hub command acting (--user) or reading (--reader) as the admin
start_hub() {
  "$hub_bin" serve --data "$work/hub" --listen "127.0.0.1:$hub_port" --http >>"$work/hub.log" 2>&1 &
  hub_pid=$!
  wait_for_http "$hub_url/sync/v1/checkpoint" "$hub_pid" "$work/hub.log"
}
stop_hub() { stop "$hub_pid"; hub_pid=""; }
start_tablet() {  # SITE: irt-node serve with the web UI and the API
  local site=$1
  "$node_bin" serve --data "$work/node-$site" --listen "127.0.0.1:${tablet_port[$site]}" --sync-interval 5 \
    >>"$work/node-$site.log" 2>&1 &
  tablet_pid[$site]=$!
  wait_for_http "http://127.0.0.1:${tablet_port[$site]}/" "${tablet_pid[$site]}" "$work/node-$site.log"
}
stop_tablet() { stop "${tablet_pid[$1]}"; unset "tablet_pid[$1]"; }

# ---- the node API: answers on stdout; anything but 2xx fails the demo
request() {  # SITE TOKEN METHOD PATH [JSON]: the answer, then its HTTP status on a line of its own
  curl -sS -X "$3" -H "Authorization: Bearer $2" -H 'Content-Type: application/json' ${5:+--data "$5"} \
    -w '\n%{http_code}' "http://127.0.0.1:${tablet_port[$1]}/api/v1$4" || fail "site $1's tablet did not answer $3 $4"
}
api() {  # SITE TOKEN METHOD PATH [JSON]
  local out
  out=$(request "$@")
  [[ ${out##*$'\n'} == 2?? ]] || fail "site $1: $3 $4 answered ${out##*$'\n'}: ${out%$'\n'*}"
  printf '%s\n' "${out%$'\n'*}"
}
refused() {  # SITE TOKEN METHOD PATH JSON: must be refused with a 4xx; prints the message
  local out
  out=$(request "$@")
  [[ ${out##*$'\n'} == 4?? ]] || fail "site $1: $3 $4 should have been refused but answered ${out##*$'\n'}: ${out%$'\n'*}"
  jq -r '"refused (\(.error.code)): \(.error.message)"' <<<"${out%$'\n'*}"
}
login() {  # SITE USER PASSWORD: prints a session token
  api "$1" "" POST /login "{\"user\":\"$2\",\"password\":\"$3\"}" | jq -er .token
}
assert_blinded() {  # JSON WHO: a blinded role sees no arm, kit type or lot, not even by name
  local leaks
  leaks=$(jq -r '[.. | objects | keys[] | select(IN("arm", "kit_type", "kit_type_name", "lot"))] | unique | join(", ")' <<<"$1")
  if [ -n "$leaks" ] || grep -qE 'Velcardin|Placebo|VLC25|PBO' <<<"$1"; then
    fail "$2 revealed the allocation (fields: ${leaks:-none}): $1"
  fi
}
receive_shipment() {  # SITE TOKEN: every kit of the initial shipment, in good condition
  local shipments shipment kits inventory
  shipments=$(api "$1" "$2" GET /shipments)
  shipment=$(jq -er '.shipments[0].shipment' <<<"$shipments") || fail "site $1 has no shipment announced"
  kits=$(jq -c '{kits: [.shipments[0].kits[] | {kit, condition: "received"}]}' <<<"$shipments")
  api "$1" "$2" POST "/shipments/$shipment/receive" "$kits" >/dev/null
  inventory=$(api "$1" "$2" GET /inventory)
  show "site $1 received shipment $shipment kit by kit:" "$inventory" .by_status
}
screen() {  # SITE TOKEN DIABETES: prints the new participant's number
  api "$1" "$2" POST /participants \
    "{\"factors\":{\"diabetes\":\"$3\"},\"eligibility\":[\"yes\",\"yes\",\"yes\",\"yes\",\"yes\"]}" |
    jq -er .participant.participant
}
randomize() {  # SITE TOKEN PASSWORD PARTICIPANT: as a blinded coordinator, with the e-signature
  local answer
  answer=$(api "$1" "$2" POST "/participants/$4/randomize" "{\"signature_password\":\"$3\"}")
  assert_blinded "$answer" "the coordinator's randomization of $4"
  jq -r '"\(.participant.participant) randomized: \(.randomization_number), kit(s) \([.kits[] | "\(.kit) (\(.label))"] | join(", "))"' \
    <<<"$answer"
}
free_slots() {  # SITE TOKEN STRATUM-PART: free randomization slots of the matching stratum
  api "$1" "$2" GET /status | jq -er --arg s "$3" '[.slots_left[] | select(.stratum | contains($s)) | .free] | add'
}

step "The study: check it, and see what amendment 2 changes"
"$hub_bin" check-study "$here/packaging/examples/study-blocks.json"
"$hub_bin" diff-study "$here/packaging/examples/study-blocks.json" "$here/packaging/examples/study-blocks-v2.json"

step "Set up the hub: keys, TLS identity, database, study, users"
hub init --study "$here/packaging/examples/study-blocks.json" --kdf-cost interactive
echo "$admin_pass" | "$hub_bin" user add --data "$work/hub" --name "$admin" --role admin
add_user ana.coordinator coordinator 101 coordinator-101-pass
add_user chen.pharmacist pharmacist 101 pharmacist-101-pass
add_user ben.coordinator coordinator 102 coordinator-102-pass
add_user mia.monitor monitor "" monitor-central-pass
add_user lee.investigator investigator 101 investigator-101-pass
add_user ines.manager study-manager "" manager-pass-123
add_user uma.statistician unblinded-statistician "" statistician-pass-123
fingerprint=$(hub fingerprint)
echo "hub certificate fingerprint: $fingerprint"
start_hub

step "Enroll a node at site 101 and one at site 102 (one-time tokens)"
echo "(each node receives the study, its users, participant numbers, randomization slots and its initial shipment)"
for site in 101 102; do
  token=$(as_admin invite --site "$site" --user "$admin" 2>/dev/null)
  echo "$token" | "$node_bin" enroll --data "$work/node-$site" --hub "$hub_url" \
    --hub-fingerprint "$fingerprint" --kdf-cost interactive
done

step "The network goes down; both sites keep working"
stop_hub
echo "coordinator-102-pass" | "$node_bin" note --data "$work/node-102" --user ben.coordinator \
  --text "Courier delayed by snow; hub unreachable since this morning"
start_tablet 101
start_tablet 102
echo "site 101's tablet: http://127.0.0.1:${tablet_port[101]}/   site 102's tablet: http://127.0.0.1:${tablet_port[102]}/"

step "Site 101, offline: the pharmacist receives the shipment; the coordinator screens and randomizes"
pharmacist=$(login 101 chen.pharmacist pharmacist-101-pass)
coordinator=$(login 101 ana.coordinator coordinator-101-pass)
receive_shipment 101 "$pharmacist"
slots_before=$(free_slots 101 "$coordinator" "diabetes=no")
echo "free randomization slots at site 101 for participants without diabetes: $slots_before"
echo "a busy day: participants without diabetes randomized until the slice runs low (each with an e-signature):"
randomized=()
while true; do
  free=$(free_slots 101 "$coordinator" "diabetes=no")
  ((free > 1)) || break
  ((${#randomized[@]} < 6)) || fail "site 101 still has $free free slots after 6 randomizations; the slice is not what the study sizes"
  participant=$(screen 101 "$coordinator" no)
  randomize 101 "$coordinator" coordinator-101-pass "$participant"
  randomized+=("$participant")
done
slots_low=$(free_slots 101 "$coordinator" "diabetes=no")
echo "free slots left at site 101 for that stratum: $slots_low"
first=${randomized[0]}

step "Blinded and unblinded, side by side (site 101, still offline)"
coordinator_view=$(api 101 "$coordinator" GET "/participants/$first")
assert_blinded "$coordinator_view" "the coordinator's view of $first"
pharmacist_view=$(api 101 "$pharmacist" GET "/participants/$first")
jq -e '.arm.id' <<<"$pharmacist_view" >/dev/null || fail "the unblinded pharmacist's view of $first carries no arm"
show "coordinator (blinded): " "$coordinator_view" \
  '{participant, randomization_number, kits: [.visits[].kits[] | {kit, label: .label}]}'
show "pharmacist (unblinded):" "$pharmacist_view" \
  '{participant, randomization_number, arm: .arm.name, kits: [.visits[].kits[] | {kit, kit_type_name}]}'

step "Site 101, offline: participant $first is back for the Week 4 visit (V2) and gets the next kit"
echo "(the demo runs on one day, so V2 is early: the tablet refuses, then records a deviation with an e-signature)"
refused 101 "$coordinator" POST "/participants/$first/dispense" '{"visit":"V2"}'
dispensed=$(api 101 "$coordinator" POST "/participants/$first/dispense" \
  '{"visit":"V2","override_reason":"participant travels during the Week 4 window; visit brought forward","signature_password":"coordinator-101-pass"}')
assert_blinded "$dispensed" "the coordinator's dispensing to $first"
jq -e '.deviation' <<<"$dispensed" >/dev/null || fail "the early V2 dispensing was not recorded as a deviation"
show "dispensed at V2:" "$dispensed" '{kits: [.kits[] | {kit, label: .label}], deviation}'
pharmacist_view=$(api 101 "$pharmacist" GET "/participants/$first")
jq -e '.arm.id as $arm | [.visits[].kits[] | .arm.id == $arm] | length == 2 and all' <<<"$pharmacist_view" >/dev/null ||
  fail "$first's kits are not all of the participant's arm: $pharmacist_view"
show "the pharmacist checks V1 and V2 against the arm:" "$pharmacist_view" \
  '{arm: .arm.name, kits: [.visits[] | {visit, kit: .kits[0].kit, kit_type_name: .kits[0].kit_type_name}]}'

step "Site 101, offline: an emergency code break for participant $first (the investigator, with an e-signature)"
investigator=$(login 101 lee.investigator investigator-101-pass)
code_break=$(api 101 "$investigator" POST "/participants/$first/unblind" \
  '{"reason":"suspected anaphylaxis; the treating physician needs the allocation","signature_password":"investigator-101-pass"}')
jq -e '.code_break == true and .arm.id' <<<"$code_break" >/dev/null || fail "the code break for $first gave no arm: $code_break"
echo "the tablet shows the investigator the arm and tells the site the code break is reported to the central team"
arm_name=$(jq -r '.arm.name' <<<"$pharmacist_view")

step "Site 102, offline: the coordinator receives the shipment, screens and randomizes"
ben=$(login 102 ben.coordinator coordinator-102-pass)
receive_shipment 102 "$ben"
participant=$(screen 102 "$ben" yes)
randomize 102 "$ben" coordinator-102-pass "$participant"

step "Both tablets know they are offline and keep every event for the hub"
for site in 101 102; do
  token=$([ "$site" = 101 ] && echo "$coordinator" || echo "$ben")
  status=$(api "$site" "$token" GET /status)
  jq -e '.online == false and .pending_events > 0' <<<"$status" >/dev/null ||
    fail "site $site's tablet should be offline with events pending: $status"
  show "site $site:" "$status" '{online, pending_events, last_sync_ms}'
done
echo "the day ends; the tablets are closed"
stop_tablet 101
stop_tablet 102
set +e
"$node_bin" sync --data "$work/node-101"
rc=$?
set -e
((rc == 3)) || fail "irt-node sync with the hub down should exit 3 (unreachable), got $rc"
echo "(irt-node sync exit code while offline: $rc; nothing is lost)"

step "The network is back: reconcile"
start_hub
for site in 101 102; do
  "$node_bin" sync --data "$work/node-$site"
  pending=$("$node_bin" status --data "$work/node-$site" | jq -er .pending_events)
  ((pending == 0)) || fail "site $site still has $pending events the hub has not acknowledged"
done

step "What an inspector checks"
"$node_bin" verify --data "$work/node-101"
"$node_bin" verify --data "$work/node-102"
hub verify
as_admin nodes --reader "$admin"
alerts=$(as_admin alerts --json --reader "$admin")
jq -e 'length == 0' <<<"$alerts" >/dev/null || fail "the hub raised alerts: $alerts"
echo "no open alerts"
echo "the randomizations made offline, as the hub recorded them:"
sqlite3 -readonly -header -column "$work/hub/hub.db" \
  "SELECT participant, node_id AS node, randomization_number, datetime(recorded_ms / 1000, 'unixepoch') AS recorded_utc
   FROM hub_allocations ORDER BY participant"
at_hub=$(sqlite3 -readonly "$work/hub/hub.db" "SELECT count(*) FROM hub_allocations")
((at_hub == ${#randomized[@]} + 1)) || fail "the hub recorded $at_hub randomizations, the sites made $((${#randomized[@]} + 1))"

step "The code break and the early visit reach the central team as deviations"
deviations=$(echo "manager-pass-123" | hub deviations --json --open --reader ines.manager)
jq -e --arg p "$first" 'any(.[]; .kind == "code_break" and (.summary | contains($p)))' <<<"$deviations" >/dev/null ||
  fail "the code break at site 101 is not a deviation at the hub: $deviations"
jq -e 'any(.[]; .kind == "visit_window")' <<<"$deviations" >/dev/null ||
  fail "the early V2 dispensing is not a deviation at the hub: $deviations"
grep -qF "$arm_name" <<<"$deviations" && fail "the blinded list of deviations names the arm: $deviations"
echo "manager-pass-123" | hub deviations --open --reader ines.manager
echo "the same list for an unblinded reader (uma.statistician) shows the arm of the code break:"
echo "statistician-pass-123" | hub deviations --open --reader uma.statistician | grep code_break
id=$(jq -r 'first(.[] | select(.kind == "code_break")) | .id' <<<"$deviations")
echo "manager-pass-123" | "$hub_bin" deviations acknowledge --data "$work/hub" --id "$id" --user ines.manager \
  --comment "medical monitor informed; code break justified by the adverse event"
echo "the site nodes as the central team sees them:"
as_admin nodes --node 101-N1 --reader "$admin"

echo "signed tree head:"
curl -sf "$hub_url/sync/v1/checkpoint"
echo

step "The central team logs in to the hub's API (/api/v1) and reads the audit trail of $first"
hub_api() {  # TOKEN METHOD PATH [JSON]: the hub API's answer; anything but 2xx fails the demo
  curl -sSf -X "$2" -H "Authorization: Bearer $1" -H 'Content-Type: application/json' ${4:+--data "$4"} \
    "$hub_url/api/v1$3" || fail "the hub's API refused $2 $3"
}
monitor=$(hub_api "" POST /login '{"user":"mia.monitor","password":"monitor-central-pass"}' | jq -er .token)
show "logged in at the hub as" "$(hub_api "$monitor" GET /me)" '{user, role, blinded, permissions}'
trail=$(hub_api "$monitor" GET "/audit?object=$first")
assert_blinded "$trail" "the hub's audit trail, read by the blinded monitor"
jq -r '.entries[] | "\(.at)  \(.user) at node \(.node_id) (site \(.site_id)): \(.action) \(.object)\(if .withheld then "  [allocation withheld]" else "" end)"' <<<"$trail"
jq -e '[.entries[] | select(.source == "node")] | length >= 2' <<<"$trail" >/dev/null ||
  fail "the hub's audit trail holds no site event of $first: $trail"
hub_api "$monitor" POST /logout "{}" >/dev/null

step "Amendment 2: a study manager signs it at the hub; each node moves to it at its next sync"
add_user sam.manager study-manager "" study-manager-pass
amendment=(--study "$here/packaging/examples/study-blocks-v2.json" --user sam.manager
           --reason "Protocol amendment 1: site 103 joins, Week 8 window widened")
echo "study-manager-pass" | hub amend "${amendment[@]}" --dry-run
echo "study-manager-pass" | hub amend "${amendment[@]}"
echo "study-manager-pass" | hub study-versions --reader sam.manager
for site in 101 102; do
  before=$("$node_bin" status --data "$work/node-$site" | jq -er .study_version)
  ((before == 1)) || fail "site $site should still be on study version 1 before its sync, not $before"
  "$node_bin" sync --data "$work/node-$site" >/dev/null
  after=$("$node_bin" status --data "$work/node-$site" | jq -er .study_version)
  ((after == 2)) || fail "site $site did not move to study version 2 at its sync (it is on $after)"
  echo "site $site: study version $before before its sync, $after after"
done
as_admin invite --site 103 --user "$admin" >/dev/null 2>&1 || fail "site 103, added by the amendment, cannot be invited"
echo "site 103, added by the amendment, can be invited at once"

step "Site 101's tablet is back online, its slice topped up by the hub"
start_tablet 101
coordinator=$(login 101 ana.coordinator coordinator-101-pass)
slots_after=$(free_slots 101 "$coordinator" "diabetes=no")
((slots_after > slots_low)) || fail "the hub did not top up site 101's slots ($slots_low free before, $slots_after after)"
echo "free slots for participants without diabetes: $slots_before at enrollment, $slots_low after the offline day, $slots_after now"
status=$(api 101 "$coordinator" GET /status)
show "site 101:" "$status" '{online, pending_events, kits}'

step "A fridge fails at site 101: its kits are quarantined on the tablet, then released at the hub"
pharmacist=$(login 101 chen.pharmacist pharmacist-101-pass)
fridge=$(api 101 "$pharmacist" GET "/inventory?status=available" | jq -c '[.kits[0:2][].kit]')
[ "$(jq length <<<"$fridge")" = 2 ] || fail "site 101 has fewer than 2 kits in stock: $fridge"
api 101 "$pharmacist" POST /kits/location "{\"kits\":$fridge,\"location\":\"FRIDGE-1\"}" >/dev/null
excursion=$(api 101 "$pharmacist" POST /excursions \
  '{"location":"FRIDGE-1","minimum_celsius":6.5,"maximum_celsius":13.5,"duration_minutes":95,"reason":"fridge door left ajar"}')
show "excursion reported for FRIDGE-1, quarantined:" "$excursion" '.quarantined'
add_user sol.supply supply-manager "" supply-pass-123
quarantined=""
for _ in $(seq 100); do  # the tablet syncs every 5 s
  quarantined=$(echo "supply-pass-123" | hub quarantine --json --reader sol.supply)
  [ "$(jq length <<<"$quarantined")" = 2 ] && break
  sleep 0.3
done
[ "$(jq length <<<"$quarantined")" = 2 ] || fail "the hub did not learn of the excursion: $quarantined"
echo "supply-pass-123" | hub quarantine --reader sol.supply
release=(--data "$work/hub" --reason "excursion within the stability data" --user sol.supply)
for kit in $(jq -r '.[]' <<<"$fridge"); do release+=(--kit "$kit"); done
echo "supply-pass-123" | "$hub_bin" quarantine release "${release[@]}"
kit=$(jq -r '.[0]' <<<"$fridge")
status=""
for _ in $(seq 100); do
  status=$(api 101 "$pharmacist" GET "/inventory?kit=$kit" | jq -r '.kits[0].status')
  [ "$status" = available ] && break
  sleep 0.3
done
[ "$status" = available ] || fail "site 101 did not apply the hub's release of kit $kit (it is $status)"
echo "site 101's tablet applied the release at its sync: kit $kit is $status again"

step "Resupply: site 101 randomizes down to its trigger; the hub ships more at the tablet's next sync"
resupplies() { api 101 "$coordinator" GET /shipments | jq '[.shipments[] | select(.kind == "resupply")] | length'; }
for i in $(seq 8); do
  (($(resupplies) == 0)) || break
  diabetes=$( ((i % 2)) && echo yes || echo no)
  participant=$(screen 101 "$coordinator" "$diabetes")
  randomize 101 "$coordinator" coordinator-101-pass "$participant"
  for _ in $(seq 20); do (($(resupplies) == 0)) || break; sleep 0.5; done  # the tablet syncs every 5 s
done
shipments=$(api 101 "$coordinator" GET /shipments)
assert_blinded "$shipments" "the coordinator's list of shipments"
jq -e 'any(.shipments[]; .kind == "resupply")' <<<"$shipments" >/dev/null ||
  fail "site 101 reached its trigger but no resupply arrived: $shipments"
show "site 101's resupply, announced to the site (kit numbers and labels only):" "$shipments" \
  '[.shipments[] | select(.kind == "resupply") | {shipment, kind, shipped_on, kits: (.kits | length)}]'
sqlite3 -readonly -header -column "$work/hub/hub.db" \
  "SELECT shipment_id, kind, node_id, depot_id, kits, shipped_on FROM hub_shipments ORDER BY id"

step "The central team's dashboard reads the same API: blinded for the study manager, not for the statistician"
# Read whole, then searched: 'curl | grep -q' fails under pipefail when grep
# stops reading before curl has written the page (curl then exits 23).
dashboard_page=$(curl -sf "$hub_url/") || fail "the hub serves no dashboard at $hub_url/"
grep -q '/web/app.js' <<<"$dashboard_page" || fail "the hub's page at $hub_url/ does not load the dashboard's script"
manager=$(hub_api "" POST /login '{"user":"ines.manager","password":"manager-pass-123"}' | jq -er .token)
enrollment=$(hub_api "$manager" GET /dashboard/enrollment)
assert_blinded "$enrollment" "the dashboard's enrollment, read by the blinded study manager"
show "enrollment:" "$enrollment" '{randomized, by_site: (.actual.site | map_values(map(select(. != null)) | last))}'
assert_blinded "$(hub_api "$manager" GET /dashboard/inventory)" "the dashboard's inventory, read by the blinded study manager"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $manager" "$hub_url/api/v1/dashboard/allocation")
[ "$code" = 403 ] || fail "the blinded study manager got the allocation balance (HTTP $code)"
statistician=$(hub_api "" POST /login '{"user":"uma.statistician","password":"statistician-pass-123"}' | jq -er .token)
show "allocation balance (unblinded statistician):" "$(hub_api "$statistician" GET /dashboard/allocation)" \
  '{overall, strata: [.strata[] | {stratum, counts}]}'

step "Done in $((SECONDS - started)) s: data in $work (hub log: $work/hub.log)"
echo "The hub's dashboard: $hub_url/"
((wait_at_end)) || exit 0
cat <<EOF
The hub and site 101's tablet are running.
Open the hub's dashboard at $hub_url/ and log in as
  ines.manager / manager-pass-123              (study manager, blinded: enrollment, inventory, nodes, deviations)
  uma.statistician / statistician-pass-123     (unblinded: the allocation balance too)
Open site 101's tablet at http://127.0.0.1:${tablet_port[101]}/ and log in as
  ana.coordinator / coordinator-101-pass   (blinded: kit numbers and labels, never an arm)
  chen.pharmacist / pharmacist-101-pass    (unblinded: arms and kit types in the inventory)
Press Ctrl-C to stop.
EOF
trap 'exit 0' INT TERM
wait "$hub_pid"
