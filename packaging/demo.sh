#!/usr/bin/env bash
# The whole trial, end to end on loopback: a hub, two site tablets and a
# nurse's tablet. The sites receive their shipments kit by kit and randomize
# about 60 participants across strata, resupplied at each sync; the nurse's
# tablet takes kits in custody for home visits; the network goes down and
# every tablet keeps working (a code break, an early visit, home visits, a
# lot put on hold at the hub and dispensed at site 102 before it learns of
# it); the network comes back, the held kits left are rejected, everything
# reconciles, an inspector checks it, amendment 2 reaches every node, a fridge
# fails, and a reconciliation report per node closes the scripted part.
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
for tool in curl jq; do
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

# The tablets, by key: site 101's and site 102's, and the nurse's tablet of site 101.
tablets=(101 102 nurse)
declare -A tablet_name=([101]="site 101's tablet" [102]="site 102's tablet" [nurse]="the nurse's tablet")
declare -A tablet_port=()
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port_from() { local p=$1; while port_in_use "$p"; do p=$((p + 1)); done; echo "$p"; }
base_port=${IRT_DEMO_PORT:-18443}
[ "$base_port" != random ] || base_port=$((20000 + RANDOM % 12000))
hub_port=$(free_port_from "$base_port")
next=$((hub_port + 1))
for t in "${tablets[@]}"; do tablet_port[$t]=$(free_port_from "$next"); next=$((tablet_port[$t] + 1)); done
hub_url="http://127.0.0.1:$hub_port"

# The demo's clock: a simulated week passes while site 102 is offline. Every
# hub and node process starts through it: on the real clock, or, for site
# 102's tablet on day N of its week (and the nurse's tablet on its home-visit
# day), N days ahead by libfaketime (Debian's faketime package), preloaded by
# env, which execs. Servers start by exec too, so that the PIDs the demo stops
# are the servers' own. (A server with the background sync runs on the real
# clock: under libfaketime its sync rounds do not start.)
faketime_lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n 1)
[ -n "$faketime_lib" ] || fail "libfaketime is missing; 'packaging/dev.sh deps' installs faketime"
clock=()
at_day() {  # DAY: the processes started from now on run DAY days ahead (0: on the real clock)
  if (($1 == 0)); then clock=(); else clock=(env LD_PRELOAD="$faketime_lib" FAKETIME="+$1d" FAKETIME_DONT_FAKE_MONOTONIC=1); fi
}
hub_cli() { "${clock[@]}" "$hub_bin" "$@"; }
node_cli() { "${clock[@]}" "$node_bin" "$@"; }
now_ms() { "${clock[@]}" date +%s%3N; }

