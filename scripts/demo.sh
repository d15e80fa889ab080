#!/usr/bin/env bash
# The main job: set up, build, bring up the embedded default scenario (three peered VPCs),
# prove its expectations with real packets, and show how to explore it.
# Usage: sudo scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
vpclab=target/release/vpclab

# A lab left from an earlier run is removed first, so the demo always starts clean.
if $vpclab status peering 2>/dev/null | grep -q '^lab peering'; then
    $vpclab down peering
fi

$vpclab up
echo
echo "== vpclab check: every expect: line, by real packets and by the model"
$vpclab check
echo
echo "== vpclab explain web1 c1 --protocol tcp --port 22: why a cannot reach c through b"
$vpclab explain web1 c1 --protocol tcp --port 22 || true
echo
echo "== vpclab exec web1 -- curl -s http://db1/"
$vpclab exec web1 -- curl -s --max-time 5 http://db1/
cat <<MSG

The lab is still up. Explore it:
  sudo $vpclab status
  sudo $vpclab exec web1 -- ping -c 3 10.1.1.20
  sudo $vpclab exec db1 -- ip route
  sudo $vpclab explain db1 c1 --protocol tcp --port 22
  sudo $vpclab down peering        # removes everything the lab made
MSG
