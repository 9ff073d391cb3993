#!/usr/bin/env python3
# Usage: packaging/make_example_kits.py packaging/examples/STUDY.json SEED
# Writes NAME.lots.csv and NAME.kits.csv beside an example study, with the
# stock rule of hub/kit_inventory.h and shuffled six-digit kit numbers.
import json, random, sys, os
path = sys.argv[1]; seed = int(sys.argv[2])
d = json.load(open(path))
rng = random.Random(seed)
sites = d['sites']; depots = d['depots']; kts = d['kit_types']; sup = d['supply']
def depot_for(country):
    for dp in depots:
        if country in dp['countries']: return dp['id']
def per_site(kt):
    init = sum(s['count'] for s in sup['initial_shipment'] if s['kit_type'] == kt)
    return max(init, sup['max_level'], 1)
lots = [('L01', '2030-03-31'), ('L02', '2030-06-30'), ('L03', '2030-09-30')]
countries = ' '.join(c['code'] for c in d['countries'])
rows = []
for kt in kts:
    for dp in depots:
        served = sum(1 for s in sites if depot_for(s['country']) == dp['id'])
        n = max(served, 1) * 5 * per_site(kt['id'])
        for j in range(n):
            rows.append((kt['id'], lots[j * 3 // n][0], dp['id']))
numbers = rng.sample(range(100000, 1000000), len(rows))
kits = sorted(zip(numbers, rows))
base = os.path.splitext(path)[0]
with open(base + '.lots.csv', 'w') as f:
    f.write('lot,expiry,released_in\n')
    for l, e in lots: f.write(f'{l},{e},{countries}\n')
with open(base + '.kits.csv', 'w') as f:
    f.write('kit_number,kit_type,lot,depot\n')
    for num, (kt, lot, dp) in kits: f.write(f'{num},{kt},{lot},{dp}\n')
print(base, len(kits))