# ---- processes: the hub and the tablets, stopped on every exit
hub_pid=""
declare -A tablet_pid=()
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
cleanup() {
  for t in "${!tablet_pid[@]}"; do stop "${tablet_pid[$t]}"; done
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
hub() { hub_cli "$1" --data "$work/hub" "${@:2}"; }
admin=ada.admin admin_pass=admin-pass-1234  # the hub's first user (role admin), who adds the others
add_user() { printf '%s\n%s\n' "$admin_pass" "$4" | hub_cli user add --data "$work/hub" --user "$admin" --name "$1" --role "$2" --sites "$3"; }
as_admin() { echo "$admin_pass" | hub "$@"; }  # a hub command acting (--user) or reading (--reader) as the admin
start_hub() {
  (exec "${clock[@]}" "$hub_bin" serve --data "$work/hub" --listen "127.0.0.1:$hub_port" --http >>"$work/hub.log" 2>&1) &
  hub_pid=$!
  wait_for_http "$hub_url/sync/v1/checkpoint" "$hub_pid" "$work/hub.log"
}
stop_hub() { stop "$hub_pid"; hub_pid=""; }
start_tablet() {  # TABLET: irt-node serve with the web UI and the API
  local t=$1
  (exec "${clock[@]}" "$node_bin" serve --data "$work/node-$t" --listen "127.0.0.1:${tablet_port[$t]}" \
    --sync-interval 5 >>"$work/node-$t.log" 2>&1) &
  tablet_pid[$t]=$!
  wait_for_http "http://127.0.0.1:${tablet_port[$t]}/" "${tablet_pid[$t]}" "$work/node-$t.log"
}
stop_tablet() { stop "${tablet_pid[$1]}"; unset "tablet_pid[$1]"; }
node_status() { node_cli status --data "$work/node-$1"; }  # TABLET: irt-node status, the tablet stopped

# ---- the node API: answers on stdout; anything but 2xx fails the demo
request() {  # TABLET TOKEN METHOD PATH [JSON]: the answer, then its HTTP status on a line of its own
  curl -sS -X "$3" -H "Authorization: Bearer $2" -H 'Content-Type: application/json' ${5:+--data "$5"} \
    -w '\n%{http_code}' "http://127.0.0.1:${tablet_port[$1]}/api/v1$4" || fail "${tablet_name[$1]} did not answer $3 $4"
}
api() {  # TABLET TOKEN METHOD PATH [JSON]
  local out
  out=$(request "$@")
  [[ ${out##*$'\n'} == 2?? ]] || fail "${tablet_name[$1]}: $3 $4 answered ${out##*$'\n'}: ${out%$'\n'*}"
  printf '%s\n' "${out%$'\n'*}"
}
refused() {  # TABLET TOKEN METHOD PATH JSON: must be refused with a 4xx; prints the message
  local out
  out=$(request "$@")
  [[ ${out##*$'\n'} == 4?? ]] || fail "${tablet_name[$1]}: $3 $4 should have been refused but answered ${out##*$'\n'}: ${out%$'\n'*}"
  jq -r '"refused (\(.error.code)): \(.error.message)"' <<<"${out%$'\n'*}"
}
login() {  # TABLET USER PASSWORD: prints a session token
  api "$1" "" POST /login "{\"user\":\"$2\",\"password\":\"$3\"}" | jq -er .token
}
assert_blinded() {  # JSON WHO: a blinded role sees no arm, kit type or lot, not even by name
  local leaks
  leaks=$(jq -r '[.. | objects | keys[] | select(IN("arm", "kit_type", "kit_type_name", "lot"))] | unique | join(", ")' <<<"$1")
  if [ -n "$leaks" ] || grep -qE 'Velcardin|Placebo|VLC25|PBO' <<<"$1"; then
    fail "$2 revealed the allocation (fields: ${leaks:-none}): $1"
  fi
}
sync_now() {  # TABLET TOKEN: a sync round now (the tablet's Sync button); waits until one has ended since
  local asked_ms last
  asked_ms=$(now_ms)
  api "$1" "$2" POST /sync "{}" >/dev/null
  for _ in $(seq 100); do
    last=$(api "$1" "$2" GET /connection | jq -r '.last_sync_ms // 0')
    ((last > asked_ms)) && return 0
    sleep 0.1
  done
  fail "${tablet_name[$1]} did not sync within 10 s; see $work/node-$1.log"
}
receive_shipments() {  # TABLET TOKEN: every kit expected, scanned one at a time as the pharmacy does; prints one line per shipment
  local shipments shipment kits kit
  shipments=$(api "$1" "$2" GET /shipments)
  for shipment in $(jq -r '.shipments[] | select(any(.kits[]; .status == "expected")) | .shipment' <<<"$shipments"); do
    kits=$(jq -r --arg s "$shipment" '.shipments[] | select(.shipment == $s) | .kits[] | select(.status == "expected") | .kit' <<<"$shipments")
    for kit in $kits; do
      api "$1" "$2" POST "/shipments/$shipment/receive" "{\"kits\":[{\"kit\":\"$kit\",\"condition\":\"received\"}]}" >/dev/null
    done
    printf '%s: shipment %s (%s), %s kits scanned one by one\n' "${tablet_name[$1]}" "$shipment" \
      "$(jq -r --arg s "$shipment" '.shipments[] | select(.shipment == $s) | .kind' <<<"$shipments")" "$(wc -w <<<"$kits")"
  done
}
in_stock() {  # TABLET TOKEN: kits the tablet can dispense
  api "$1" "$2" GET "/inventory?status=available" | jq -er '.kits | length'
}
screen() {  # TABLET TOKEN DIABETES: prints the new participant's number
  api "$1" "$2" POST /participants \
    "{\"factors\":{\"diabetes\":\"$3\"},\"eligibility\":[\"yes\",\"yes\",\"yes\",\"yes\",\"yes\"]}" |
    jq -er .participant.participant
}
randomized=0 randomized_line=""  # participants randomized by the demo on every tablet, and the last one
randomize() {  # TABLET TOKEN PASSWORD PARTICIPANT: as a blinded user, with the e-signature; sets randomized_line
  local answer
  answer=$(api "$1" "$2" POST "/participants/$4/randomize" "{\"signature_password\":\"$3\"}")
  assert_blinded "$answer" "the randomization of $4 on ${tablet_name[$1]}"
  randomized=$((randomized + 1))
  randomized_line=$(jq -r '"\(.participant.participant) randomized: \(.randomization_number), kit(s) \([.kits[] | "\(.kit) (\(.label))"] | join(", "))"' \
    <<<"$answer")
}
free_slots() {  # TABLET TOKEN STRATUM-PART: free randomization slots of the matching stratum
  api "$1" "$2" GET /status | jq -er --arg s "$3" '[.slots_left[] | select(.stratum | contains($s)) | .free] | add // 0'
}
# A kit of every kit type in stock, whichever arm the next participant gets
# (the unblinded pharmacist's view, never printed).
kits_for_any_arm() {  # TABLET PHARMACIST
  api "$1" "$2" GET "/inventory?status=available" | jq -e '[.kits | group_by(.kit_type)[]] | length == 2' >/dev/null
}
# Before a randomization online: a free slot of the stratum and kits for any
# arm, else a sync round (the hub tops up slots and ships when a kit type runs
# out or the stock falls to its trigger) and the kits received.
ready_to_randomize() {  # TABLET COORDINATOR PHARMACIST DIABETES
  for _ in 1 2 3 4; do
    (($(free_slots "$1" "$2" "diabetes=$4") > 1)) && kits_for_any_arm "$1" "$3" && return 0
    sync_now "$1" "$2"
    receive_shipments "$1" "$2" >/dev/null
  done
  fail "${tablet_name[$1]} has no free slot for diabetes=$4 or too few kits after 4 sync rounds"
}

step "The study: check it, and see what amendment 2 changes"
hub_cli check-study "$here/packaging/examples/study-blocks.json"
hub_cli diff-study "$here/packaging/examples/study-blocks.json" "$here/packaging/examples/study-blocks-v2.json"

step "Set up the hub: keys, TLS identity, database, study, users"
hub init --study "$here/packaging/examples/study-blocks.json" --kdf-cost interactive
echo "$admin_pass" | hub_cli user add --data "$work/hub" --name "$admin" --role admin
add_user ana.coordinator coordinator 101 coordinator-101-pass
add_user chen.pharmacist pharmacist 101 pharmacist-101-pass
add_user lee.investigator investigator 101 investigator-101-pass
add_user nina.nurse nurse 101 nurse-101-pass
add_user ben.coordinator coordinator 102 coordinator-102-pass
add_user dora.pharmacist pharmacist 102 pharmacist-102-pass
add_user mia.monitor monitor "" monitor-central-pass
add_user ines.manager study-manager "" manager-pass-123
add_user uma.statistician unblinded-statistician "" statistician-pass-123
add_user sol.supply supply-manager "" supply-pass-123
fingerprint=$(hub fingerprint)
echo "hub certificate fingerprint: $fingerprint"
start_hub

step "Enroll a tablet at site 101, one at site 102 and the nurse's tablet of site 101 (one-time tokens)"
echo "(each site tablet receives the study, its users, participant numbers, randomization slots and its initial shipment)"
for t in "${tablets[@]}"; do
  site=${t/nurse/101} kind=$([ "$t" = nurse ] && echo nurse || echo site)
  token=$(as_admin invite --site "$site" --kind "$kind" --user "$admin" 2>/dev/null)
  echo "$token" | node_cli enroll --data "$work/node-$t" --hub "$hub_url" \
    --hub-fingerprint "$fingerprint" --kdf-cost interactive
done
nurse_node=$(node_status nurse | jq -er .node_id)
for t in "${tablets[@]}"; do start_tablet "$t"; done
for t in "${tablets[@]}"; do echo "${tablet_name[$t]}: http://127.0.0.1:${tablet_port[$t]}/"; done

step "The sites activate: each pharmacist scans the initial shipment, kit by kit"
declare -A coordinator=() pharmacist=()
coordinator[101]=$(login 101 ana.coordinator coordinator-101-pass)
coordinator[102]=$(login 102 ben.coordinator coordinator-102-pass)
pharmacist[101]=$(login 101 chen.pharmacist pharmacist-101-pass)
pharmacist[102]=$(login 102 dora.pharmacist pharmacist-102-pass)
declare -A signature=([101]=coordinator-101-pass [102]=coordinator-102-pass)
for site in 101 102; do
  receive_shipments "$site" "${pharmacist[$site]}"
  show "  site $site's inventory:" "$(api "$site" "${pharmacist[$site]}" GET /inventory)" .by_status
done
kit=$(api 101 "${pharmacist[101]}" GET /shipments | jq -er '.shipments[0] | "\(.shipment) \(.kits[0].kit)"')
echo "a kit scanned twice is refused, naming it:"
refused 101 "${pharmacist[101]}" POST "/shipments/${kit% *}/receive" "{\"kits\":[{\"kit\":\"${kit#* }\",\"condition\":\"received\"}]}"

step "Screening and randomization at both sites, both strata (online: the hub tops up slots and resupplies at each sync)"
echo "(before each randomization the tablet syncs when its slots or kits run low; resupply shipments are scanned in kit by kit)"
declare -A count=([101]=0 [102]=0)
for i in $(seq 52); do
  site=$((i % 2 ? 101 : 102))
  diabetes=$((i % 4 < 2 ? 0 : 1)); diabetes=$([ "$diabetes" = 1 ] && echo yes || echo no)
  ready_to_randomize "$site" "${coordinator[$site]}" "${pharmacist[$site]}" "$diabetes"
  participant=$(screen "$site" "${coordinator[$site]}" "$diabetes")
  randomize "$site" "${coordinator[$site]}" "${signature[$site]}" "$participant"
  count[$site]=$((count[$site] + 1))
  ((i % 10 && i != 52)) || printf '%2d randomized (site 101: %d, site 102: %d)\n' "$randomized" "${count[101]}" "${count[102]}"
done
for site in 101 102; do
  shipments=$(api "$site" "${coordinator[$site]}" GET /shipments)
  assert_blinded "$shipments" "the coordinator's list of shipments at site $site"
  resupplies=$(jq '[.shipments[] | select(.kind == "resupply")] | length' <<<"$shipments")
  ((resupplies > 0)) || fail "site $site randomized ${count[$site]} participants and received no resupply: $shipments"
  show "site $site's shipments (kit numbers and labels only):" "$shipments" \
    '[.shipments[] | {shipment, kind, kits: (.kits | length)}]'
done

step "Site 101's pharmacist hands kits to the nurse's tablet for the week's home visits"
inventory=$(api 101 "${pharmacist[101]}" GET /inventory)
handed=$(jq -c '[.kits[] | select(.status == "available")] | [group_by(.kit_type)[] | .[0:2][] | .kit]' \
  <<<"$inventory")  # two of each kit type, chosen by the unblinded pharmacist
# As many home visits as those kits serve whatever arm each participant gets: two when the site had two
# of every kit type to give, fewer when it was short of one (a resupply is on its way).
visits=$(jq '[.kits | group_by(.kit_type)[] | [.[] | select(.status == "available")] | length] | min | [., 2] | min' \
  <<<"$inventory")
show "custody handover to $nurse_node:" \
  "$(api 101 "${pharmacist[101]}" POST /kits/handover "{\"to_node\":\"$nurse_node\",\"kits\":$handed,\"reason\":\"home visits this week\"}")" \
  '{to_node, kits: [.kits[] | {kit, status}]}'
sync_now 101 "${coordinator[101]}"  # the hub moves the custody ...
nurse=$(login nurse nina.nurse nurse-101-pass)
sync_now nurse "$nurse"  # ... and the nurse's tablet learns of the kits
tablet_pharmacist=$(login nurse chen.pharmacist pharmacist-101-pass)
receive_shipments nurse "$tablet_pharmacist"
show "the nurse's tablet holds:" "$(api nurse "$nurse" GET /inventory)" .by_status

step "The evening's sync: slots topped up, and the last resupply scanned in before the snow"
for site in 101 102; do
  sync_now "$site" "${coordinator[$site]}"
  receive_shipments "$site" "${pharmacist[$site]}"
  show "site $site:" "$(api "$site" "${coordinator[$site]}" GET /status)" \
    '{kits, slots_left: [.slots_left[] | {stratum, free}]}'
done

step "Day 0: the network goes down; every tablet keeps working"
stop_hub
echo "coordinator-102-pass" | node_cli note --data "$work/node-102" --user ben.coordinator \
  --text "Courier delayed by snow; hub unreachable since this morning"
if kits_for_any_arm 101 "${pharmacist[101]}"; then
  participant=$(screen 101 "${coordinator[101]}" no)
  randomize 101 "${coordinator[101]}" coordinator-101-pass "$participant"
  echo "site 101, offline: $randomized_line"
fi
# The participant back for V2: one whose kit type is in stock (the pharmacist's view; the demo runs on one day).
stock=$(api 101 "${pharmacist[101]}" GET "/inventory?status=available" | jq -c '[.kits[].kit_type] | unique')
first=""
for participant in $(api 101 "${pharmacist[101]}" GET /participants | jq -r '.participants[] | select(.randomization_number != "") | .participant'); do
  api 101 "${pharmacist[101]}" GET "/participants/$participant" |
    jq -e --argjson stock "$stock" '.visits[0].kits[0].kit_type as $t | $stock | index($t)' >/dev/null && { first=$participant; break; }
done
[ -n "$first" ] || fail "site 101 holds no kit for any randomized participant's V2"

step "Blinded and unblinded, side by side (site 101, offline)"
coordinator_view=$(api 101 "${coordinator[101]}" GET "/participants/$first")
assert_blinded "$coordinator_view" "the coordinator's view of $first"
pharmacist_view=$(api 101 "${pharmacist[101]}" GET "/participants/$first")
jq -e '.arm.id' <<<"$pharmacist_view" >/dev/null || fail "the unblinded pharmacist's view of $first carries no arm"
show "coordinator (blinded): " "$coordinator_view" \
  '{participant, randomization_number, kits: [.visits[].kits[] | {kit, label: .label}]}'
show "pharmacist (unblinded):" "$pharmacist_view" \
  '{participant, randomization_number, arm: .arm.name, kits: [.visits[].kits[] | {kit, kit_type_name}]}'

step "Site 101, offline: participant $first is back for the Week 4 visit (V2) and gets the next kit"
echo "(V2 is due 4 weeks after V1: the tablet refuses, then records a deviation with an e-signature)"
refused 101 "${coordinator[101]}" POST "/participants/$first/dispense" '{"visit":"V2"}'
dispensed=$(api 101 "${coordinator[101]}" POST "/participants/$first/dispense" \
  '{"visit":"V2","override_reason":"participant travels during the Week 4 window; visit brought forward","signature_password":"coordinator-101-pass"}')
assert_blinded "$dispensed" "the coordinator's dispensing to $first"
jq -e '.deviation' <<<"$dispensed" >/dev/null || fail "the early V2 dispensing was not recorded as a deviation"
show "dispensed at V2:" "$dispensed" '{kits: [.kits[] | {kit, label: .label}], deviation}'
pharmacist_view=$(api 101 "${pharmacist[101]}" GET "/participants/$first")
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
stop_tablet 101

step "Day 1, offline: home visits from the nurse's tablet, with the kits in its custody"
echo "(the nurse screens at home; the investigator on the round randomizes with his e-signature; the kit comes from the tablet's custody)"
stop_tablet nurse
at_day 1
start_tablet nurse
at_day 0
nurse=$(login nurse nina.nurse nurse-101-pass)
tablet_investigator=$(login nurse lee.investigator investigator-101-pass)
home=()
((visits == 2)) || echo "(site 101 had $visits kit(s) of one kit type to give: $visits home visit(s) today)"
for diabetes in no yes; do
  ((${#home[@]} < visits)) || break
  participant=$(screen nurse "$nurse" "$diabetes")
  randomize nurse "$tablet_investigator" investigator-101-pass "$participant"
  kit=$(grep -oE 'kit\(s\) [0-9]+' <<<"$randomized_line" | cut -d' ' -f2)
  jq -e --arg k "$kit" 'any(.[]; . == $k)' <<<"$handed" >/dev/null || fail "home visit: kit $kit was not in the tablet's custody"
  echo "home visit: $randomized_line"
  home+=("$participant")
done
show "the nurse's tablet, offline:" "$(api nurse "$nurse" GET /status)" '{online, pending_events}'
stop_tablet nurse

step "Site 102, offline for a week: the tablet's clock moves a day at a time"
stop_tablet 102
for day in 0 1 2 3 4 5 6; do
  if ((day == 1)); then
    # The hub's supply manager puts the oldest lot at site 102 on hold (a quality issue under
    # investigation); the tablet cannot learn it yet.
    lot=$(for s in $(echo "supply-pass-123" | hub_cli shipment list --data "$work/hub" --json --reader sol.supply |
                       jq -r '.[] | select(.site_id == "102") | .shipment_id'); do
            echo "supply-pass-123" | hub_cli shipment show --data "$work/hub" --shipment "$s" --json --reader sol.supply |
              jq -c '.kit_list[] | select(.status == "received")'
          done | jq -rs 'sort_by(.expiry, .lot) | .[0].lot // empty')
    [ -n "$lot" ] || fail "site 102 holds no kit in stock at the hub"
    hold=$(echo "supply-pass-123" | hub_cli quarantine hold --data "$work/hub" --lot "$lot" --site 102 --user sol.supply \
             --reason "assay of the lot out of specification, under investigation")
    held=$(grep -oE '^held [0-9]+' <<<"$hold" | cut -d' ' -f2)
    [ -n "$held" ] || fail "the hold of lot $lot at site 102 held nothing: $hold"
    hold_decision=$(grep -oE 'decision [0-9]+' <<<"$hold" | cut -d' ' -f2)
    echo "day 1: the hub puts the $held kits of lot $lot at site 102 on hold (quarantined, decision $hold_decision); site 102 is offline"
  fi
  at_day "$day"
  start_tablet 102
  at_day 0
  ben=$(login 102 ben.coordinator coordinator-102-pass)
  line="no visit"
  if ((day == 0 || day == 3)); then
    :
  elif ! kits_for_any_arm 102 "$(login 102 dora.pharmacist pharmacist-102-pass)"; then
    line="no randomization: a kit type ran out; the site waits for the network"
  else  # one participant a day but on days 0 and 3, the strata in turn
    participant=$(screen 102 "$ben" "$( ((day % 2)) && echo yes || echo no)")
    randomize 102 "$ben" coordinator-102-pass "$participant"
    line=$randomized_line
  fi
  status=$(api 102 "$ben" GET /status)
  jq -e '.online == false' <<<"$status" >/dev/null || fail "site 102's tablet should be offline: $status"
  echo "day $day at site 102 (offline, $(jq -r .pending_events <<<"$status") events pending): $line"
  stop_tablet 102
done
set +e
node_cli sync --data "$work/node-102"
rc=$?
set -e
((rc == 3)) || fail "irt-node sync with the hub down should exit 3 (unreachable), got $rc"
echo "(irt-node sync exit code while offline: $rc; nothing is lost)"

step "The network is back; every tablet reconciles (site 102's tablet back on today's date)"
start_hub
for t in "${tablets[@]}"; do
  node_cli sync --data "$work/node-$t" >/dev/null
  pending=$(node_status "$t" | jq -er .pending_events)
  ((pending == 0)) || fail "${tablet_name[$t]} still has $pending events the hub has not acknowledged"
  echo "${tablet_name[$t]}: synced, nothing pending"
done

step "The supply manager rejects the held kits site 102 has not dispensed"
still_held=$(echo "supply-pass-123" | hub quarantine --json --reader sol.supply |
  jq -c --argjson d "$hold_decision" '[.[] | select(.hold_decision == $d) | .kit]')
kept=$(jq length <<<"$still_held")
((kept < held)) || fail "site 102 dispensed none of the $held held kits before it learned of the hold"
echo "site 102 dispensed $((held - kept)) of the $held held kits before it learned of the hold; $kept stand quarantined"
if ((kept > 0)); then
  reject=(--data "$work/hub" --reason "lot $lot confirmed out of specification" --user sol.supply)
  for kit in $(jq -r '.[]' <<<"$still_held"); do reject+=(--kit "$kit"); done
  echo "supply-pass-123" | hub_cli quarantine reject "${reject[@]}"
fi

step "What an inspector checks"
for t in "${tablets[@]}"; do node_cli verify --data "$work/node-$t"; done
hub verify
alerts=$(as_admin alerts --json --reader "$admin")
jq -e 'length == 0' <<<"$alerts" >/dev/null || fail "the hub raised alerts: $alerts"
echo "no open alerts"
# The hub's tables are sealed at rest (hub.db opens only through irt-hub): what it
# holds is read through its blinded export, as the study manager reads it.
randomizations_at_hub() {
  echo "manager-pass-123" | hub export --what randomizations --format json --out "$work/randomizations.json" \
    --reader ines.manager 2>/dev/null || fail "the hub's randomizations cannot be exported"
  jq -c .rows "$work/randomizations.json"
}
randomizations=$(randomizations_at_hub)
at_hub=$(jq length <<<"$randomizations")
((at_hub == randomized)) || fail "the hub recorded $at_hub randomizations, the tablets made $randomized"
echo "the hub holds all $at_hub randomizations, per node, and when they were made:"
jq -r 'group_by(.node_id)[] | "  \(.[0].node_id): \(length) randomized, the first at \(map(.randomized_at) | min), the last at \(map(.randomized_at) | max)"' \
  <<<"$randomizations"

step "The code break, the early visit and the held kits dispensed reach the central team as deviations"
deviations=$(echo "manager-pass-123" | hub deviations --json --open --reader ines.manager)
jq -e --arg p "$first" 'any(.[]; .kind == "code_break" and (.summary | contains($p)))' <<<"$deviations" >/dev/null ||
  fail "the code break at site 101 is not a deviation at the hub: $deviations"
jq -e 'any(.[]; .kind == "visit_window")' <<<"$deviations" >/dev/null ||
  fail "the early V2 dispensing is not a deviation at the hub: $deviations"
jq -e 'any(.[]; .kind == "kit_after_decision" and (.summary | contains("put on hold")))' <<<"$deviations" >/dev/null ||
  fail "site 102 dispensed no held kit, or the hub raised no deviation for it: $deviations"
grep -qF "$arm_name" <<<"$deviations" && fail "the blinded list of deviations names the arm: $deviations"
echo "manager-pass-123" | hub deviations --open --reader ines.manager
echo "the same list for an unblinded reader (uma.statistician) shows the arm of the code break:"
echo "statistician-pass-123" | hub deviations --open --reader uma.statistician | grep code_break
id=$(jq -r 'first(.[] | select(.kind == "code_break")) | .id' <<<"$deviations")
echo "manager-pass-123" | hub_cli deviations acknowledge --data "$work/hub" --id "$id" --user ines.manager \
  --comment "medical monitor informed; code break justified by the adverse event"

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
for t in "${tablets[@]}"; do
  before=$(node_status "$t" | jq -er .study_version)
  ((before == 1)) || fail "${tablet_name[$t]} should still be on study version 1 before its sync, not $before"
  node_cli sync --data "$work/node-$t" >/dev/null
  after=$(node_status "$t" | jq -er .study_version)
  ((after == 2)) || fail "${tablet_name[$t]} did not move to study version 2 at its sync (it is on $after)"
  echo "${tablet_name[$t]}: study version $before before its sync, $after after"
done
as_admin invite --site 103 --user "$admin" >/dev/null 2>&1 || fail "site 103, added by the amendment, cannot be invited"
echo "site 103, added by the amendment, can be invited at once"

step "Site 101's tablet is back: it syncs, and the resupply the hub sent is scanned in"
start_tablet 101
pharmacist[101]=$(login 101 chen.pharmacist pharmacist-101-pass)
sync_now 101 "${pharmacist[101]}"
receive_shipments 101 "${pharmacist[101]}"
show "site 101:" "$(api 101 "${pharmacist[101]}" GET /status)" \
  '{online, pending_events, kits, slots_left: [.slots_left[] | {stratum, free}]}'

step "A fridge fails at site 101: its kits are quarantined on the tablet, then released at the hub"
fridge=$(api 101 "${pharmacist[101]}" GET "/inventory?status=available" | jq -c '[.kits[0:2][].kit]')
[ "$(jq length <<<"$fridge")" = 2 ] || fail "site 101 has fewer than 2 kits in stock: $fridge"
api 101 "${pharmacist[101]}" POST /kits/location "{\"kits\":$fridge,\"location\":\"FRIDGE-1\"}" >/dev/null
excursion=$(api 101 "${pharmacist[101]}" POST /excursions \
  '{"location":"FRIDGE-1","minimum_celsius":6.5,"maximum_celsius":13.5,"duration_minutes":95,"reason":"fridge door left ajar"}')
show "excursion reported for FRIDGE-1, quarantined:" "$excursion" '.quarantined'
sync_now 101 "${pharmacist[101]}"
quarantined=$(echo "supply-pass-123" | hub quarantine --json --reader sol.supply)
[ "$(jq length <<<"$quarantined")" = 2 ] || fail "the hub did not learn of the excursion: $quarantined"
echo "supply-pass-123" | hub quarantine --reader sol.supply
release=(--data "$work/hub" --reason "excursion within the stability data" --user sol.supply)
for kit in $(jq -r '.[]' <<<"$fridge"); do release+=(--kit "$kit"); done
echo "supply-pass-123" | hub_cli quarantine release "${release[@]}"
sync_now 101 "${pharmacist[101]}"
kit=$(jq -r '.[0]' <<<"$fridge")
status=$(api 101 "${pharmacist[101]}" GET "/inventory?kit=$kit" | jq -r '.kits[0].status')
[ "$status" = available ] || fail "site 101 did not apply the hub's release of kit $kit (it is $status)"
echo "site 101's tablet applied the release at its sync: kit $kit is $status again"

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

step "Reconciliation report, per node"
echo "(from the hub: its nodes view, its randomizations, and drug accountability per site; the tablets are all synced)"
nodes=$(as_admin nodes --json --reader "$admin")
used=$(randomizations_at_hub | jq -c 'group_by(.node_id) | map({node_id: .[0].node_id, n: length})')
jq -r --argjson used "${used:-[]}" '.[] | .node_id as $n |
  "\(.node_id) (\(.kind), site \(.site_id)): \(.acked_seq) events; slots used \([$used[] | select(.node_id == $n) | .n] | add // 0), left \([.slots_left[] | "\(.label) \(.slots)"] | join(", ") | if . == "" then "none" else . end); kits \(.kits_by_status | to_entries | map("\(.key) \(.value)") | join(", ")); open deviations \(.open_deviations)"' <<<"$nodes"
for site in 101 102; do echo "supply-pass-123" | hub reconcile --site "$site" --reader sol.supply; done
hub verify
echo "every deviation of the trial, in the blinded wording the study manager reads:"
echo "manager-pass-123" | hub deviations --reader ines.manager

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
